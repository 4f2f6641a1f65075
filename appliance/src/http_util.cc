#include "http_util.h"

namespace ijazat::appliance {

Result<std::string> ReadBody(std::istream& in, long long content_length) {
  if (content_length > static_cast<long long>(kMaxBodyBytes)) {
    return Error(ErrorCode::kResourceExhausted, "the body is larger than 16 KiB", "body_too_large");
  }
  std::string body;
  body.resize(kMaxBodyBytes + 1);
  in.read(body.data(), static_cast<std::streamsize>(body.size()));
  body.resize(static_cast<std::size_t>(in.gcount()));
  if (body.size() > kMaxBodyBytes) {
    return Error(ErrorCode::kResourceExhausted, "the body is larger than 16 KiB", "body_too_large");
  }
  return body;
}

Result<nlohmann::json> ParseJsonObject(const std::string& body) {
  // Nesting is measured before parsing, so a deep document costs no recursion.
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : body) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxJsonDepth) {
        return Error(ErrorCode::kInvalidArgument, "the JSON body nests deeper than 32 levels",
                     "json_too_deep");
      }
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  nlohmann::json value = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) {
    return Error(ErrorCode::kInvalidArgument, "the body is not valid JSON (or not valid UTF-8)",
                 "invalid_json");
  }
  if (!value.is_object()) {
    return Error(ErrorCode::kInvalidArgument, "the body must be a JSON object", "not_an_object");
  }
  return value;
}

namespace {

Result<std::string> JsonString(const nlohmann::json& body, const char* field,
                               std::size_t max_length) {
  const auto it = body.find(field);
  if (it == body.end() || !it->is_string()) {
    return Error(ErrorCode::kInvalidArgument,
                 std::string("the body needs \"") + field + "\" as a string", "invalid_request");
  }
  std::string value = it->get<std::string>();
  if (value.size() > max_length) {
    return Error(ErrorCode::kInvalidArgument,
                 std::string("\"") + field + "\" is longer than " + std::to_string(max_length),
                 "invalid_request");
  }
  return value;
}

Status OnlyFields(const nlohmann::json& body, std::initializer_list<const char*> allowed) {
  for (const auto& [key, value] : body.items()) {
    bool known = false;
    for (const char* name : allowed) known = known || key == name;
    if (!known) {
      return Error(ErrorCode::kInvalidArgument, "unknown field \"" + key + "\" in the body",
                   "invalid_request");
    }
  }
  return OkStatus();
}

}  // namespace

Result<ConsentRequestBody> ParseConsentRequestBody(const std::string& body) {
  IJAZAT_ASSIGN_OR_RETURN(const nlohmann::json json, ParseJsonObject(body));
  IJAZAT_RETURN_IF_ERROR(OnlyFields(json, {"cnic", "purpose", "scopes"}));
  ConsentRequestBody request;
  IJAZAT_ASSIGN_OR_RETURN(request.cnic, JsonString(json, "cnic", kMaxCnicField));
  IJAZAT_ASSIGN_OR_RETURN(request.purpose, JsonString(json, "purpose", kMaxPurposeField));
  const auto scopes = json.find("scopes");
  if (scopes == json.end() || !scopes->is_array() || scopes->empty() ||
      scopes->size() > kMaxScopes) {
    return Error(ErrorCode::kInvalidArgument,
                 "the body needs \"scopes\" as an array of 1 to 16 attribute names",
                 "invalid_request");
  }
  for (const auto& scope : *scopes) {
    if (!scope.is_string() || scope.get_ref<const std::string&>().size() > kMaxScopeField) {
      return Error(ErrorCode::kInvalidArgument, "each scope must be a short string",
                   "invalid_request");
    }
    request.scopes.push_back(scope.get<std::string>());
  }
  return request;
}

Result<std::string> ParseConfirmBody(const std::string& body) {
  IJAZAT_ASSIGN_OR_RETURN(const nlohmann::json json, ParseJsonObject(body));
  IJAZAT_RETURN_IF_ERROR(OnlyFields(json, {"otp"}));
  return JsonString(json, "otp", kMaxOtpField);
}

Result<std::string> ParseVerifyBody(const std::string& body) {
  IJAZAT_ASSIGN_OR_RETURN(const nlohmann::json json, ParseJsonObject(body));
  IJAZAT_RETURN_IF_ERROR(OnlyFields(json, {"consent_token"}));
  return JsonString(json, "consent_token", kMaxTokenField);
}

namespace {

// The reasons a client may see, with their messages. Anything else comes from deep inside (a
// key state, a store detail) and is reported as an internal error or, when retrying may help,
// as the part that is unavailable, without its text.
bool IsPublicReason(std::string_view reason) {
  static constexpr std::string_view kPublic[] = {
      // request shape
      "invalid_request", "invalid_json", "json_too_deep", "not_an_object", "body_too_large",
      "unsupported_media_type", "method_not_allowed", "invalid_uri", "not_found", "invalid_cnic",
      "invalid_otp_format", "invalid_msisdn", "wrong_short_code", "sms_too_long",
      // authentication and policy
      "unauthenticated", "provider_suspended", "provider_not_yet_valid", "provider_expired",
      "rate_limited", "unknown_provider", "not_yet_valid", "unknown_purpose", "no_scopes",
      "unknown_scope", "scope_not_allowed",
      // consents
      "consent_not_found", "consent_not_pending", "consent_expired", "consent_failed",
      "consent_used", "consent_revoked", "consent_not_granted", "consent_not_revocable",
      "otp_incorrect", "cnic_locked_out", "citizen_unavailable", "identity_not_found",
      "wrong_provider",
      // token verification
      "malformed", "unknown_kid", "alg_not_allowed", "wrong_typ", "forbidden_header",
      "bad_signature", "expired", "missing_claim", "wrong_issuer", "wrong_audience",
      // dependencies
      "hsm_unavailable", "store_unavailable", "registry_unavailable", "internal"};
  for (const std::string_view known : kPublic) {
    if (known == reason) return true;
  }
  return false;
}

// The public reason of an unavailable part, from the reason it failed with: the HSM layer's
// (hsm_*, and a PIN the token refused on reconnecting), the consent store's (store_*), the
// identity registry's (registry_*); empty for anything else. A string literal, since Error
// keeps its reason as a view.
std::string_view UnavailablePart(std::string_view reason) {
  if (reason.starts_with("hsm_") || reason == "pin_incorrect" || reason == "pin_locked" ||
      reason == "module_load_failed") {
    return "hsm_unavailable";
  }
  if (reason.starts_with("store_")) return "store_unavailable";
  if (reason.starts_with("registry_")) return "registry_unavailable";
  return {};
}

}  // namespace

Error PublicError(const Error& error) {
  if (IsPublicReason(error.reason())) return error;
  if (error.code() == ErrorCode::kUnavailable) {
    // A part this mapping does not know is not named after another one: the client gets an
    // internal error, the operator's log the reason.
    const std::string_view part = UnavailablePart(error.reason());
    if (!part.empty()) return Error(ErrorCode::kUnavailable, "a dependency is unavailable", part);
  }
  return Error(ErrorCode::kInternal, "internal error", "internal");
}

int HttpStatusFor(const Error& error) {
  const std::string_view reason = error.reason();
  if (reason == "consent_expired") return 410;
  if (reason == "body_too_large") return 413;
  if (reason == "unsupported_media_type") return 415;
  if (reason == "method_not_allowed") return 405;
  switch (error.code()) {
    case ErrorCode::kInvalidArgument:
      return 400;
    case ErrorCode::kUnauthenticated:
      return 401;
    case ErrorCode::kPermissionDenied:
      return 403;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kAlreadyExists:
    case ErrorCode::kFailedPrecondition:
      return 409;
    case ErrorCode::kResourceExhausted:
      return 429;
    case ErrorCode::kUnavailable:
      return 503;
    case ErrorCode::kInternal:
    case ErrorCode::kDataLoss:
      return 500;
  }
  return 500;
}

std::string ProblemJson(int status, const Error& error, const std::string& request_id,
                        const nlohmann::json& extensions) {
  nlohmann::json problem = extensions.is_object() ? extensions : nlohmann::json::object();
  problem["type"] = "urn:ijazat:problem:" + std::string(error.reason());
  problem["title"] = std::string(error.reason());
  problem["status"] = status;
  // Internal failures never show their text: it may name files, SQL or HSM details.
  if (status == 503) {
    problem["detail"] = "the service is temporarily unavailable; retry after the Retry-After delay";
  } else if (status >= 500) {
    problem["detail"] = "internal error; quote the request id to the operator";
  } else {
    problem["detail"] = error.message();
  }
  problem["instance"] = "urn:ijazat:request:" + request_id;
  return problem.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace ijazat::appliance
