// Tokens and receipts signed by the HSM layer on a real SoftHSM token, verified three ways: the
// library, ijazat-verify, and python3-jwcrypto (an independent JOSE implementation). Also key
// rotation and retirement as a provider sees them, and tampering with HSM-signed tokens.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "hsm_fixture.h"
#include "ijazat/hsm/pkcs11_hsm.h"
#include "ijazat/verifier/jwks.h"
#include "ijazat/verifier/token.h"
#include "ijazat/verifier/verifier.h"
#include "support/result_matchers.h"
#include "support/temp_dir.h"
#include "verifier_test_util.h"

namespace ijazat::verifier {
namespace {

using ::testing::HasSubstr;
using testing::kIssuedAt;
using testing::kProvider;
using testing::SampleConsentClaims;
using testing::SampleReceiptClaims;
using ::testing::StartsWith;
using json = nlohmann::json;
using hsm::KeyKind;
using hsm::KeyRef;

const KeyRef kReceipt1{KeyKind::kReceipt, 1};
const KeyRef kReceipt2{KeyKind::kReceipt, 2};

class VerifierHsmTest : public hsm::HsmTest {
 protected:
  void SetUp() override {
    hsm_ = Provisioned();
    ASSERT_NE(hsm_, nullptr);
  }

  std::string Kid(const KeyRef& key) {
    const auto exported = hsm_->ExportPublicKey(key);
    EXPECT_THAT(exported, IsOk());
    return exported.ok() ? exported->kid : "";
  }

  // Exactly what the appliance does: signing input, SignEs256 in the HSM, assembly.
  std::string IssueToken(const KeyRef& key, const ConsentTokenClaims& claims) {
    const auto input = ConsentTokenSigningInput(claims, Kid(key));
    EXPECT_THAT(input, IsOk());
    const auto signature = hsm_->SignEs256(key, AsBytes(*input));
    EXPECT_THAT(signature, IsOk());
    const auto token = AssembleJws(*input, *signature);
    EXPECT_THAT(token, IsOk());
    return token.ok() ? *token : "";
  }
  std::string IssueReceipt(const KeyRef& key, const ReceiptClaims& claims) {
    const auto input = ReceiptSigningInput(claims, Kid(key));
    EXPECT_THAT(input, IsOk());
    const auto signature = hsm_->SignEs256(key, AsBytes(*input));
    EXPECT_THAT(signature, IsOk());
    const auto token = AssembleJws(*input, *signature);
    EXPECT_THAT(token, IsOk());
    return token.ok() ? *token : "";
  }

  // The appliance's pairwise subject: HMAC under the index key of provider and CNIC.
  std::string Pseudonym(std::string_view provider, std::string_view cnic) {
    const auto mac = hsm_->Hmac(KeyRef{KeyKind::kIndex, 1},
                                AsBytes("sub\n" + std::string(provider) + "\n" + std::string(cnic)),
                                hsm::HmacHash::kSha256);
    EXPECT_THAT(mac, IsOk());
    return mac.ok() ? Base64UrlEncode(*mac) : "";
  }

  std::string JwksJson() {
    const auto jwks = hsm_->Jwks();
    EXPECT_THAT(jwks, IsOk());
    return jwks.ok() ? *jwks : "";
  }
  Jwks ParsedJwks() {
    auto jwks = Jwks::Parse(JwksJson());
    EXPECT_THAT(jwks, IsOk());
    return jwks.ok() ? std::move(jwks).value() : Jwks();
  }

  static VerifyOptions Options(TokenType type = TokenType::kConsentToken) {
    VerifyOptions options;
    options.type = type;
    options.audience = kProvider;
    options.now = kIssuedAt + 10;
    return options;
  }

  ::ijazat::testing::CommandResult Cli(const std::string& arguments) {
    return ::ijazat::testing::RunCommand(::ijazat::testing::BinaryPath("ijazat-verify") + " " +
                                         arguments);
  }

  std::unique_ptr<hsm::Pkcs11Hsm> hsm_;
};

TEST_F(VerifierHsmTest, TokenAndReceipt_VerifyWithTheLibraryTheCliAndJwcrypto) {
  ConsentTokenClaims claims = SampleConsentClaims();
  claims.subject = Pseudonym(kProvider, "3520212345671");
  ReceiptClaims receipt_claims = SampleReceiptClaims();
  receipt_claims.pii_principal_id = claims.subject;
  const std::string token = IssueToken(kReceipt1, claims);
  const std::string receipt = IssueReceipt(kReceipt1, receipt_claims);
  const Jwks jwks = ParsedJwks();

  const auto verified = Verify(token, jwks, Options());
  ASSERT_THAT(verified, IsOk());
  EXPECT_EQ(*verified->consent, claims);
  EXPECT_EQ(verified->kid, Kid(kReceipt1));
  const auto verified_receipt = Verify(receipt, jwks, Options(TokenType::kReceipt));
  ASSERT_THAT(verified_receipt, IsOk());
  EXPECT_EQ(*verified_receipt->receipt, receipt_claims);

  const auto& dir = token_.dir();
  const auto jwks_file = dir.WriteFile("jwks.json", JwksJson());
  const auto token_file = dir.WriteFile("token.jws", token);
  const auto receipt_file = dir.WriteFile("receipt.jws", receipt);

  const auto cli =
      Cli("--jwks " + jwks_file.string() + " --aud demo-bank --at 1740823210 " + token);
  ASSERT_EQ(cli.exit_code, 0) << cli.output;
  EXPECT_EQ(json::parse(cli.output), json::parse(verified->payload_json));
  const auto cli_receipt =
      Cli("--jwks " + jwks_file.string() +
          " --aud demo-bank --receipt --at 2025-03-01T10:00:10Z - < " + receipt_file.string());
  ASSERT_EQ(cli_receipt.exit_code, 0) << cli_receipt.output;
  EXPECT_THAT(cli_receipt.output, HasSubstr(R"("version": "KI-CR-v1.1.0")"));

  for (const auto& [file, typ] :
       {std::pair{token_file, "consent+jwt"}, std::pair{receipt_file, "consent-receipt+jwt"}}) {
    const auto python =
        testing::RunPython(dir, testing::kJwcryptoVerify, jwks_file.string() + " " + file.string());
    ASSERT_EQ(python.exit_code, 0) << python.output;
    EXPECT_THAT(python.output, StartsWith(std::string(typ) + "\n"));
  }
}

TEST_F(VerifierHsmTest, EveryBitFlip_OfHeaderPayloadOrSignature_IsRejected) {
  const std::string token = IssueToken(kReceipt1, SampleConsentClaims());
  const Jwks jwks = ParsedJwks();
  ASSERT_THAT(Verify(token, jwks, Options()), IsOk());

  // Flips of the decoded bytes, re-encoded: the signature must catch each.
  const auto first = token.find('.');
  const auto second = token.find('.', first + 1);
  const std::vector<std::string> parts = {token.substr(0, first),
                                          token.substr(first + 1, second - first - 1),
                                          token.substr(second + 1)};
  int flips = 0;
  for (std::size_t part = 0; part < parts.size(); ++part) {
    const Bytes original = *Base64UrlDecode(parts[part]);
    for (std::size_t byte = 0; byte < original.size(); ++byte) {
      for (int bit = 0; bit < 8; ++bit) {
        Bytes flipped = original;
        flipped[byte] = static_cast<std::uint8_t>(flipped[byte] ^ (1u << bit));
        std::vector<std::string> edited = parts;
        edited[part] = Base64UrlEncode(flipped);
        const std::string tampered = edited[0] + "." + edited[1] + "." + edited[2];
        ASSERT_FALSE(Verify(tampered, jwks, Options()).ok())
            << "part " << part << " byte " << byte << " bit " << bit;
        ++flips;
      }
    }
  }
  // Flips of the serialised characters (including the dots).
  for (std::size_t i = 0; i < token.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string tampered = token;
      tampered[i] = static_cast<char>(tampered[i] ^ (1 << bit));
      ASSERT_FALSE(Verify(tampered, jwks, Options()).ok()) << "char " << i << " bit " << bit;
      ++flips;
    }
  }
  EXPECT_GT(flips, 5000);
}

TEST_F(VerifierHsmTest, Hs256SignedWithTheHsmPublicKey_IsNotAllowed) {
  const auto exported = hsm_->ExportPublicKey(kReceipt1);
  ASSERT_THAT(exported, IsOk());
  const std::string payload = ConsentTokenPayloadJson(SampleConsentClaims()).value();
  const std::string header =
      R"({"alg":"HS256","typ":"consent+jwt","kid":")" + exported->kid + R"("})";
  const Jwks jwks = ParsedJwks();
  EXPECT_THAT(Verify(testing::Hs256Token(header, payload, exported->point), jwks, Options()),
              HasReason("alg_not_allowed"));
  EXPECT_THAT(Verify(testing::Hs256Token(header, payload, AsBytes(exported->jwk)), jwks, Options()),
              HasReason("alg_not_allowed"));

  // jwcrypto signs HS256 with the PEM of the public key as the secret (the classic attack).
  const auto& dir = token_.dir();
  const auto jwk_file = dir.WriteFile("public.jwk", exported->jwk);
  const auto payload_file = dir.WriteFile("payload.json", payload);
  const auto python = testing::RunPython(dir, R"(
import sys
from jwcrypto import jwk, jws
from jwcrypto.common import base64url_encode
public = jwk.JWK.from_json(open(sys.argv[1]).read())
secret = jwk.JWK(kty="oct", k=base64url_encode(public.export_to_pem()))
token = jws.JWS(open(sys.argv[2]).read().encode())
token.add_signature(secret, None, '{"alg":"HS256","typ":"consent+jwt","kid":"%s"}' % public.thumbprint())
print(token.serialize(compact=True))
)",
                                         jwk_file.string() + " " + payload_file.string());
  ASSERT_EQ(python.exit_code, 0) << python.output;
  std::string forged = python.output;
  while (!forged.empty() && forged.back() == '\n') forged.pop_back();
  EXPECT_THAT(Verify(forged, jwks, Options()), HasReason("alg_not_allowed"));
  const auto jwks_file = dir.WriteFile("jwks.json", JwksJson());
  const auto cli =
      Cli("--jwks " + jwks_file.string() + " --aud demo-bank --at 1740823210 " + forged);
  EXPECT_EQ(cli.exit_code, 1);
  EXPECT_THAT(cli.output, HasSubstr("rejected (alg_not_allowed)"));
}

TEST_F(VerifierHsmTest, TokensSignedBeforeARotation_VerifyAfterIt) {
  const std::string old_token = IssueToken(kReceipt1, SampleConsentClaims());
  const std::string old_receipt = IssueReceipt(kReceipt1, SampleReceiptClaims());
  ASSERT_THAT(hsm_->RotateKey(KeyKind::kReceipt), IsOk());
  const std::string new_token = IssueToken(kReceipt2, SampleConsentClaims());
  EXPECT_NE(Kid(kReceipt1), Kid(kReceipt2));

  // v1 is verify-only (rotated out, not retired): both versions are published.
  const Jwks jwks = ParsedJwks();
  EXPECT_EQ(jwks.size(), 2u);
  EXPECT_TRUE(jwks.Contains(Kid(kReceipt1)));
  EXPECT_TRUE(jwks.Contains(Kid(kReceipt2)));
  const auto old_verified = Verify(old_token, jwks, Options());
  ASSERT_THAT(old_verified, IsOk());
  EXPECT_EQ(old_verified->kid, Kid(kReceipt1));
  EXPECT_THAT(Verify(old_receipt, jwks, Options(TokenType::kReceipt)), IsOk());
  const auto new_verified = Verify(new_token, jwks, Options());
  ASSERT_THAT(new_verified, IsOk());
  EXPECT_EQ(new_verified->kid, Kid(kReceipt2));
  // The HSM refuses to sign with the rotated-out version.
  EXPECT_THAT(hsm_->SignEs256(kReceipt1, AsBytes("x")), HasReason("key_not_active"));
}

TEST_F(VerifierHsmTest, TokenOfARetiredKey_FailsWithUnknownKid) {
  const std::string old_token = IssueToken(kReceipt1, SampleConsentClaims());
  const std::string old_receipt = IssueReceipt(kReceipt1, SampleReceiptClaims());
  const std::string archived_jwks = JwksJson();
  ASSERT_THAT(hsm_->RotateKey(KeyKind::kReceipt), IsOk());
  ASSERT_THAT(hsm_->RetireKey(kReceipt1), IsOk());
  const std::string new_token = IssueToken(kReceipt2, SampleConsentClaims());

  const Jwks jwks = ParsedJwks();
  EXPECT_EQ(jwks.Kids(), std::vector<std::string>{Kid(kReceipt2)});
  EXPECT_THAT(Verify(old_token, jwks, Options()), HasReason("unknown_kid"));
  EXPECT_THAT(Verify(old_receipt, jwks, Options(TokenType::kReceipt)), HasReason("unknown_kid"));
  EXPECT_THAT(Verify(new_token, jwks, Options()), IsOk());
  // An auditor holding the JWKS archived before the retirement can still check the receipt.
  EXPECT_THAT(Verify(old_receipt, Jwks::Parse(archived_jwks).value(), Options(TokenType::kReceipt)),
              IsOk());

  const auto jwks_file = token_.dir().WriteFile("jwks.json", JwksJson());
  const auto cli =
      Cli("--jwks " + jwks_file.string() + " --aud demo-bank --at 1740823210 " + old_token);
  EXPECT_EQ(cli.exit_code, 1);
  EXPECT_THAT(cli.output, HasSubstr("rejected (unknown_kid)"));
}

}  // namespace
}  // namespace ijazat::verifier
