#include "hsm_token_service.h"

#include "ijazat/verifier/token.h"
#include "ijazat/verifier/verifier.h"

namespace ijazat::appliance {

HsmTokenService::HsmTokenService(hsm::Hsm& hsm, ReceiptIssuer issuer,
                                 std::function<Result<std::string>()> jwks_source)
    : hsm_(hsm), issuer_(std::move(issuer)), jwks_source_(std::move(jwks_source)) {}

Result<std::string> HsmTokenService::KidFor(const hsm::KeyRef& key) {
  {
    const std::lock_guard lock(mutex_);
    if (const auto it = kids_.find(key.version); it != kids_.end()) return it->second;
  }
  IJAZAT_ASSIGN_OR_RETURN(const hsm::PublicKey public_key, hsm_.ExportPublicKey(key));
  const std::lock_guard lock(mutex_);
  kids_[key.version] = public_key.kid;
  return public_key.kid;
}

Result<IssuedTokens> HsmTokenService::Issue(const Consent& consent, const TokenContext& context,
                                            Timestamp now) {
  IJAZAT_ASSIGN_OR_RETURN(const hsm::KeyRef key, hsm_.ActiveKey(hsm::KeyKind::kReceipt));
  IJAZAT_ASSIGN_OR_RETURN(const std::string kid, KidFor(key));

  verifier::ConsentTokenClaims claims;
  claims.issuer = issuer_.issuer;
  claims.subject = context.subject;
  claims.audience = consent.provider_id;
  claims.issued_at = now;
  claims.not_before = now;
  claims.expires_at = context.token_expires_at;
  claims.consent_id = consent.id;
  claims.purpose = consent.purpose;
  claims.scopes = consent.scopes;
  claims.policy = {consent.policy_version, consent.policy_hash};
  claims.max_uses = consent.max_uses;

  verifier::ReceiptClaims receipt;
  receipt.issuer = issuer_.issuer;
  receipt.audience = consent.provider_id;
  receipt.issued_at = now;
  receipt.consent_id = consent.id;
  receipt.consent_timestamp = now;
  receipt.pii_principal_id = context.subject;
  // The provider is the controller, with the details its policy gives; the operator, who runs
  // the appliance for it, follows as the processor (Kantara: onBehalf).
  verifier::PiiController controller;
  controller.name = context.provider_name;
  controller.contact = issuer_.operator_contact;  // without details, the operator answers
  receipt.policy_url = issuer_.policy_url;
  if (context.controller) {
    const policy::Controller& details = *context.controller;
    controller.name = details.legal_name;
    controller.contact = details.contact;
    controller.address = {details.address, details.country};
    controller.email = details.email;
    controller.phone = details.phone;
    if (!details.privacy_policy_url.empty()) receipt.policy_url = details.privacy_policy_url;
  }
  receipt.pii_controllers.push_back(controller);
  verifier::PiiController processor;
  processor.name = issuer_.operator_name;
  processor.on_behalf = true;
  processor.contact = issuer_.operator_contact;
  processor.address.address_country = issuer_.operator_country;
  receipt.pii_controllers.push_back(processor);
  verifier::ReceiptPurpose purpose;
  purpose.purpose = context.purpose_text;
  purpose.purpose_category = {consent.purpose};
  purpose.pii_category = consent.scopes;
  // When the consent ends, in the words of the citizen's SMS commands.
  purpose.termination = Iso8601(context.token_expires_at) + ", after " +
                        std::to_string(consent.max_uses) +
                        (consent.max_uses == 1 ? " verification" : " verifications") +
                        ", or REVOKE " + consent.reference + " by SMS to " + issuer_.short_code;
  receipt.services.push_back({context.provider_name, {purpose}});
  receipt.sensitive = true;
  receipt.spi_categories = {"national identity"};

  IssuedTokens issued;
  issued.key_version = key.version;
  IJAZAT_ASSIGN_OR_RETURN(const std::string token_input,
                          verifier::ConsentTokenSigningInput(claims, kid));
  IJAZAT_ASSIGN_OR_RETURN(const Bytes token_signature, hsm_.SignEs256(key, AsBytes(token_input)));
  IJAZAT_ASSIGN_OR_RETURN(issued.consent_token,
                          verifier::AssembleJws(token_input, token_signature));
  IJAZAT_ASSIGN_OR_RETURN(const std::string receipt_input,
                          verifier::ReceiptSigningInput(receipt, kid));
  IJAZAT_ASSIGN_OR_RETURN(const Bytes receipt_signature,
                          hsm_.SignEs256(key, AsBytes(receipt_input)));
  IJAZAT_ASSIGN_OR_RETURN(issued.receipt, verifier::AssembleJws(receipt_input, receipt_signature));
  return issued;
}

Result<verifier::Jwks> HsmTokenService::LoadJwks(bool refresh) {
  {
    const std::lock_guard lock(mutex_);
    if (jwks_ && !refresh) return *jwks_;
  }
  IJAZAT_ASSIGN_OR_RETURN(std::string json, jwks_source_());
  IJAZAT_ASSIGN_OR_RETURN(verifier::Jwks parsed, verifier::Jwks::Parse(json));
  const std::lock_guard lock(mutex_);
  jwks_json_ = std::move(json);
  jwks_ = parsed;
  return parsed;
}

Result<TokenClaims> HsmTokenService::Verify(const std::string& token, const std::string& audience,
                                            Timestamp now) {
  verifier::VerifyOptions options;
  options.type = verifier::TokenType::kConsentToken;
  options.audience = audience;
  options.issuer = issuer_.issuer;
  options.now = now;
  options.leeway_seconds = 0;  // the appliance's own clock made the token
  IJAZAT_ASSIGN_OR_RETURN(verifier::Jwks jwks, LoadJwks(false));
  auto verified = verifier::Verify(token, jwks, options);
  if (!verified.ok() && verified.error().reason() == "unknown_kid") {
    // A rotation since the keys were read: read them again, at most every 30 s.
    bool refresh = false;
    {
      const std::lock_guard lock(mutex_);
      if (now - last_unknown_kid_refresh_ >= 30) {
        last_unknown_kid_refresh_ = now;
        refresh = true;
      }
    }
    if (refresh) {
      IJAZAT_ASSIGN_OR_RETURN(jwks, LoadJwks(true));
      verified = verifier::Verify(token, jwks, options);
    }
  }
  if (!verified.ok()) return verified.error();
  const verifier::ConsentTokenClaims& claims = *verified->consent;
  return TokenClaims{claims.consent_id, claims.audience, claims.subject,
                     claims.purpose,    claims.scopes,   claims.expires_at};
}

Result<std::string> HsmTokenService::Jwks() {
  {
    const std::lock_guard lock(mutex_);
    if (jwks_json_) return *jwks_json_;
  }
  IJAZAT_RETURN_IF_ERROR(LoadJwks(true));
  const std::lock_guard lock(mutex_);
  return *jwks_json_;
}

}  // namespace ijazat::appliance

namespace ijazat::appliance {

void HsmTokenService::Refresh() {
  const std::lock_guard lock(mutex_);
  kids_.clear();
  jwks_.reset();
  jwks_json_.reset();
}

}  // namespace ijazat::appliance
