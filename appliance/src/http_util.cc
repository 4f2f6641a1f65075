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
