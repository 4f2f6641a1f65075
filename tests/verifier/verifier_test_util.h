// Shared by the verifier tests: sample claims, a software P-256 signer (for tests that need
// tokens no appliance would sign), and helpers around python3-jwcrypto.
#pragma once

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "ijazat/common/bytes.h"
#include "ijazat/verifier/token.h"
#include "support/temp_dir.h"

namespace ijazat::verifier::testing {

// 2025-03-01T10:00:00Z: the issue time of the sample claims and of the documented examples.
inline constexpr std::int64_t kIssuedAt = 1740823200;
inline constexpr std::int64_t kTokenLifetime = 600;
inline constexpr char kIssuer[] = "https://ijazat.nadra.example";
inline constexpr char kProvider[] = "demo-bank";
inline constexpr char kPseudonym[] = "q9sZ3Xl8aR0fmZ0bT6Pp4V0r8wXnKa1qS0dWm3J5r2E";

inline ConsentTokenClaims SampleConsentClaims() {
  ConsentTokenClaims c;
  c.issuer = kIssuer;
  c.subject = kPseudonym;
  c.audience = kProvider;
  c.issued_at = kIssuedAt;
  c.not_before = kIssuedAt;
  c.expires_at = kIssuedAt + kTokenLifetime;
  c.consent_id = "c_7Yb2kQ9dXw4mZp1s";
  c.purpose = "account-opening";
  c.scopes = {"name", "father_name", "date_of_birth"};
  c.policy = {"2025.06.1", "3f0c1e7a9b2d4c6e8f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60"};
  c.max_uses = 1;
  return c;
}

inline ReceiptClaims SampleReceiptClaims() {
  ReceiptClaims r;
  r.issuer = kIssuer;
  r.audience = kProvider;
  r.issued_at = kIssuedAt;
  r.consent_id = "c_7Yb2kQ9dXw4mZp1s";
  r.consent_timestamp = kIssuedAt;
  r.language = "en";
  r.pii_principal_id = kPseudonym;
  PiiController bank;
  bank.name = "Demo Bank";
  bank.contact = "Data Protection Officer";
  bank.address = {"1 Demo Road, Karachi", "PK"};
  bank.email = "dpo@demo-bank.example";
  bank.phone = "+92 21 111 000 000";
  bank.url = "https://demo-bank.example";
  r.pii_controllers = {bank};
  r.policy_url = "https://ijazat.nadra.example/policies/demo-bank";
  ReceiptPurpose purpose;
  purpose.purpose = "opening a bank account";
  purpose.purpose_category = {"account-opening"};
  purpose.pii_category = {"name", "father_name", "date_of_birth"};
  purpose.primary_purpose = true;
  purpose.termination = "2025-03-01T10:10:00Z, after 1 verification, or REVOKE by SMS to 8009";
  purpose.third_party_disclosure = false;
  r.services = {{"Demo Bank identity verification", {purpose}}};
  r.sensitive = true;
  r.spi_categories = {"national identity record"};
  return r;
}

// A P-256 key in software, standing in for an attacker's or a third party's signer.
class SoftwareSigner {
 public:
  SoftwareSigner() : key_(EVP_EC_gen("P-256")) {}

  // 0x04 || X || Y.
  Bytes Point() const {
    Bytes point(65);
    std::size_t length = 0;
    EVP_PKEY_get_octet_string_param(key_.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size(),
                                    &length);
    point.resize(length);
    return point;
  }
  std::string X() const { return Base64UrlEncode(ByteView(Point()).subspan(1, 32)); }
  std::string Y() const { return Base64UrlEncode(ByteView(Point()).subspan(33, 32)); }
  std::string Kid() const;  // RFC 7638 thumbprint
  std::string Jwk() const {
    return R"({"kty":"EC","crv":"P-256","x":")" + X() + R"(","y":")" + Y() + R"(","kid":")" +
           Kid() + R"(","alg":"ES256","use":"sig"})";
  }
  std::string JwksJson() const { return R"({"keys":[)" + Jwk() + "]}"; }

  // Raw r||s.
  Bytes Sign(std::string_view message) const;

  // base64url(header).base64url(payload).base64url(r||s) from JSON text as given.
  std::string SignCompact(std::string_view header_json, std::string_view payload_json) const {
    const std::string input =
        Base64UrlEncode(AsBytes(header_json)) + "." + Base64UrlEncode(AsBytes(payload_json));
    return input + "." + Base64UrlEncode(Sign(input));
  }
  std::string Header(std::string_view typ = kConsentTokenTyp) const {
    return R"({"alg":"ES256","typ":")" + std::string(typ) + R"(","kid":")" + Kid() + R"("})";
  }

 private:
  struct Deleter {
    void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
  };
  std::unique_ptr<EVP_PKEY, Deleter> key_;
};

// A consent token or receipt of `claims` signed by `signer`.
std::string SignedConsentToken(const SoftwareSigner& signer, const ConsentTokenClaims& claims);
std::string SignedReceipt(const SoftwareSigner& signer, const ReceiptClaims& claims);

// HMAC-SHA256 JWS with `secret`: the algorithm-confusion attack.
std::string Hs256Token(std::string_view header_json, std::string_view payload_json,
                       ByteView secret);

// Runs Debian's python3 (which has jwcrypto) on `script` with `args`; returns exit code and
// output.
::ijazat::testing::CommandResult RunPython(const ::ijazat::testing::TempDir& dir,
                                           const std::string& script, const std::string& args);

// jwcrypto verifies `token` with the JWKS file; prints the payload on success.
inline constexpr char kJwcryptoVerify[] = R"(
import json, sys
from jwcrypto import jwk, jws
keys = jwk.JWKSet.from_json(open(sys.argv[1]).read())
token = jws.JWS()
token.deserialize(open(sys.argv[2]).read().strip())
header = token.jose_header
assert header["alg"] == "ES256", header
key = keys.get_key(header["kid"])
assert key is not None, "unknown kid"
token.verify(key, alg="ES256")
print(header["typ"])
print(token.payload.decode())
)";

}  // namespace ijazat::verifier::testing
