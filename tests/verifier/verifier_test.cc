// The verifier library on its own: issuance helpers, JWKS parsing and every check of Verify,
// with a software P-256 key standing in for the HSM (verifier_hsm_test.cc uses the real one).
#include "ijazat/verifier/verifier.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ijazat/verifier/jwks.h"
#include "ijazat/verifier/token.h"
#include "support/result_matchers.h"
#include "verifier_test_util.h"

namespace ijazat::verifier {
namespace {

using ::testing::HasSubstr;
using testing::kIssuedAt;
using testing::kProvider;
using ::testing::Not;
using testing::SampleConsentClaims;
using testing::SampleReceiptClaims;
using testing::SignedConsentToken;
using testing::SignedReceipt;
using testing::SoftwareSigner;
using json = nlohmann::json;

// ---- Issuance -----------------------------------------------------------------------------

TEST(TokenIssuanceTest, Header_IsExactlyAlgTypKid) {
  EXPECT_THAT(JwsHeaderJson(TokenType::kConsentToken, "abc-_1"),
              IsOkAndHolds(std::string(R"({"alg":"ES256","typ":"consent+jwt","kid":"abc-_1"})")));
  EXPECT_THAT(
      JwsHeaderJson(TokenType::kReceipt, "k"),
      IsOkAndHolds(std::string(R"({"alg":"ES256","typ":"consent-receipt+jwt","kid":"k"})")));
  EXPECT_THAT(JwsHeaderJson(TokenType::kConsentToken, ""), HasReason("invalid_claims"));
  EXPECT_THAT(JwsHeaderJson(TokenType::kConsentToken, R"(a","alg":"none)"),
              HasReason("invalid_claims"));
}

TEST(TokenIssuanceTest, ConsentPayload_IsTheDocumentedJson) {
  EXPECT_THAT(
      ConsentTokenPayloadJson(SampleConsentClaims()),
      IsOkAndHolds(std::string(
          R"({"iss":"https://ijazat.nadra.example","sub":"q9sZ3Xl8aR0fmZ0bT6Pp4V0r8wXnKa1qS0dWm3J5r2E",)"
          R"("aud":"demo-bank","iat":1740823200,"nbf":1740823200,"exp":1740823800,)"
          R"("jti":"c_7Yb2kQ9dXw4mZp1s","amr":["otp","sms"],"purpose":"account-opening",)"
          R"("scopes":["name","father_name","date_of_birth"],)"
          R"("policy":{"version":"2025.06.1","hash":"3f0c1e7a9b2d4c6e8f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60"},)"
          R"("max_uses":1})")));
}

TEST(TokenIssuanceTest, ReceiptPayload_UsesKantaraNamesAndConstants) {
  const auto text = ReceiptPayloadJson(SampleReceiptClaims());
  ASSERT_THAT(text, IsOk());
  const json payload = json::parse(*text);
  EXPECT_EQ(payload["version"], "KI-CR-v1.1.0");
  EXPECT_EQ(payload["jurisdiction"], "PK");
  EXPECT_EQ(payload["collectionMethod"], "SMS-OTP");
  EXPECT_EQ(payload["consentTimestamp"], kIssuedAt);
  EXPECT_EQ(payload["consentReceiptID"], payload["jti"]);
  EXPECT_EQ(payload["piiPrincipalId"], testing::kPseudonym);
  EXPECT_EQ(payload["piiControllers"][0]["piiController"], "Demo Bank");
  EXPECT_EQ(payload["piiControllers"][0]["address"]["addressCountry"], "PK");
  const json& purpose = payload["services"][0]["purposes"][0];
  EXPECT_EQ(purpose["consentType"], "EXPLICIT");
  EXPECT_EQ(purpose["piiCategory"], json({"name", "father_name", "date_of_birth"}));
  EXPECT_FALSE(purpose.contains("thirdPartyName"));
  for (const char* member : {"language", "policyUrl", "sensitive", "spiCat", "iss", "aud", "iat"}) {
    EXPECT_TRUE(payload.contains(member)) << member;
  }
}

TEST(TokenIssuanceTest, SigningInput_IsBase64UrlHeaderDotPayload) {
  const auto input = ConsentTokenSigningInput(SampleConsentClaims(), "kid1");
  ASSERT_THAT(input, IsOk());
  const auto header = JwsHeaderJson(TokenType::kConsentToken, "kid1");
  const auto payload = ConsentTokenPayloadJson(SampleConsentClaims());
  EXPECT_EQ(*input, Base64UrlEncode(AsBytes(*header)) + "." + Base64UrlEncode(AsBytes(*payload)));
}

TEST(TokenIssuanceTest, AssembleJws_AppendsTheSignatureAndChecksItsSize) {
  const Bytes signature(64, 0xAB);
  EXPECT_THAT(AssembleJws("aGVhZA.cGF5", signature),
              IsOkAndHolds(std::string("aGVhZA.cGF5.") + Base64UrlEncode(signature)));
  EXPECT_THAT(AssembleJws("aGVhZA.cGF5", Bytes(63)), HasReason("invalid_signature"));
  EXPECT_THAT(AssembleJws("aGVhZA.cGF5", Bytes(72)), HasReason("invalid_signature"));
  for (const char* input : {"", "aGVhZA", "aGVhZA.", ".cGF5", "a.b.c", "a+b.c", "a.b="}) {
    EXPECT_THAT(AssembleJws(input, signature), HasReason("invalid_signature")) << input;
  }
}

TEST(TokenIssuanceTest, InvalidConsentClaims_AreRefusedBeforeSigning) {
  const std::vector<std::pair<const char*, void (*)(ConsentTokenClaims&)>> cases = {
      {"a CNIC as sub", [](ConsentTokenClaims& c) { c.subject = "3520212345671"; }},
      {"a dashed CNIC as sub", [](ConsentTokenClaims& c) { c.subject = "35202-1234567-1"; }},
      {"a short sub", [](ConsentTokenClaims& c) { c.subject = "AAAAAAAAAAAAAAAAAAAA"; }},
      {"empty iss", [](ConsentTokenClaims& c) { c.issuer.clear(); }},
      {"empty aud", [](ConsentTokenClaims& c) { c.audience.clear(); }},
      {"empty jti", [](ConsentTokenClaims& c) { c.consent_id.clear(); }},
      {"exp before nbf", [](ConsentTokenClaims& c) { c.expires_at = c.not_before; }},
      {"negative iat", [](ConsentTokenClaims& c) { c.issued_at = -1; }},
      {"exp past 9999", [](ConsentTokenClaims& c) { c.expires_at = 253402300800; }},
      {"upper-case hash", [](ConsentTokenClaims& c) { c.policy.hash = std::string(64, 'A'); }},
      {"short hash", [](ConsentTokenClaims& c) { c.policy.hash = "abcd"; }},
      {"no policy version", [](ConsentTokenClaims& c) { c.policy.version.clear(); }},
      {"no scopes", [](ConsentTokenClaims& c) { c.scopes.clear(); }},
      {"an empty scope", [](ConsentTokenClaims& c) { c.scopes.push_back(""); }},
      {"no amr", [](ConsentTokenClaims& c) { c.amr.clear(); }},
      {"zero max_uses", [](ConsentTokenClaims& c) { c.max_uses = 0; }},
      {"invalid UTF-8", [](ConsentTokenClaims& c) { c.purpose = "bad\xff"; }},
  };
  for (const auto& [name, edit] : cases) {
    ConsentTokenClaims claims = SampleConsentClaims();
    edit(claims);
    EXPECT_THAT(ConsentTokenSigningInput(claims, "kid"), HasReason("invalid_claims")) << name;
  }
}

TEST(TokenIssuanceTest, InvalidReceiptClaims_AreRefusedBeforeSigning) {
  const std::vector<std::pair<const char*, void (*)(ReceiptClaims&)>> cases = {
      {"a CNIC as piiPrincipalId", [](ReceiptClaims& r) { r.pii_principal_id = "3520212345671"; }},
      {"no controllers", [](ReceiptClaims& r) { r.pii_controllers.clear(); }},
      {"no services", [](ReceiptClaims& r) { r.services.clear(); }},
      {"no purposes", [](ReceiptClaims& r) { r.services[0].purposes.clear(); }},
      {"no piiCategory", [](ReceiptClaims& r) { r.services[0].purposes[0].pii_category.clear(); }},
      {"no policyUrl", [](ReceiptClaims& r) { r.policy_url.clear(); }},
      {"no language", [](ReceiptClaims& r) { r.language.clear(); }},
      {"no jti", [](ReceiptClaims& r) { r.consent_id.clear(); }},
  };
  for (const auto& [name, edit] : cases) {
    ReceiptClaims claims = SampleReceiptClaims();
    edit(claims);
    EXPECT_THAT(ReceiptSigningInput(claims, "kid"), HasReason("invalid_claims")) << name;
  }
}

TEST(TokenIssuanceTest, OversizedClaims_AreRefused) {
  ConsentTokenClaims claims = SampleConsentClaims();
  claims.scopes.assign(2000, "attribute_name");
  EXPECT_THAT(ConsentTokenSigningInput(claims, "kid"), HasReason("invalid_claims"));
}

// ---- JWKS ---------------------------------------------------------------------------------

TEST(JwksTest, Parse_IndexesKeysByThumbprint) {
  const SoftwareSigner a;
  const SoftwareSigner b;
  const auto jwks = Jwks::Parse(R"({"keys":[)" + a.Jwk() + "," + b.Jwk() + "]}");
  ASSERT_THAT(jwks, IsOk());
  EXPECT_EQ(jwks->size(), 2u);
  EXPECT_TRUE(jwks->Contains(a.Kid()));
  EXPECT_TRUE(jwks->Contains(b.Kid()));
  EXPECT_FALSE(jwks->Contains("other"));
  std::vector<std::string> expected = {a.Kid(), b.Kid()};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(jwks->Kids(), expected);
}

TEST(JwksTest, Parse_AcceptsAnEmptySetAndKeysWithoutUseOrAlg) {
  EXPECT_THAT(Jwks::Parse(R"({"keys":[]})"), IsOk());
  const SoftwareSigner a;
  EXPECT_THAT(Jwks::Parse(R"({"keys":[{"kty":"EC","crv":"P-256","x":")" + a.X() + R"(","y":")" +
                          a.Y() + R"(","kid":")" + a.Kid() + R"("}]})"),
              IsOk());
}

TEST(JwksTest, Parse_RefusesBadKeysAndDocuments) {
  const SoftwareSigner a;
  json good = json::parse(a.Jwk());
  Bytes point = a.Point();
  Bytes y_off_curve(point.begin() + 33, point.end());
  y_off_curve[31] ^= 1;
  const auto with = [&](const std::function<void(json&)>& edit) {
    json key = good;
    edit(key);
    return json{{"keys", json::array({key})}}.dump();
  };
  const std::vector<std::pair<const char*, std::string>> cases = {
      {"private d", with([](json& k) { k["d"] = "AAAA"; })},
      {"P-384", with([](json& k) { k["crv"] = "P-384"; })},
      {"secp256k1", with([](json& k) { k["crv"] = "secp256k1"; })},
      {"RSA", with([](json& k) { k["kty"] = "RSA"; })},
      {"oct", with([](json& k) { k["kty"] = "oct"; })},
      {"no kty", with([](json& k) { k.erase("kty"); })},
      {"use enc", with([](json& k) { k["use"] = "enc"; })},
      {"alg RS256", with([](json& k) { k["alg"] = "RS256"; })},
      {"x 31 bytes", with([&](json& k) { k["x"] = a.X().substr(0, 42); })},
      {"x padded", with([&](json& k) { k["x"] = a.X() + "="; })},
      {"x not a string", with([](json& k) { k["x"] = 5; })},
      {"off the curve", with([&](json& k) { k["y"] = Base64UrlEncode(y_off_curve); })},
      {"x = p", with([](json& k) {
         k["x"] = Base64UrlEncode(
             *HexDecode("ffffffff00000001000000000000000000000000ffffffffffffffffffffffff"));
       })},
      {"zero point", with([](json& k) {
         k["x"] = Base64UrlEncode(Bytes(32));
         k["y"] = Base64UrlEncode(Bytes(32));
       })},
      {"kid not the thumbprint", with([](json& k) { k["kid"] = "my-key-1"; })},
      {"no kid", with([](json& k) { k.erase("kid"); })},
      {"duplicate kid", R"({"keys":[)" + a.Jwk() + "," + a.Jwk() + "]}"},
      {"keys not an array", R"({"keys":{}})"},
      {"no keys", R"({})"},
      {"not JSON", "keys"},
      {"an array", "[]"},
      {"duplicate member", R"({"keys":[],"keys":[]})"},
      {"trailing data", R"({"keys":[]} {})"},
      {"a key not an object", R"({"keys":[1]})"},
      {"too large", std::string(kMaxJwksSize + 1, ' ')},
  };
  for (const auto& [name, document] : cases) {
    EXPECT_THAT(Jwks::Parse(document), HasReason("jwks_invalid")) << name;
  }
  std::string many = R"({"keys":[)";
  for (std::size_t i = 0; i <= kMaxJwksKeys; ++i) many += (i ? "," : "") + SoftwareSigner().Jwk();
  EXPECT_THAT(Jwks::Parse(many + "]}"), HasReason("jwks_invalid"));
}

// ---- Verify ---------------------------------------------------------------------------------

class VerifierTest : public ::testing::Test {
 protected:
  VerifierTest() : jwks_(Jwks::Parse(signer_.JwksJson()).value()) {}

  VerifyOptions Options(TokenType type = TokenType::kConsentToken) const {
    VerifyOptions options;
    options.type = type;
    options.audience = kProvider;
    options.now = kIssuedAt + 10;
    return options;
  }
  Result<VerifiedToken> VerifyToken(std::string_view token) const {
    return Verify(token, jwks_, Options());
  }
  // A token of the sample payload with one edit to its JSON, validly signed.
  std::string SignedWithPayload(const std::function<void(json&)>& edit,
                                TokenType type = TokenType::kConsentToken) const {
    json payload = json::parse(type == TokenType::kConsentToken
                                   ? ConsentTokenPayloadJson(SampleConsentClaims()).value()
                                   : ReceiptPayloadJson(SampleReceiptClaims()).value());
    edit(payload);
    return signer_.SignCompact(signer_.Header(TypHeader(type)), payload.dump());
  }
  std::string SignedWithHeader(const std::function<void(json&)>& edit) const {
    json header = json::parse(signer_.Header());
    edit(header);
    return signer_.SignCompact(header.dump(),
                               ConsentTokenPayloadJson(SampleConsentClaims()).value());
  }

  SoftwareSigner signer_;
  Jwks jwks_;
};

TEST_F(VerifierTest, ConsentToken_VerifiesAndReturnsItsClaims) {
  const std::string token = SignedConsentToken(signer_, SampleConsentClaims());
  const auto verified = VerifyToken(token);
  ASSERT_THAT(verified, IsOk());
  EXPECT_EQ(verified->type, TokenType::kConsentToken);
  EXPECT_EQ(verified->kid, signer_.Kid());
  ASSERT_TRUE(verified->consent.has_value());
  EXPECT_FALSE(verified->receipt.has_value());
  EXPECT_EQ(*verified->consent, SampleConsentClaims());
  EXPECT_EQ(verified->payload_json, ConsentTokenPayloadJson(SampleConsentClaims()).value());
}

TEST_F(VerifierTest, Receipt_VerifiesAndReturnsItsClaims) {
  const auto verified =
      Verify(SignedReceipt(signer_, SampleReceiptClaims()), jwks_, Options(TokenType::kReceipt));
  ASSERT_THAT(verified, IsOk());
  ASSERT_TRUE(verified->receipt.has_value());
  EXPECT_FALSE(verified->consent.has_value());
  EXPECT_EQ(*verified->receipt, SampleReceiptClaims());
}

TEST_F(VerifierTest, Receipt_DoesNotExpire) {
  VerifyOptions options = Options(TokenType::kReceipt);
  options.now = kIssuedAt + 10LL * 365 * 86400;
  EXPECT_THAT(Verify(SignedReceipt(signer_, SampleReceiptClaims()), jwks_, options), IsOk());
}

TEST_F(VerifierTest, WrongTyp_ReceiptAsTokenAndTokenAsReceipt_AreRejected) {
  EXPECT_THAT(VerifyToken(SignedReceipt(signer_, SampleReceiptClaims())), HasReason("wrong_typ"));
  EXPECT_THAT(Verify(SignedConsentToken(signer_, SampleConsentClaims()), jwks_,
                     Options(TokenType::kReceipt)),
              HasReason("wrong_typ"));
  for (const char* typ : {"JWT", "Consent+JWT", "application/consent+jwt", ""}) {
    EXPECT_THAT(VerifyToken(SignedWithHeader([&](json& h) { h["typ"] = typ; })),
                HasReason("wrong_typ"))
        << typ;
  }
  EXPECT_THAT(VerifyToken(SignedWithHeader([](json& h) { h.erase("typ"); })),
              HasReason("wrong_typ"));
}

TEST_F(VerifierTest, AlgorithmsOtherThanEs256_AreNotAllowed) {
  for (const char* alg : {"none", "None", "NONE", "HS256", "HS384", "HS512", "RS256", "PS256",
                          "EdDSA", "ES384", "ES512", "ES256K", "es256", "ES256 "}) {
    EXPECT_THAT(VerifyToken(SignedWithHeader([&](json& h) { h["alg"] = alg; })),
                HasReason("alg_not_allowed"))
        << alg;
  }
  EXPECT_THAT(VerifyToken(SignedWithHeader([](json& h) { h.erase("alg"); })),
              HasReason("malformed"));
  EXPECT_THAT(VerifyToken(SignedWithHeader([](json& h) { h["alg"] = json::array({"ES256"}); })),
              HasReason("malformed"));
}

TEST_F(VerifierTest, UnsecuredAlgNoneToken_IsNotAllowed) {
  const std::string payload = ConsentTokenPayloadJson(SampleConsentClaims()).value();
  for (const char* header : {R"({"alg":"none","typ":"consent+jwt"})",
                             R"({"alg":"none","typ":"consent+jwt","kid":"x"})"}) {
    const std::string token =
        Base64UrlEncode(AsBytes(header)) + "." + Base64UrlEncode(AsBytes(payload)) + ".";
    EXPECT_THAT(VerifyToken(token), HasReason("alg_not_allowed")) << header;
  }
}

TEST_F(VerifierTest, Hs256WithThePublicKeyAsSecret_IsNotAllowed) {
  const std::string payload = ConsentTokenPayloadJson(SampleConsentClaims()).value();
  const std::string header =
      R"({"alg":"HS256","typ":"consent+jwt","kid":")" + signer_.Kid() + R"("})";
  for (const Bytes& secret : {signer_.Point(), ToBytes(signer_.Jwk()), ToBytes(signer_.JwksJson()),
                              ToBytes(signer_.X() + signer_.Y())}) {
    EXPECT_THAT(VerifyToken(testing::Hs256Token(header, payload, secret)),
                HasReason("alg_not_allowed"));
  }
}

TEST_F(VerifierTest, HeadersThatChooseKeysOrExtendProcessing_AreForbidden) {
  const std::vector<std::pair<const char*, json>> cases = {
      {"jku", "https://attacker.example/jwks.json"},
      {"jwk", json::parse(SoftwareSigner().Jwk())},
      {"x5u", "https://attacker.example/cert.pem"},
      {"x5c", json::array({"MIIB"})},
      {"x5t", "abc"},
      {"crit", json::array({"exp"})},
      {"b64", false},
      {"zip", "DEF"},
      {"cty", "JWT"},
      {"extra", 1},
  };
  for (const auto& member : cases) {
    const auto result =
        VerifyToken(SignedWithHeader([&](json& h) { h[member.first] = member.second; }));
    EXPECT_THAT(result, HasReason("forbidden_header")) << member.first;
  }
}

TEST_F(VerifierTest, UnknownKid_IsRejected) {
  const SoftwareSigner other;
  EXPECT_THAT(VerifyToken(SignedConsentToken(other, SampleConsentClaims())),
              HasReason("unknown_kid"));
  EXPECT_THAT(VerifyToken(SignedWithHeader([](json& h) { h.erase("kid"); })),
              HasReason("malformed"));
  EXPECT_THAT(VerifyToken(SignedWithHeader([](json& h) { h["kid"] = 7; })), HasReason("malformed"));
  const auto control = VerifyToken(SignedWithHeader([](json& h) { h["kid"] = "a\nb\"c"; }));
  ASSERT_THAT(control, HasReason("unknown_kid"));
  EXPECT_THAT(control.error().message(), Not(HasSubstr("\n")));
  EXPECT_THAT(Verify(SignedConsentToken(signer_, SampleConsentClaims()), Jwks(), Options()),
              HasReason("unknown_kid"));
}

TEST_F(VerifierTest, SignatureByAnotherKeyUnderTheRightKid_IsABadSignature) {
  const SoftwareSigner other;
  const std::string input = ConsentTokenSigningInput(SampleConsentClaims(), signer_.Kid()).value();
  EXPECT_THAT(VerifyToken(AssembleJws(input, other.Sign(input)).value()),
              HasReason("bad_signature"));
}

TEST_F(VerifierTest, SignaturesOfTheWrongShapeOrOutOfRange_AreBad) {
  const std::string input = ConsentTokenSigningInput(SampleConsentClaims(), signer_.Kid()).value();
  const Bytes good = signer_.Sign(input);
  const Bytes order =
      *HexDecode("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
  const auto join = [](ByteView r, ByteView s) {
    Bytes out(r.begin(), r.end());
    out.insert(out.end(), s.begin(), s.end());
    return out;
  };
  const ByteView r(good.data(), 32);
  const ByteView s(good.data() + 32, 32);
  // s' = n - s verifies mathematically (ECDSA malleability) and is accepted; r or s of 0 or
  // >= n never is.
  const std::vector<std::pair<const char*, Bytes>> cases = {
      {"empty", {}},
      {"63 bytes", Bytes(good.begin(), good.end() - 1)},
      {"65 bytes", join(good, Bytes{0})},
      {"r = 0", join(Bytes(32), s)},
      {"s = 0", join(r, Bytes(32))},
      {"r = n", join(order, s)},
      {"s = n", join(r, order)},
      {"all ones", Bytes(64, 0xFF)},
      {"swapped", join(s, r)},
  };
  for (const auto& [name, signature] : cases) {
    EXPECT_THAT(VerifyToken(input + "." + Base64UrlEncode(signature)), HasReason("bad_signature"))
        << name;
  }
}

TEST_F(VerifierTest, DerEncodedSignature_IsABadSignature) {
  const std::string input = ConsentTokenSigningInput(SampleConsentClaims(), signer_.Kid()).value();
  const Bytes rs = signer_.Sign(input);
  // 0x30 len 0x02 0x21 00 r 0x02 0x21 00 s: a DER signature some libraries emit by mistake.
  Bytes der = {0x30, 0x46, 0x02, 0x21, 0x00};
  der.insert(der.end(), rs.begin(), rs.begin() + 32);
  der.insert(der.end(), {0x02, 0x21, 0x00});
  der.insert(der.end(), rs.begin() + 32, rs.end());
  EXPECT_THAT(VerifyToken(input + "." + Base64UrlEncode(der)), HasReason("bad_signature"));
}

TEST_F(VerifierTest, EveryRequiredConsentClaim_IsRequired) {
  for (const char* claim : {"iss", "sub", "aud", "iat", "nbf", "exp", "jti", "amr", "purpose",
                            "scopes", "policy", "max_uses"}) {
    const auto result = VerifyToken(SignedWithPayload([&](json& p) { p.erase(claim); }));
    EXPECT_THAT(result, HasReason("missing_claim")) << claim;
    if (!result.ok()) {
      EXPECT_THAT(result.error().message(), HasSubstr(claim));
    }
  }
  EXPECT_THAT(VerifyToken(SignedWithPayload([](json& p) { p["policy"].erase("hash"); })),
              HasReason("missing_claim"));
}

TEST_F(VerifierTest, EveryRequiredReceiptClaim_IsRequired) {
  const VerifyOptions options = Options(TokenType::kReceipt);
  for (const char* claim :
       {"version", "jurisdiction", "consentTimestamp", "collectionMethod", "consentReceiptID",
        "language", "piiPrincipalId", "piiControllers", "policyUrl", "services", "sensitive",
        "spiCat", "iss", "aud", "iat", "jti"}) {
    const std::string token =
        SignedWithPayload([&](json& p) { p.erase(claim); }, TokenType::kReceipt);
    EXPECT_THAT(Verify(token, jwks_, options), HasReason("missing_claim")) << claim;
  }
  const std::string no_purpose = SignedWithPayload(
      [](json& p) { p["services"][0]["purposes"][0].erase("purpose"); }, TokenType::kReceipt);
  const auto result = Verify(no_purpose, jwks_, options);
  ASSERT_THAT(result, HasReason("missing_claim"));
  EXPECT_THAT(result.error().message(), HasSubstr("services[0].purposes[0].purpose"));
}

TEST_F(VerifierTest, ClaimsOfTheWrongTypeOrValue_AreMalformed) {
  const std::vector<std::pair<const char*, std::function<void(json&)>>> cases = {
      {"exp as a string", [](json& p) { p["exp"] = "1740823800"; }},
      {"exp as a float", [](json& p) { p["exp"] = 1740823800.5; }},
      {"exp huge", [](json& p) { p["exp"] = 18446744073709551615ULL; }},
      {"iat negative", [](json& p) { p["iat"] = -5; }},
      {"aud a number", [](json& p) { p["aud"] = 5; }},
      {"aud an empty array", [](json& p) { p["aud"] = json::array(); }},
      {"aud array of numbers", [](json& p) { p["aud"] = json::array({1}); }},
      {"sub empty", [](json& p) { p["sub"] = ""; }},
      {"scopes a string", [](json& p) { p["scopes"] = "name"; }},
      {"scopes empty", [](json& p) { p["scopes"] = json::array(); }},
      {"policy a string", [](json& p) { p["policy"] = "2025.06.1"; }},
      {"policy hash upper", [](json& p) { p["policy"]["hash"] = std::string(64, 'F'); }},
      {"max_uses zero", [](json& p) { p["max_uses"] = 0; }},
      {"max_uses a bool", [](json& p) { p["max_uses"] = true; }},
  };
  for (const auto& [name, edit] : cases) {
    EXPECT_THAT(VerifyToken(SignedWithPayload(edit)), HasReason("malformed")) << name;
  }
  const VerifyOptions receipt = Options(TokenType::kReceipt);
  const std::vector<std::pair<const char*, std::function<void(json&)>>> receipt_cases = {
      {"version 1.0", [](json& p) { p["version"] = "KI-CR-v1.0.0"; }},
      {"jurisdiction", [](json& p) { p["jurisdiction"] = "US"; }},
      {"collection method", [](json& p) { p["collectionMethod"] = "web form"; }},
      {"consent type", [](json& p) { p["services"][0]["purposes"][0]["consentType"] = "IMPLIED"; }},
      {"receipt id", [](json& p) { p["consentReceiptID"] = "other"; }},
      {"sensitive a string", [](json& p) { p["sensitive"] = "yes"; }},
  };
  for (const auto& [name, edit] : receipt_cases) {
    EXPECT_THAT(Verify(SignedWithPayload(edit, TokenType::kReceipt), jwks_, receipt),
                HasReason("malformed"))
        << name;
  }
}

TEST_F(VerifierTest, DuplicateClaim_IsMalformedEvenWhenSigned) {
  std::string payload = ConsentTokenPayloadJson(SampleConsentClaims()).value();
  payload.insert(1, R"("aud":"other-provider",)");
  EXPECT_THAT(VerifyToken(signer_.SignCompact(signer_.Header(), payload)), HasReason("malformed"));
}

TEST_F(VerifierTest, ExtraClaims_AreKeptInThePayloadJson) {
  const auto verified = VerifyToken(SignedWithPayload([](json& p) { p["ext"] = "x"; }));
  ASSERT_THAT(verified, IsOk());
  EXPECT_THAT(verified->payload_json, HasSubstr(R"("ext":"x")"));
}

TEST_F(VerifierTest, Audience_MustNameTheProvider) {
  EXPECT_THAT(VerifyToken(SignedWithPayload([](json& p) { p["aud"] = "other-provider"; })),
              HasReason("wrong_audience"));
  EXPECT_THAT(VerifyToken(SignedWithPayload([](json& p) { p["aud"] = "DEMO-BANK"; })),
              HasReason("wrong_audience"));
  EXPECT_THAT(VerifyToken(SignedWithPayload([](json& p) {
                p["aud"] = json::array({"a", "b"});
              })),
              HasReason("wrong_audience"));
  const auto in_array = VerifyToken(SignedWithPayload([](json& p) {
    p["aud"] = json::array({"other", kProvider});
  }));
  ASSERT_THAT(in_array, IsOk());
  EXPECT_EQ(in_array->consent->audience, kProvider);
  const auto message = VerifyToken(SignedWithPayload([](json& p) { p["aud"] = "secret-name"; }));
  EXPECT_THAT(message.error().message(), Not(HasSubstr("secret-name")));
}

TEST_F(VerifierTest, Issuer_IsCheckedWhenAsked) {
  const std::string token = SignedConsentToken(signer_, SampleConsentClaims());
  VerifyOptions options = Options();
  options.issuer = testing::kIssuer;
  EXPECT_THAT(Verify(token, jwks_, options), IsOk());
  options.issuer = "https://elsewhere.example";
  const auto wrong = Verify(token, jwks_, options);
  EXPECT_THAT(wrong, HasReason("wrong_issuer"));
  EXPECT_THAT(wrong.error().message(), HasSubstr(std::string("iss is \"") + testing::kIssuer +
                                                 "\", expected \"https://elsewhere.example\""));
}

TEST_F(VerifierTest, Expiry_HonoursTheLeewayAtItsBoundary) {
  const std::string token = SignedConsentToken(signer_, SampleConsentClaims());
  const std::int64_t exp = SampleConsentClaims().expires_at;
  VerifyOptions options = Options();
  for (const std::int64_t leeway : {std::int64_t{0}, std::int64_t{60}, kMaxLeewaySeconds}) {
    options.leeway_seconds = leeway;
    options.now = exp + leeway - 1;
    EXPECT_THAT(Verify(token, jwks_, options), IsOk()) << leeway;
    options.now = exp + leeway;
    EXPECT_THAT(Verify(token, jwks_, options), HasReason("expired")) << leeway;
  }
}

TEST_F(VerifierTest, NotBefore_HonoursTheLeewayAtItsBoundary) {
  ConsentTokenClaims claims = SampleConsentClaims();
  claims.issued_at = kIssuedAt;
  claims.not_before = kIssuedAt + 100;
  const std::string token = SignedConsentToken(signer_, claims);
  VerifyOptions options = Options();
  for (const std::int64_t leeway : {std::int64_t{0}, std::int64_t{60}}) {
    options.leeway_seconds = leeway;
    options.now = claims.not_before - leeway;
    EXPECT_THAT(Verify(token, jwks_, options), IsOk()) << leeway;
    options.now = claims.not_before - leeway - 1;
    EXPECT_THAT(Verify(token, jwks_, options), HasReason("not_yet_valid")) << leeway;
  }
}

TEST_F(VerifierTest, IssuedInTheFuture_IsNotYetValid) {
  VerifyOptions options = Options(TokenType::kReceipt);
  options.now = kIssuedAt - 61;
  EXPECT_THAT(Verify(SignedReceipt(signer_, SampleReceiptClaims()), jwks_, options),
              HasReason("not_yet_valid"));
  options.now = kIssuedAt - 60;
  EXPECT_THAT(Verify(SignedReceipt(signer_, SampleReceiptClaims()), jwks_, options), IsOk());
}

TEST_F(VerifierTest, NonsenseOptions_AreTheCallersError) {
  const std::string token = SignedConsentToken(signer_, SampleConsentClaims());
  VerifyOptions options = Options();
  options.audience.clear();
  EXPECT_THAT(Verify(token, jwks_, options), HasReason("invalid_options"));
  options = Options();
  options.leeway_seconds = kMaxLeewaySeconds + 1;
  EXPECT_THAT(Verify(token, jwks_, options), HasReason("invalid_options"));
  options.leeway_seconds = -1;
  EXPECT_THAT(Verify(token, jwks_, options), HasReason("invalid_options"));
  options = Options();
  options.now = -1;
  EXPECT_THAT(Verify(token, jwks_, options), HasReason("invalid_options"));
}

TEST_F(VerifierTest, ErrorCodes_SeparateMalformedInputFromRejection) {
  EXPECT_THAT(VerifyToken("x"), StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_THAT(VerifyToken(SignedWithPayload([](json& p) { p["aud"] = "other"; })),
              StatusIs(ErrorCode::kUnauthenticated));
}

TEST_F(VerifierTest, DefaultClock_IsUsedWhenNoTimeIsGiven) {
  VerifyOptions options = Options();
  options.now.reset();
  // The sample token expired in 2025.
  EXPECT_THAT(Verify(SignedConsentToken(signer_, SampleConsentClaims()), jwks_, options),
              HasReason("expired"));
}

// ---- Malformed input table -------------------------------------------------------------------

struct MalformedCase {
  const char* name;
  std::string token;
  const char* reason;
};

class JwsMalformedTest : public VerifierTest {};

TEST_F(JwsMalformedTest, EachMalformedInput_IsRejectedWithItsReason) {
  const std::string valid = SignedConsentToken(signer_, SampleConsentClaims());
  const auto first = valid.find('.');
  const auto second = valid.find('.', first + 1);
  const std::string header = valid.substr(0, first);
  const std::string payload = valid.substr(first + 1, second - first - 1);
  const std::string signature = valid.substr(second + 1);
  const auto b64 = [](std::string_view text) { return Base64UrlEncode(AsBytes(text)); };
  const std::string deep = std::string(40, '[') + std::string(40, ']');

  const std::vector<MalformedCase> cases = {
      {"empty", "", "malformed"},
      {"one part", header, "malformed"},
      {"two parts", header + "." + payload, "malformed"},
      {"four parts", valid + "." + signature, "malformed"},
      {"five dots", valid + "...", "malformed"},
      {"empty header", "." + payload + "." + signature, "malformed"},
      {"empty payload", header + ".." + signature, "malformed"},
      {"empty signature", header + "." + payload + ".", "bad_signature"},
      {"padded header", header + "=." + payload + "." + signature, "malformed"},
      {"padded signature", valid + "==", "malformed"},
      {"plus and slash", header + "." + payload + "." + signature.substr(0, 84) + "+/",
       "malformed"},
      {"space", header + " ." + payload + "." + signature, "malformed"},
      {"newline", valid + "\n", "malformed"},
      {"NUL", valid + std::string(1, '\0'), "malformed"},
      {"non-canonical last char", valid.substr(0, valid.size() - 1) + "B", "malformed"},
      {"header not JSON", b64("alg=ES256") + "." + payload + "." + signature, "malformed"},
      {"header a JSON array", b64(R"(["ES256"])") + "." + payload + "." + signature, "malformed"},
      {"header a JSON string", b64(R"("ES256")") + "." + payload + "." + signature, "malformed"},
      {"header with BOM", b64("\xEF\xBB\xBF" + signer_.Header()) + "." + payload + "." + signature,
       "malformed"},
      {"header with trailing data", b64(signer_.Header() + "{}") + "." + payload + "." + signature,
       "malformed"},
      {"header duplicate alg",
       b64(R"({"alg":"ES256","alg":"none","typ":"consent+jwt","kid":"k"})") + "." + payload + "." +
           signature,
       "malformed"},
      {"header deeply nested",
       b64(R"({"alg":"ES256","x":)" + deep + "}") + "." + payload + "." + signature, "malformed"},
      {"header invalid UTF-8", b64("{\"alg\":\"ES256\xff\"}") + "." + payload + "." + signature,
       "malformed"},
      {"header JSON with comment",
       b64("{/*c*/\"alg\":\"ES256\"}") + "." + payload + "." + signature, "malformed"},
      {"huge token", header + "." + std::string(kMaxTokenSize, 'A') + "." + signature, "malformed"},
      {"payload not JSON", signer_.SignCompact(signer_.Header(), "claims"), "malformed"},
      {"payload JSON array", signer_.SignCompact(signer_.Header(), "[]"), "malformed"},
      {"payload trailing data",
       signer_.SignCompact(signer_.Header(),
                           ConsentTokenPayloadJson(SampleConsentClaims()).value() + "x"),
       "malformed"},
  };
  for (const auto& c : cases) {
    EXPECT_THAT(VerifyToken(c.token), HasReason(c.reason)) << c.name;
  }
}

TEST_F(JwsMalformedTest, TokenAtTheSizeCap_IsStillParsed) {
  // A payload padded to just under the cap is not refused for its size.
  json payload = json::parse(ConsentTokenPayloadJson(SampleConsentClaims()).value());
  payload["pad"] = std::string(11000, 'p');
  const std::string token = signer_.SignCompact(signer_.Header(), payload.dump());
  ASSERT_LE(token.size(), kMaxTokenSize);
  EXPECT_THAT(VerifyToken(token), IsOk());
}

}  // namespace
}  // namespace ijazat::verifier
