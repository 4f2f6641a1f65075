// Consent tokens and receipts: issued with the HSM's active receipt key, verified against the
// appliance's own published keys. The format is docs/consent-token.md.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ijazat/common/result.h"
#include "ijazat/policy/policy_set.h"
#include "model.h"

namespace ijazat::appliance {

// What a token and its receipt say, beyond the consent record itself.
struct TokenContext {
  std::string subject;        // pairwise pseudonym
  std::string provider_name;  // for the receipt
  std::string purpose_text;   // for the receipt
  // The provider's controller details from its policy; absent, the receipt names the
  // provider by provider_name, with the operator's contact.
  std::optional<policy::Controller> controller;
  Timestamp token_expires_at = 0;
};

struct IssuedTokens {
  std::string consent_token;
  std::string receipt;
  std::uint32_t key_version = 0;
};

// What a verified consent token claims.
struct TokenClaims {
  std::string consent_id;  // jti
  std::string audience;    // provider id
  std::string subject;
  std::string purpose;
  std::vector<std::string> scopes;
  Timestamp expires_at = 0;
};

class TokenService {
 public:
  virtual ~TokenService() = default;
  virtual Result<IssuedTokens> Issue(const Consent& consent, const TokenContext& context,
                                     Timestamp now) = 0;
  // Signature (against every non-retired receipt key), typ, audience and time; errors carry the
  // verifier's reasons ("bad_signature", "expired", "wrong_audience", ...).
  virtual Result<TokenClaims> Verify(const std::string& token, const std::string& audience,
                                     Timestamp now) = 0;
  // {"keys":[...]} as published at /.well-known/jwks.json.
  virtual Result<std::string> Jwks() = 0;
};

}  // namespace ijazat::appliance
