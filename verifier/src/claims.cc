// Claims to JSON (issuance) and JSON to claims (verification).
#include <algorithm>
#include <limits>
#include <string>
#include <utility>

#include "claims_json.h"
#include "ijazat/verifier/token.h"

namespace ijazat::verifier {
namespace {

using internal::kMaxNumericDate;
using nlohmann::json;
using nlohmann::ordered_json;

constexpr std::string_view kJurisdiction = "PK";
constexpr std::string_view kCollectionMethod = "SMS-OTP";
constexpr std::string_view kConsentType = "EXPLICIT";
constexpr std::size_t kMinPseudonymBytes = 16;
constexpr std::size_t kMaxKidSize = 128;
constexpr std::int64_t kMaxUses = std::numeric_limits<std::int32_t>::max();

// ---- Issuance ----------------------------------------------------------------------------

Error InvalidClaims(const std::string& message) {
  return Error(ErrorCode::kInvalidArgument, message, "invalid_claims");
}

Status RequireText(std::string_view name, std::string_view value) {
  if (value.empty()) return InvalidClaims(std::string(name) + " must not be empty");
  return OkStatus();
}

Status RequireTexts(std::string_view name, const std::vector<std::string>& values,
                    bool allow_empty_list) {
  if (values.empty() && !allow_empty_list) {
    return InvalidClaims(std::string(name) + " must not be empty");
  }
  for (const auto& value : values) IJAZAT_RETURN_IF_ERROR(RequireText(name, value));
  return OkStatus();
}

Status RequireTime(std::string_view name, std::int64_t value) {
  if (value < 0 || value > kMaxNumericDate) {
    return InvalidClaims(std::string(name) + " is not a NumericDate in range");
  }
  return OkStatus();
}

// The pairwise subject is base64url of an HMAC: a CNIC (13 digits) or a phone number can never
// pass for one, because 13 characters are not valid unpadded base64url and short values fail
// the length.
Status RequirePseudonym(std::string_view name, std::string_view value) {
  const auto decoded = Base64UrlDecode(value);
  if (!decoded || decoded->size() < kMinPseudonymBytes) {
    return InvalidClaims(std::string(name) +
                         " must be a pairwise pseudonym (base64url of at least " +
                         std::to_string(kMinPseudonymBytes) + " bytes)");
  }
  return OkStatus();
}

bool IsLowerHex(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool IsBase64UrlText(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
  });
}

Status ValidateConsentClaims(const ConsentTokenClaims& c) {
  IJAZAT_RETURN_IF_ERROR(RequireText("iss", c.issuer));
  IJAZAT_RETURN_IF_ERROR(RequirePseudonym("sub", c.subject));
  IJAZAT_RETURN_IF_ERROR(RequireText("aud", c.audience));
  IJAZAT_RETURN_IF_ERROR(RequireTime("iat", c.issued_at));
  IJAZAT_RETURN_IF_ERROR(RequireTime("nbf", c.not_before));
  IJAZAT_RETURN_IF_ERROR(RequireTime("exp", c.expires_at));
  if (c.expires_at <= c.not_before || c.expires_at <= c.issued_at) {
    return InvalidClaims("exp must be after iat and nbf");
  }
  IJAZAT_RETURN_IF_ERROR(RequireText("jti", c.consent_id));
  IJAZAT_RETURN_IF_ERROR(RequireTexts("amr", c.amr, false));
  IJAZAT_RETURN_IF_ERROR(RequireText("purpose", c.purpose));
  IJAZAT_RETURN_IF_ERROR(RequireTexts("scopes", c.scopes, false));
  IJAZAT_RETURN_IF_ERROR(RequireText("policy.version", c.policy.version));
  if (c.policy.hash.size() != 64 || !IsLowerHex(c.policy.hash)) {
    return InvalidClaims("policy.hash must be 64 lowercase hex digits (SHA-256)");
  }
  if (c.max_uses < 1 || c.max_uses > kMaxUses) return InvalidClaims("max_uses must be positive");
  return OkStatus();
}

Status ValidateReceiptClaims(const ReceiptClaims& c) {
  IJAZAT_RETURN_IF_ERROR(RequireText("iss", c.issuer));
  IJAZAT_RETURN_IF_ERROR(RequireText("aud", c.audience));
  IJAZAT_RETURN_IF_ERROR(RequireTime("iat", c.issued_at));
  IJAZAT_RETURN_IF_ERROR(RequireText("jti", c.consent_id));
  IJAZAT_RETURN_IF_ERROR(RequireTime("consentTimestamp", c.consent_timestamp));
  IJAZAT_RETURN_IF_ERROR(RequireText("language", c.language));
  IJAZAT_RETURN_IF_ERROR(RequirePseudonym("piiPrincipalId", c.pii_principal_id));
  if (c.pii_controllers.empty()) return InvalidClaims("piiControllers must not be empty");
  for (const auto& controller : c.pii_controllers) {
    IJAZAT_RETURN_IF_ERROR(RequireText("piiController", controller.name));
    IJAZAT_RETURN_IF_ERROR(RequireText("contact", controller.contact));
  }
  IJAZAT_RETURN_IF_ERROR(RequireText("policyUrl", c.policy_url));
  if (c.services.empty()) return InvalidClaims("services must not be empty");
  for (const auto& service : c.services) {
    IJAZAT_RETURN_IF_ERROR(RequireText("service", service.service));
    if (service.purposes.empty()) return InvalidClaims("purposes must not be empty");
    for (const auto& purpose : service.purposes) {
      IJAZAT_RETURN_IF_ERROR(RequireText("purpose", purpose.purpose));
      IJAZAT_RETURN_IF_ERROR(RequireTexts("purposeCategory", purpose.purpose_category, false));
      IJAZAT_RETURN_IF_ERROR(RequireTexts("piiCategory", purpose.pii_category, false));
      IJAZAT_RETURN_IF_ERROR(RequireText("termination", purpose.termination));
    }
  }
  IJAZAT_RETURN_IF_ERROR(RequireTexts("spiCat", c.spi_categories, true));
  return OkStatus();
}

// Serialises; a string that is not valid UTF-8 makes nlohmann throw, which is the caller's
// input error here.
Result<std::string> Dump(const ordered_json& value) {
  try {
    return value.dump();
  } catch (const json::exception&) {
    return InvalidClaims("a claim is not valid UTF-8");
  }
}

Result<std::string> SigningInput(TokenType type, std::string_view kid,
                                 Result<std::string> payload) {
  if (!payload.ok()) return payload.error();
  IJAZAT_ASSIGN_OR_RETURN(const std::string header, JwsHeaderJson(type, kid));
  std::string input = Base64UrlEncode(AsBytes(header)) + "." + Base64UrlEncode(AsBytes(*payload));
  // Leave room for "." and the 86-character signature.
  if (input.size() + 87 > kMaxTokenSize) {
    return InvalidClaims("the claims make the token larger than " + std::to_string(kMaxTokenSize) +
                         " bytes");
  }
  return input;
}

// ---- Verification -----------------------------------------------------------------------

// Reads the members of one JSON object; `path` prefixes claim names in messages.
class Reader {
 public:
  Reader(const json& object, std::string path) : object_(object), path_(std::move(path)) {}

  Error Missing(std::string_view name) const {
    return Error(ErrorCode::kUnauthenticated, "claim " + Name(name) + " is missing",
                 "missing_claim");
  }
  Error Bad(std::string_view name, std::string_view why) const {
    return Error(ErrorCode::kInvalidArgument, "claim " + Name(name) + " " + std::string(why),
                 "malformed");
  }

  const json* Find(std::string_view name) const {
    const auto it = object_.find(name);
    return it == object_.end() ? nullptr : &*it;
  }

  Result<std::string> String(std::string_view name) const {
    const json* value = Find(name);
    if (value == nullptr) return Missing(name);
    if (!value->is_string() || value->get_ref<const std::string&>().empty()) {
      return Bad(name, "must be a non-empty string");
    }
    return value->get<std::string>();
  }

  // Absent: empty. Present: any string.
  Result<std::string> OptionalString(std::string_view name) const {
    const json* value = Find(name);
    if (value == nullptr) return std::string();
    if (!value->is_string()) return Bad(name, "must be a string");
    return value->get<std::string>();
  }

  Result<std::string> Constant(std::string_view name, std::string_view expected) const {
    IJAZAT_ASSIGN_OR_RETURN(std::string value, String(name));
    if (value != expected) return Bad(name, "must be \"" + std::string(expected) + "\"");
    return value;
  }

  Result<std::int64_t> Integer(std::string_view name, std::int64_t min, std::int64_t max) const {
    const json* value = Find(name);
    if (value == nullptr) return Missing(name);
    std::int64_t number = 0;
    if (value->is_number_unsigned()) {
      const auto u = value->get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(max)) return Bad(name, "is out of range");
      number = static_cast<std::int64_t>(u);
    } else if (value->is_number_integer()) {
      number = value->get<std::int64_t>();
    } else {
      return Bad(name, "must be an integer");
    }
    if (number < min || number > max) return Bad(name, "is out of range");
    return number;
  }

  Result<std::int64_t> NumericDate(std::string_view name) const {
    return Integer(name, 0, kMaxNumericDate);
  }

  Result<bool> Bool(std::string_view name) const {
    const json* value = Find(name);
    if (value == nullptr) return Missing(name);
    if (!value->is_boolean()) return Bad(name, "must be true or false");
    return value->get<bool>();
  }

  Result<std::vector<std::string>> Strings(std::string_view name, bool allow_empty) const {
    const json* value = Find(name);
    if (value == nullptr) return Missing(name);
    if (!value->is_array() || (value->empty() && !allow_empty)) {
      return Bad(name, allow_empty ? "must be an array of strings"
                                   : "must be a non-empty array of strings");
    }
    std::vector<std::string> out;
    for (const auto& item : *value) {
      if (!item.is_string()) return Bad(name, "must be an array of strings");
      out.push_back(item.get<std::string>());
    }
    return out;
  }

  // A required array of objects, each read by `read(Reader)`.
  template <typename T, typename F>
  Result<std::vector<T>> Objects(std::string_view name, F read) const {
    const json* value = Find(name);
    if (value == nullptr) return Missing(name);
    if (!value->is_array() || value->empty()) return Bad(name, "must be a non-empty array");
    std::vector<T> out;
    for (std::size_t i = 0; i < value->size(); ++i) {
      const json& item = (*value)[i];
      const std::string item_path = Name(name) + "[" + std::to_string(i) + "]";
      if (!item.is_object()) {
        return Error(ErrorCode::kInvalidArgument, "claim " + item_path + " must be an object",
                     "malformed");
      }
      IJAZAT_ASSIGN_OR_RETURN(T parsed, read(Reader(item, item_path + ".")));
      out.push_back(std::move(parsed));
    }
    return out;
  }

  Status Audiences(std::vector<std::string>* audiences) const {
    const json* value = Find("aud");
    if (value == nullptr) return Missing("aud");
    audiences->clear();
    if (value->is_string()) {
      audiences->push_back(value->get<std::string>());
    } else if (value->is_array() && !value->empty()) {
      for (const auto& item : *value) {
        if (!item.is_string()) return Bad("aud", "must be a string or an array of strings");
        audiences->push_back(item.get<std::string>());
      }
    } else {
      return Bad("aud", "must be a string or an array of strings");
    }
    return OkStatus();
  }

 private:
  std::string Name(std::string_view name) const { return path_ + std::string(name); }

  const json& object_;
  std::string path_;
};

Result<ReceiptAddress> ReadAddress(const Reader& controller) {
  ReceiptAddress address;
  const json* value = controller.Find("address");
  if (value == nullptr) return address;
  if (!value->is_object()) return controller.Bad("address", "must be an object");
  const Reader reader(*value, "address.");
  IJAZAT_ASSIGN_OR_RETURN(address.street_address, reader.OptionalString("streetAddress"));
  IJAZAT_ASSIGN_OR_RETURN(address.address_country, reader.OptionalString("addressCountry"));
  return address;
}

Result<PiiController> ReadController(const Reader& r) {
  PiiController c;
  IJAZAT_ASSIGN_OR_RETURN(c.name, r.String("piiController"));
  if (r.Find("onBehalf") != nullptr) {
    IJAZAT_ASSIGN_OR_RETURN(c.on_behalf, r.Bool("onBehalf"));
  }
  IJAZAT_ASSIGN_OR_RETURN(c.contact, r.String("contact"));
  IJAZAT_ASSIGN_OR_RETURN(c.address, ReadAddress(r));
  IJAZAT_ASSIGN_OR_RETURN(c.email, r.OptionalString("email"));
  IJAZAT_ASSIGN_OR_RETURN(c.phone, r.OptionalString("phone"));
  IJAZAT_ASSIGN_OR_RETURN(c.url, r.OptionalString("piiControllerUrl"));
  return c;
}

Result<ReceiptPurpose> ReadPurpose(const Reader& r) {
  ReceiptPurpose p;
  IJAZAT_ASSIGN_OR_RETURN(p.purpose, r.String("purpose"));
  IJAZAT_ASSIGN_OR_RETURN(p.purpose_category, r.Strings("purposeCategory", false));
  IJAZAT_RETURN_IF_ERROR(r.Constant("consentType", kConsentType));
  IJAZAT_ASSIGN_OR_RETURN(p.pii_category, r.Strings("piiCategory", false));
  IJAZAT_ASSIGN_OR_RETURN(p.primary_purpose, r.Bool("primaryPurpose"));
  IJAZAT_ASSIGN_OR_RETURN(p.termination, r.String("termination"));
  IJAZAT_ASSIGN_OR_RETURN(p.third_party_disclosure, r.Bool("thirdPartyDisclosure"));
  IJAZAT_ASSIGN_OR_RETURN(p.third_party_name, r.OptionalString("thirdPartyName"));
  return p;
}

Result<ReceiptService> ReadService(const Reader& r) {
  ReceiptService s;
  IJAZAT_ASSIGN_OR_RETURN(s.service, r.String("service"));
  IJAZAT_ASSIGN_OR_RETURN(s.purposes, r.Objects<ReceiptPurpose>("purposes", ReadPurpose));
  return s;
}

}  // namespace

std::string_view TypHeader(TokenType type) {
  return type == TokenType::kReceipt ? kReceiptTyp : kConsentTokenTyp;
}

Result<std::string> JwsHeaderJson(TokenType type, std::string_view kid) {
  if (kid.empty() || kid.size() > kMaxKidSize || !IsBase64UrlText(kid)) {
    return InvalidClaims("kid must be an RFC 7638 thumbprint (base64url)");
  }
  return R"({"alg":"ES256","typ":")" + std::string(TypHeader(type)) + R"(","kid":")" +
         std::string(kid) + R"("})";
}

Result<std::string> ConsentTokenPayloadJson(const ConsentTokenClaims& c) {
  IJAZAT_RETURN_IF_ERROR(ValidateConsentClaims(c));
  ordered_json payload;
  payload["iss"] = c.issuer;
  payload["sub"] = c.subject;
  payload["aud"] = c.audience;
  payload["iat"] = c.issued_at;
  payload["nbf"] = c.not_before;
  payload["exp"] = c.expires_at;
  payload["jti"] = c.consent_id;
  payload["amr"] = c.amr;
  payload["purpose"] = c.purpose;
  payload["scopes"] = c.scopes;
  payload["policy"] = ordered_json{{"version", c.policy.version}, {"hash", c.policy.hash}};
  payload["max_uses"] = c.max_uses;
  return Dump(payload);
}

Result<std::string> ReceiptPayloadJson(const ReceiptClaims& c) {
  IJAZAT_RETURN_IF_ERROR(ValidateReceiptClaims(c));
  ordered_json payload;
  payload["version"] = kReceiptVersion;
  payload["jurisdiction"] = kJurisdiction;
  payload["consentTimestamp"] = c.consent_timestamp;
  payload["collectionMethod"] = kCollectionMethod;
  payload["consentReceiptID"] = c.consent_id;
  payload["language"] = c.language;
  payload["piiPrincipalId"] = c.pii_principal_id;
  ordered_json controllers = ordered_json::array();
  for (const auto& pc : c.pii_controllers) {
    ordered_json controller;
    controller["piiController"] = pc.name;
    controller["onBehalf"] = pc.on_behalf;
    controller["contact"] = pc.contact;
    controller["address"] = ordered_json{{"streetAddress", pc.address.street_address},
                                         {"addressCountry", pc.address.address_country}};
    controller["email"] = pc.email;
    controller["phone"] = pc.phone;
    if (!pc.url.empty()) controller["piiControllerUrl"] = pc.url;
    controllers.push_back(std::move(controller));
  }
  payload["piiControllers"] = std::move(controllers);
  payload["policyUrl"] = c.policy_url;
  ordered_json services = ordered_json::array();
  for (const auto& s : c.services) {
    ordered_json purposes = ordered_json::array();
    for (const auto& p : s.purposes) {
      ordered_json purpose;
      purpose["purpose"] = p.purpose;
      purpose["purposeCategory"] = p.purpose_category;
      purpose["consentType"] = kConsentType;
      purpose["piiCategory"] = p.pii_category;
      purpose["primaryPurpose"] = p.primary_purpose;
      purpose["termination"] = p.termination;
      purpose["thirdPartyDisclosure"] = p.third_party_disclosure;
      if (!p.third_party_name.empty()) purpose["thirdPartyName"] = p.third_party_name;
      purposes.push_back(std::move(purpose));
    }
    services.push_back(ordered_json{{"service", s.service}, {"purposes", std::move(purposes)}});
  }
  payload["services"] = std::move(services);
  payload["sensitive"] = c.sensitive;
  payload["spiCat"] = c.spi_categories;
  payload["iss"] = c.issuer;
  payload["aud"] = c.audience;
  payload["iat"] = c.issued_at;
  payload["jti"] = c.consent_id;
  return Dump(payload);
}

Result<std::string> ConsentTokenSigningInput(const ConsentTokenClaims& claims,
                                             std::string_view kid) {
  return SigningInput(TokenType::kConsentToken, kid, ConsentTokenPayloadJson(claims));
}

Result<std::string> ReceiptSigningInput(const ReceiptClaims& claims, std::string_view kid) {
  return SigningInput(TokenType::kReceipt, kid, ReceiptPayloadJson(claims));
}

Result<std::string> AssembleJws(std::string_view signing_input, ByteView signature) {
  const auto invalid = [](const char* message) {
    return Error(ErrorCode::kInvalidArgument, message, "invalid_signature");
  };
  if (signature.size() != 64) return invalid("an ES256 signature is 64 bytes (r||s)");
  const auto dot = signing_input.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == signing_input.size() ||
      signing_input.find('.', dot + 1) != std::string_view::npos ||
      !IsBase64UrlText(signing_input.substr(0, dot)) ||
      !IsBase64UrlText(signing_input.substr(dot + 1))) {
    return invalid("the signing input must be two base64url parts joined by '.'");
  }
  std::string token = std::string(signing_input) + "." + Base64UrlEncode(signature);
  if (token.size() > kMaxTokenSize) return invalid("the token would exceed the size limit");
  return token;
}

namespace internal {

Result<ConsentTokenClaims> ConsentClaimsFromJson(const json& payload,
                                                 std::vector<std::string>* audiences) {
  const Reader r(payload, "");
  ConsentTokenClaims c;
  IJAZAT_ASSIGN_OR_RETURN(c.issuer, r.String("iss"));
  IJAZAT_ASSIGN_OR_RETURN(c.subject, r.String("sub"));
  IJAZAT_RETURN_IF_ERROR(r.Audiences(audiences));
  IJAZAT_ASSIGN_OR_RETURN(c.issued_at, r.NumericDate("iat"));
  IJAZAT_ASSIGN_OR_RETURN(c.not_before, r.NumericDate("nbf"));
  IJAZAT_ASSIGN_OR_RETURN(c.expires_at, r.NumericDate("exp"));
  IJAZAT_ASSIGN_OR_RETURN(c.consent_id, r.String("jti"));
  IJAZAT_ASSIGN_OR_RETURN(c.amr, r.Strings("amr", false));
  IJAZAT_ASSIGN_OR_RETURN(c.purpose, r.String("purpose"));
  IJAZAT_ASSIGN_OR_RETURN(c.scopes, r.Strings("scopes", false));
  const json* policy = r.Find("policy");
  if (policy == nullptr) return r.Missing("policy");
  if (!policy->is_object()) return r.Bad("policy", "must be an object");
  const Reader p(*policy, "policy.");
  IJAZAT_ASSIGN_OR_RETURN(c.policy.version, p.String("version"));
  IJAZAT_ASSIGN_OR_RETURN(c.policy.hash, p.String("hash"));
  if (c.policy.hash.size() != 64 || !IsLowerHex(c.policy.hash)) {
    return p.Bad("hash", "must be 64 lowercase hex digits");
  }
  IJAZAT_ASSIGN_OR_RETURN(c.max_uses, r.Integer("max_uses", 1, kMaxUses));
  return c;
}

Result<ReceiptClaims> ReceiptClaimsFromJson(const json& payload,
                                            std::vector<std::string>* audiences) {
  const Reader r(payload, "");
  ReceiptClaims c;
  IJAZAT_RETURN_IF_ERROR(r.Constant("version", kReceiptVersion));
  IJAZAT_RETURN_IF_ERROR(r.Constant("jurisdiction", kJurisdiction));
  IJAZAT_ASSIGN_OR_RETURN(c.consent_timestamp, r.NumericDate("consentTimestamp"));
  IJAZAT_RETURN_IF_ERROR(r.Constant("collectionMethod", kCollectionMethod));
  IJAZAT_ASSIGN_OR_RETURN(const std::string receipt_id, r.String("consentReceiptID"));
  IJAZAT_ASSIGN_OR_RETURN(c.language, r.String("language"));
  IJAZAT_ASSIGN_OR_RETURN(c.pii_principal_id, r.String("piiPrincipalId"));
  IJAZAT_ASSIGN_OR_RETURN(c.pii_controllers,
                          r.Objects<PiiController>("piiControllers", ReadController));
  IJAZAT_ASSIGN_OR_RETURN(c.policy_url, r.String("policyUrl"));
  IJAZAT_ASSIGN_OR_RETURN(c.services, r.Objects<ReceiptService>("services", ReadService));
  IJAZAT_ASSIGN_OR_RETURN(c.sensitive, r.Bool("sensitive"));
  IJAZAT_ASSIGN_OR_RETURN(c.spi_categories, r.Strings("spiCat", true));
  IJAZAT_ASSIGN_OR_RETURN(c.issuer, r.String("iss"));
  IJAZAT_RETURN_IF_ERROR(r.Audiences(audiences));
  IJAZAT_ASSIGN_OR_RETURN(c.issued_at, r.NumericDate("iat"));
  IJAZAT_ASSIGN_OR_RETURN(c.consent_id, r.String("jti"));
  if (receipt_id != c.consent_id) return r.Bad("consentReceiptID", "must equal jti");
  return c;
}

}  // namespace internal
}  // namespace ijazat::verifier
