// The consent token and the consent receipt: their claims, and the issuance helpers that turn
// claims into a JWS without touching a key.
//
// Both are JWS compact serialisations signed with ES256 (docs/consent-token.md is the normative
// description). Issuance is split so that the key stays in the HSM:
//
//   IJAZAT_ASSIGN_OR_RETURN(auto input, ConsentTokenSigningInput(claims, kid));
//   IJAZAT_ASSIGN_OR_RETURN(auto rs, hsm.SignEs256(receipt_key, AsBytes(input)));  // raw r||s
//   IJAZAT_ASSIGN_OR_RETURN(auto token, AssembleJws(input, rs));
//
// Everything here is a pure function of its arguments: safe to call from any number of threads.
// Errors: kInvalidArgument with reason "invalid_claims" (a claim is empty, out of range, not
// valid UTF-8, or a subject that is not a pseudonym) or "invalid_signature" (AssembleJws given
// a signature that is not 64 bytes or a signing input that is not two base64url parts).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ijazat/common/bytes.h"
#include "ijazat/common/result.h"

namespace ijazat::verifier {

enum class TokenType {
  kConsentToken,  // typ "consent+jwt": presented by a provider to verify a CNIC
  kReceipt,       // typ "consent-receipt+jwt": the record of the consent (Kantara CR v1.1)
};

inline constexpr std::string_view kConsentTokenTyp = "consent+jwt";
inline constexpr std::string_view kReceiptTyp = "consent-receipt+jwt";
inline constexpr std::string_view kReceiptVersion = "KI-CR-v1.1.0";
// Largest token or receipt accepted by Verify (and produced by AssembleJws).
inline constexpr std::size_t kMaxTokenSize = std::size_t{16} * 1024;

// The "typ" header value of `type`.
std::string_view TypHeader(TokenType type);

// The policy a consent was granted under.
struct PolicyRef {
  std::string version;  // the policy file's version string
  std::string hash;     // SHA-256 of the policy document, 64 lowercase hex digits
  friend bool operator==(const PolicyRef&, const PolicyRef&) = default;
};

// Claims of a consent token. Times are NumericDate: whole seconds since the Unix epoch.
struct ConsentTokenClaims {
  std::string issuer;           // iss: the appliance's configured issuer id
  std::string subject;          // sub: pairwise pseudonym, base64url of >= 16 bytes; never a CNIC
  std::string audience;         // aud: provider id (after Verify: the audience that matched)
  std::int64_t issued_at = 0;   // iat
  std::int64_t not_before = 0;  // nbf
  std::int64_t expires_at = 0;  // exp
  std::string consent_id;       // jti
  std::vector<std::string> amr = {"otp", "sms"};
  std::string purpose;              // purpose id from the provider's policy
  std::vector<std::string> scopes;  // identity attribute names the consent covers
  PolicyRef policy;                 // policy {version, hash}
  std::int64_t max_uses = 1;        // verifications the appliance allows with this token

  friend bool operator==(const ConsentTokenClaims&, const ConsentTokenClaims&) = default;
};

// Kantara Consent Receipt v1.1 structures (field names in comments).
struct ReceiptAddress {
  std::string street_address;   // streetAddress
  std::string address_country;  // addressCountry (ISO 3166-1 alpha-2)
  friend bool operator==(const ReceiptAddress&, const ReceiptAddress&) = default;
};

struct PiiController {
  std::string name;        // piiController
  bool on_behalf = false;  // onBehalf
  std::string contact;     // contact
  ReceiptAddress address;  // address
  std::string email;       // email
  std::string phone;       // phone
  std::string url;         // piiControllerUrl (omitted when empty)
  friend bool operator==(const PiiController&, const PiiController&) = default;
};

struct ReceiptPurpose {
  std::string purpose;                        // purpose: human-readable description
  std::vector<std::string> purpose_category;  // purposeCategory: the purpose id first
  std::vector<std::string> pii_category;      // piiCategory: the consented scopes
  bool primary_purpose = true;                // primaryPurpose
  std::string termination;                    // termination
  bool third_party_disclosure = false;        // thirdPartyDisclosure
  std::string third_party_name;               // thirdPartyName (omitted when empty)
  friend bool operator==(const ReceiptPurpose&, const ReceiptPurpose&) = default;
};

struct ReceiptService {
  std::string service;                   // service
  std::vector<ReceiptPurpose> purposes;  // purposes; consentType is always "EXPLICIT"
  friend bool operator==(const ReceiptService&, const ReceiptService&) = default;
};

// Claims of a consent receipt. Constant members (version "KI-CR-v1.1.0", jurisdiction "PK",
// collectionMethod "SMS-OTP", consentType "EXPLICIT") are written by ReceiptPayloadJson and
// checked by Verify; they are not fields here.
struct ReceiptClaims {
  std::string issuer;                  // iss
  std::string audience;                // aud: provider id (after Verify: the audience that matched)
  std::int64_t issued_at = 0;          // iat
  std::string consent_id;              // jti and consentReceiptID: the consent id
  std::int64_t consent_timestamp = 0;  // consentTimestamp: when the code was confirmed
  std::string language = "en";         // language (BCP 47) of the SMS the citizen received
  std::string pii_principal_id;        // piiPrincipalId: the pairwise subject, as the token's sub
  std::vector<PiiController> pii_controllers;  // piiControllers
  std::string policy_url;                      // policyUrl
  std::vector<ReceiptService> services;        // services
  bool sensitive = false;                      // sensitive
  std::vector<std::string> spi_categories;     // spiCat
  friend bool operator==(const ReceiptClaims&, const ReceiptClaims&) = default;
};

// {"alg":"ES256","typ":"<typ of type>","kid":"<kid>"}, exactly this member order.
Result<std::string> JwsHeaderJson(TokenType type, std::string_view kid);
// Payload JSON of a consent token or a receipt, after validating the claims.
Result<std::string> ConsentTokenPayloadJson(const ConsentTokenClaims& claims);
Result<std::string> ReceiptPayloadJson(const ReceiptClaims& claims);

// base64url(header) "." base64url(payload): the bytes to sign with ES256.
Result<std::string> ConsentTokenSigningInput(const ConsentTokenClaims& claims,
                                             std::string_view kid);
Result<std::string> ReceiptSigningInput(const ReceiptClaims& claims, std::string_view kid);

// signing_input "." base64url(signature), where `signature` is the raw 64-byte r||s that
// SignEs256 returned for signing_input.
Result<std::string> AssembleJws(std::string_view signing_input, ByteView signature);

}  // namespace ijazat::verifier
