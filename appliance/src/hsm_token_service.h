// TokenService on the HSM: signs with the active receipt key (ES256 in the HSM) in the format of
// docs/consent-token.md, and verifies with the verifier library against the appliance's own
// JWKS, re-read when a token names a key id it has not seen (after a rotation).
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "ijazat/hsm/hsm.h"
#include "ijazat/verifier/jwks.h"
#include "token_service.h"

namespace ijazat::appliance {

struct ReceiptIssuer {
  std::string issuer;  // iss
  // The operator, named after the provider as the processor (onBehalf: true).
  std::string operator_name;
  std::string operator_contact;
  std::string operator_country = "PK";
  std::string policy_url;  // policyUrl when the provider's controller details give none
  std::string short_code;  // where citizens text REVOKE (the receipt's termination)
};

class HsmTokenService final : public TokenService {
 public:
  // `jwks_source` returns the current {"keys":[...]} (the HSM layer's Jwks()).
  HsmTokenService(hsm::Hsm& hsm, ReceiptIssuer issuer,
                  std::function<Result<std::string>()> jwks_source);

  Result<IssuedTokens> Issue(const Consent& consent, const TokenContext& context,
                             Timestamp now) override;
  Result<TokenClaims> Verify(const std::string& token, const std::string& audience,
                             Timestamp now) override;
  Result<std::string> Jwks() override;
  // Forgets the cached keys (after a rotation by the provisioning tool).
  void Refresh();

 private:
  Result<std::string> KidFor(const hsm::KeyRef& key);
  Result<verifier::Jwks> LoadJwks(bool refresh);

  hsm::Hsm& hsm_;
  ReceiptIssuer issuer_;
  std::function<Result<std::string>()> jwks_source_;
  std::mutex mutex_;
  std::map<std::uint32_t, std::string> kids_;  // receipt key version -> kid
  std::optional<std::string> jwks_json_;
  std::optional<verifier::Jwks> jwks_;
  Timestamp last_unknown_kid_refresh_ = 0;  // forged kids must not make us re-read the HSM
};

}  // namespace ijazat::appliance
