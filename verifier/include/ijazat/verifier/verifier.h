// Verification of consent tokens and receipts, as a provider performs it offline.
//
//   IJAZAT_ASSIGN_OR_RETURN(const Jwks jwks, Jwks::Parse(jwks_json));
//   VerifyOptions options;
//   options.type = TokenType::kConsentToken;
//   options.audience = "demo-bank";
//   IJAZAT_ASSIGN_OR_RETURN(const VerifiedToken verified, Verify(token, jwks, options));
//   use(verified.consent->scopes);
//
// Checks run in this order; the first failure is returned with a stable reason:
//   1. shape: at most kMaxTokenSize bytes, exactly three strict unpadded base64url parts, header
//      and payload non-empty                                                      "malformed"
//   2. header: one JSON object, valid UTF-8, no duplicate member names, no trailing data,
//      nesting at most 16                                                         "malformed"
//   3. "alg" present and a string ("malformed"), and exactly "ES256"; "none", HS*, RS*, PS*,
//      EdDSA, ES384... are refused                                          "alg_not_allowed"
//   4. no member besides alg, typ, kid: "jku", "jwk", "x5u", "x5c", "crit"... "forbidden_header"
//   5. "typ" is the one options.type expects                                       "wrong_typ"
//   6. "kid" present ("malformed") and in the JWKS                               "unknown_kid"
//   7. signature: 64 bytes r||s, r and s in [1, n-1], ES256 verifies           "bad_signature"
//   8. payload: as the header in 2 (only signed bytes are interpreted)              "malformed"
//   9. claims: each required claim present ("missing_claim", the message names it) and of
//      its type and range ("malformed")
//  10. options.issuer, when set, equals "iss"                                   "wrong_issuer"
//  11. "aud" (a string, or an array of strings) names options.audience       "wrong_audience"
//  12. consent tokens: now - leeway < exp                                            "expired"
//      now + leeway >= nbf, and (tokens and receipts) now + leeway >= iat      "not_yet_valid"
//      Receipts do not expire: they are records.
// Token rejections have code kUnauthenticated ("malformed": kInvalidArgument). Options that
// make no sense (empty audience, leeway outside [0, kMaxLeewaySeconds], a time out of range)
// fail with kInvalidArgument, reason "invalid_options". Messages name claims and may quote the
// key id (reduced to base64url characters) and times; never other claim values, so they are
// safe to log.
//
// Thread safety: Verify is a pure function of its arguments; call it from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "ijazat/common/result.h"
#include "ijazat/verifier/jwks.h"
#include "ijazat/verifier/token.h"

namespace ijazat::verifier {

inline constexpr std::int64_t kDefaultLeewaySeconds = 60;
inline constexpr std::int64_t kMaxLeewaySeconds = 300;

struct VerifyOptions {
  TokenType type = TokenType::kConsentToken;
  // The provider's own id; required.
  std::string audience;
  // When set, "iss" must equal it.
  std::optional<std::string> issuer;
  // Seconds since the Unix epoch; unset reads the system clock.
  std::optional<std::int64_t> now;
  std::int64_t leeway_seconds = kDefaultLeewaySeconds;
};

struct VerifiedToken {
  TokenType type = TokenType::kConsentToken;
  std::string kid;           // the key that verified it
  std::string payload_json;  // the payload exactly as signed
  // Exactly one is set, matching `type`.
  std::optional<ConsentTokenClaims> consent;
  std::optional<ReceiptClaims> receipt;
};

Result<VerifiedToken> Verify(std::string_view token, const Jwks& jwks,
                             const VerifyOptions& options);

}  // namespace ijazat::verifier
