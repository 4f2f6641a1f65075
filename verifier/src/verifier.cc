#include "ijazat/verifier/verifier.h"

#include <openssl/err.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <ctime>
#include <utility>
#include <vector>

#include "claims_json.h"
#include "es256.h"
#include "jwks_impl.h"
#include "strict_json.h"

namespace ijazat::verifier {
namespace {

using nlohmann::json;

Error Reject(std::string message, std::string_view reason) {
  return Error(ErrorCode::kUnauthenticated, std::move(message), reason);
}
Error Malformed(std::string message) {
  return Error(ErrorCode::kInvalidArgument, std::move(message), "malformed");
}

// The header members this format defines; anything else is refused.
constexpr std::array<std::string_view, 3> kAllowedHeaderMembers = {"alg", "typ", "kid"};
// Members that would let the token choose its own key or change how it is processed
// (RFC 8725 §3.10): named in the error so that an attempt is recognisable in logs.
constexpr std::array<std::string_view, 10> kForbiddenHeaderMembers = {
    "jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256", "crit", "b64", "zip", "enc"};

Status CheckOptions(const VerifyOptions& options, std::int64_t now) {
  const auto invalid = [](const char* message) {
    return Error(ErrorCode::kInvalidArgument, message, "invalid_options");
  };
  if (options.audience.empty()) return invalid("the audience (the provider's id) is required");
  if (options.leeway_seconds < 0 || options.leeway_seconds > kMaxLeewaySeconds) {
    return invalid("the leeway must be between 0 and 300 seconds");
  }
  if (now < 0 || now > internal::kMaxNumericDate) return invalid("the time is out of range");
  if (options.issuer.has_value() && options.issuer->empty()) {
    return invalid("the issuer, when given, must not be empty");
  }
  return OkStatus();
}

struct Parts {
  std::string_view header_b64;
  std::string_view payload_b64;
  std::string_view signature_b64;
  Bytes header;
  Bytes payload;
  Bytes signature;
};

Result<Parts> Split(std::string_view token) {
  if (token.empty()) return Malformed("the token is empty");
  if (token.size() > kMaxTokenSize) {
    return Malformed("the token is larger than " + std::to_string(kMaxTokenSize) + " bytes");
  }
  if (std::count(token.begin(), token.end(), '.') != 2) {
    return Malformed("a JWS compact serialisation has exactly three parts");
  }
  Parts parts;
  const auto first = token.find('.');
  const auto second = token.find('.', first + 1);
  parts.header_b64 = token.substr(0, first);
  parts.payload_b64 = token.substr(first + 1, second - first - 1);
  parts.signature_b64 = token.substr(second + 1);
  // An empty signature is left to the alg check ("alg":"none" tokens end in '.') and then to
  // the signature check.
  if (parts.header_b64.empty() || parts.payload_b64.empty()) {
    return Malformed("the header or the payload is empty");
  }
  auto header = Base64UrlDecode(parts.header_b64);
  auto payload = Base64UrlDecode(parts.payload_b64);
  auto signature = Base64UrlDecode(parts.signature_b64);
  if (!header || !payload || !signature) {
    return Malformed("a part of the token is not unpadded base64url");
  }
  parts.header = std::move(*header);
  parts.payload = std::move(*payload);
  parts.signature = std::move(*signature);
  return parts;
}

std::string_view AsText(const Bytes& bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// Returns the kid once alg, the header's members and typ are acceptable.
Result<std::string> CheckHeader(const json& header, TokenType expected) {
  const auto alg = header.find("alg");
  if (alg == header.end() || !alg->is_string()) return Malformed("the header has no alg");
  if (alg->get_ref<const std::string&>() != "ES256") {
    return Reject("alg is not ES256", "alg_not_allowed");
  }
  for (const auto& [name, value] : header.items()) {
    if (std::find(kForbiddenHeaderMembers.begin(), kForbiddenHeaderMembers.end(), name) !=
        kForbiddenHeaderMembers.end()) {
      return Reject("the header has a forbidden member \"" + name + "\"", "forbidden_header");
    }
    if (std::find(kAllowedHeaderMembers.begin(), kAllowedHeaderMembers.end(), name) ==
        kAllowedHeaderMembers.end()) {
      return Reject("the header has a member outside alg, typ, kid", "forbidden_header");
    }
  }
  const auto typ = header.find("typ");
  if (typ == header.end() || !typ->is_string() ||
      typ->get_ref<const std::string&>() != TypHeader(expected)) {
    return Reject("typ is not \"" + std::string(TypHeader(expected)) + "\"", "wrong_typ");
  }
  const auto kid = header.find("kid");
  if (kid == header.end() || !kid->is_string() || kid->get_ref<const std::string&>().empty()) {
    return Malformed("the header has no kid");
  }
  return kid->get<std::string>();
}

// "1740823800 (2025-03-01T10:10:00Z)": times in messages, readable and exact.
std::string FormatTime(std::int64_t seconds) {
  const auto time = static_cast<std::time_t>(seconds);
  std::tm utc{};
  std::array<char, 32> text{};
  if (gmtime_r(&time, &utc) == nullptr ||
      std::strftime(text.data(), text.size(), "%Y-%m-%dT%H:%M:%SZ", &utc) == 0) {
    return std::to_string(seconds);
  }
  return std::to_string(seconds) + " (" + text.data() + ")";
}

// A key id from the token, safe to put in a one-line message or a log.
std::string PrintableKid(std::string_view kid) {
  std::string out(kid.substr(0, 64));
  for (char& c : out) {
    const bool base64url = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                           (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!base64url) c = '?';
  }
  return out;
}

Status CheckAudience(const std::vector<std::string>& audiences, const std::string& expected) {
  if (std::find(audiences.begin(), audiences.end(), expected) == audiences.end()) {
    return Reject("aud does not name this provider", "wrong_audience");
  }
  return OkStatus();
}

}  // namespace

Result<VerifiedToken> Verify(std::string_view token, const Jwks& jwks,
                             const VerifyOptions& options) {
  const std::int64_t now =
      options.now.value_or(std::chrono::duration_cast<std::chrono::seconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count());
  IJAZAT_RETURN_IF_ERROR(CheckOptions(options, now));
  const std::int64_t leeway = options.leeway_seconds;

  IJAZAT_ASSIGN_OR_RETURN(const Parts parts, Split(token));
  IJAZAT_ASSIGN_OR_RETURN(const json header,
                          internal::ParseStrictObject(AsText(parts.header), "the header"));
  IJAZAT_ASSIGN_OR_RETURN(std::string kid, CheckHeader(header, options.type));

  EVP_PKEY* key = internal::JwksAccess::Find(jwks, kid);
  if (key == nullptr) {
    return Reject("no key in the JWKS has kid " + PrintableKid(kid), "unknown_kid");
  }
  const std::string_view signing_input =
      token.substr(0, parts.header_b64.size() + 1 + parts.payload_b64.size());
  if (!internal::VerifyEs256(key, AsBytes(signing_input), parts.signature)) {
    ERR_clear_error();
    return Reject("the signature does not verify", "bad_signature");
  }

  // Only signed bytes are interpreted from here on.
  IJAZAT_ASSIGN_OR_RETURN(const json payload,
                          internal::ParseStrictObject(AsText(parts.payload), "the payload"));
  VerifiedToken verified;
  verified.type = options.type;
  verified.kid = std::move(kid);
  verified.payload_json = std::string(AsText(parts.payload));

  std::vector<std::string> audiences;
  std::string issuer;
  std::int64_t issued_at = 0;
  if (options.type == TokenType::kConsentToken) {
    IJAZAT_ASSIGN_OR_RETURN(ConsentTokenClaims claims,
                            internal::ConsentClaimsFromJson(payload, &audiences));
    issuer = claims.issuer;
    issued_at = claims.issued_at;
    claims.audience = options.audience;
    verified.consent = std::move(claims);
  } else {
    IJAZAT_ASSIGN_OR_RETURN(ReceiptClaims claims,
                            internal::ReceiptClaimsFromJson(payload, &audiences));
    issuer = claims.issuer;
    issued_at = claims.issued_at;
    claims.audience = options.audience;
    verified.receipt = std::move(claims);
  }

  if (options.issuer.has_value() && issuer != *options.issuer) {
    // The signature verified: the issuer is an appliance's own URL, safe to show (printable
    // characters only, and short).
    std::string shown;
    for (const char c : issuer.substr(0, 200)) shown += (c >= 0x20 && c < 0x7F) ? c : '?';
    return Reject("iss is \"" + shown + "\", expected \"" + *options.issuer + "\"", "wrong_issuer");
  }
  IJAZAT_RETURN_IF_ERROR(CheckAudience(audiences, options.audience));
  if (verified.consent.has_value()) {
    if (now - leeway >= verified.consent->expires_at) {
      return Reject("the token expired at " + FormatTime(verified.consent->expires_at), "expired");
    }
    if (now + leeway < verified.consent->not_before) {
      return Reject("the token is not valid before " + FormatTime(verified.consent->not_before),
                    "not_yet_valid");
    }
  }
  if (now + leeway < issued_at) {
    return Reject("iat " + FormatTime(issued_at) + " is in the future", "not_yet_valid");
  }
  return verified;
}

}  // namespace ijazat::verifier
