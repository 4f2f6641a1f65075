#include "ijazat/hsm/pkcs11_hsm.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "hsm_fixture.h"
#include "ijazat/hsm/jwk.h"
#include "raw_pkcs11.h"
#include "support/temp_dir.h"

namespace ijazat::hsm {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using testing::RunCommand;
using ::testing::SizeIs;

const KeyRef kOtp1{KeyKind::kOtp, 1};
const KeyRef kReceipt1{KeyKind::kReceipt, 1};
const KeyRef kReceipt2{KeyKind::kReceipt, 2};
const KeyRef kData1{KeyKind::kData, 1};
const KeyRef kLog1{KeyKind::kLog, 1};

// DER of an ECDSA-Sig-Value from raw r||s, written here rather than with OpenSSL so that the
// check below depends on nothing in the HSM layer.
Bytes DerSignature(const Bytes& raw) {
  auto integer = [](const std::uint8_t* p) {
    Bytes v(p, p + 32);
    while (v.size() > 1 && v[0] == 0 && (v[1] & 0x80) == 0) v.erase(v.begin());
    if (v[0] & 0x80) v.insert(v.begin(), 0);
    Bytes out = {0x02, static_cast<std::uint8_t>(v.size())};
    out.insert(out.end(), v.begin(), v.end());
    return out;
  };
  Bytes r = integer(raw.data());
  Bytes s = integer(raw.data() + 32);
  Bytes out = {0x30, static_cast<std::uint8_t>(r.size() + s.size())};
  out.insert(out.end(), r.begin(), r.end());
  out.insert(out.end(), s.begin(), s.end());
  return out;
}

std::string AsString(const Bytes& bytes) { return std::string(bytes.begin(), bytes.end()); }

class Pkcs11HsmTest : public HsmTest {};

TEST_F(Pkcs11HsmTest, Open_FailsNamingTheLabels_WhenTokenLabelUnknown) {
  HsmOptions options = Options();
  options.token_label = "no-such-token";
  const auto hsm = Pkcs11Hsm::Open(options);
  EXPECT_THAT(hsm, HasReason("token_not_found"));
  EXPECT_THAT(hsm.error().message(), HasSubstr("\"ijazat-test\""));
}

TEST_F(Pkcs11HsmTest, Open_FailsWithPinIncorrect_WhenPinWrong) {
  HsmOptions options = Options();
  options.pin = PinSource::File(token_.dir().WriteFile("wrong.pin", "0000"));
  const auto hsm = Pkcs11Hsm::Open(options);
  EXPECT_THAT(hsm, HasReason("pin_incorrect"));
  EXPECT_THAT(hsm, StatusIs(ErrorCode::kUnauthenticated));
  EXPECT_THAT(hsm.error().message(), Not(HasSubstr("0000")));
}

TEST_F(Pkcs11HsmTest, Open_FailsWithModuleLoadFailed_WhenModuleMissing) {
  HsmOptions options = Options();
  options.module_path = "/nonexistent/libpkcs11.so";
  EXPECT_THAT(Pkcs11Hsm::Open(options), HasReason("module_load_failed"));
}

TEST_F(Pkcs11HsmTest, Open_FailsWithModuleLoadFailed_WhenLibraryIsNotPkcs11) {
  HsmOptions options = Options();
  options.module_path = "libz.so.1";
  EXPECT_THAT(Pkcs11Hsm::Open(options), HasReason("module_load_failed"));
}

TEST_F(Pkcs11HsmTest, Open_FailsWithPinSource_WhenPinEnvironmentVariableUnset) {
  HsmOptions options = Options();
  options.pin = PinSource::Environment("IJAZAT_TEST_UNSET_PIN_VARIABLE");
  EXPECT_THAT(Pkcs11Hsm::Open(options), HasReason("pin_source"));
}

TEST_F(Pkcs11HsmTest, Open_Succeeds_WithPinFromEnvironment) {
  setenv("IJAZAT_TEST_PIN", token_.user_pin().c_str(), 1);
  HsmOptions options = Options();
  options.pin = PinSource::Environment("IJAZAT_TEST_PIN");
  EXPECT_THAT(Pkcs11Hsm::Open(options), IsOk());
}

TEST_F(Pkcs11HsmTest, GenerateKey_CreatesActiveVersionOne_ForEveryKind) {
  auto hsm = Provisioned();
  ASSERT_NE(hsm, nullptr);
  const auto keys = hsm->ListKeys();
  ASSERT_THAT(keys, IsOk());
  ASSERT_THAT(*keys, SizeIs(5));
  for (const KeyInfo& key : *keys) {
    EXPECT_EQ(key.ref.version, 1u);
    EXPECT_EQ(key.state, KeyState::kActive);
    EXPECT_EQ(key.mechanism, KeyKindMechanism(key.ref.kind));
    EXPECT_EQ(key.kid.empty(),
              !(key.ref.kind == KeyKind::kReceipt || key.ref.kind == KeyKind::kLog));
  }
  for (const KeyKind kind : kAllKeyKinds) {
    EXPECT_THAT(hsm->ActiveKey(kind), IsOkAndHolds(KeyRef{kind, 1}));
  }
}

TEST_F(Pkcs11HsmTest, GenerateKey_Refuses_WhenKeyExists) {
  auto hsm = Provisioned();
  ASSERT_NE(hsm, nullptr);
  EXPECT_THAT(hsm->GenerateKey(KeyKind::kOtp), HasReason("key_exists"));
}

TEST_F(Pkcs11HsmTest, AuditKeys_FindsNoDeviation_OnGeneratedKeys) {
  auto hsm = Provisioned();
  ASSERT_NE(hsm, nullptr);
  EXPECT_THAT(hsm->AuditKeys(), IsOkAndHolds(IsEmpty()));
}

// pkcs11-tool's --list-objects block for the object of `kind` ("Secret Key Object") with
// `label`, or "" if there is none.
std::string ObjectBlock(const std::string& listing, const std::string& kind,
                        const std::string& label) {
  std::size_t start = 0;
  while ((start = listing.find(kind, start)) != std::string::npos) {
    std::size_t end = listing.find(" Object;", start + kind.size());
    end = end == std::string::npos ? listing.size() : listing.rfind('\n', end);
    const std::string block = listing.substr(start, end - start);
    if (block.find("label:      " + label + "\n") != std::string::npos) return block;
    start = end;
  }
  return "";
}

TEST_F(Pkcs11HsmTest, Open_FailsClosed_WhenAKeyWithWeakAttributesIsPlanted) {
  ASSERT_NE(Provisioned(), nullptr);
  // pkcs11-tool's defaults: modifiable, copyable, derive, no allowed-mechanism list.
  const auto planted = RunCommand(
      token_.Pkcs11Tool("--keypairgen --key-type EC:prime256v1 --label receipt/v2 --id 02"));
  ASSERT_EQ(planted.exit_code, 0) << planted.output;
  const auto hsm = Pkcs11Hsm::Open(Options());
  EXPECT_THAT(hsm, HasReason("key_template_mismatch"));
  EXPECT_THAT(hsm.error().message(), HasSubstr("receipt/v2"));
  HsmOptions lenient = Options();
  lenient.require_conforming_keys = false;
  auto inspector = Pkcs11Hsm::Open(lenient);
  ASSERT_THAT(inspector, IsOk());
  const auto deviations = (*inspector)->AuditKeys();
  ASSERT_THAT(deviations, IsOk());
  EXPECT_THAT(*deviations,
              ::testing::Contains(AllOf(Field(&Deviation::key, "receipt/v2 (private key)"),
                                        Field(&Deviation::attribute, "CKA_MODIFIABLE"),
                                        Field(&Deviation::expected, "false"),
                                        Field(&Deviation::found, "true"))));
}

// Finding 1 of the trust-anchor review: the audit ran only at open, so an otp/v2 planted by
// hand as an extractable, non-sensitive secret became the active OTP key on the next refresh
// (SIGHUP), and a planted receipt/v2 would have been published in the JWKS.
TEST_F(Pkcs11HsmTest, KeysPlantedWhileOpen_AreRefusedOnRefresh_NeitherUsedNorPublished) {
  auto hsm = Provisioned();
  ASSERT_NE(hsm, nullptr);
  const auto jwks_before = hsm->Jwks();
  ASSERT_THAT(jwks_before, IsOk());
  ASSERT_THAT(hsm->RejectedKeys(), IsEmpty());
  testing::RawPkcs11 raw(testing::kSoftHsmModule);
  raw.ImportHmacKey(token_.label(), token_.user_pin(), "otp/v2",
                    ToBytes("a known value, computed offline"));
  const auto planted = RunCommand(
      token_.Pkcs11Tool("--keypairgen --key-type EC:prime256v1 --label receipt/v2 --id 02"));
  ASSERT_EQ(planted.exit_code, 0) << planted.output;

  ASSERT_THAT(hsm->Refresh(), IsOk());
  EXPECT_THAT(hsm->ActiveKey(KeyKind::kOtp), IsOkAndHolds(Field(&KeyRef::version, 1u)))
      << "the planted OTP key is not used";
  EXPECT_THAT(hsm->ActiveKey(KeyKind::kReceipt), IsOkAndHolds(Field(&KeyRef::version, 1u)));
  EXPECT_THAT(hsm->Hmac({KeyKind::kOtp, 2}, ToBytes("x"), HmacHash::kSha256),
              HasReason("unknown_key"));
  EXPECT_THAT(hsm->Jwks(), IsOkAndHolds(*jwks_before)) << "nor the planted receipt key published";
  const auto rejected = hsm->RejectedKeys();
  EXPECT_THAT(rejected, Contains(AllOf(HasSubstr("otp/v2 (secret key)"),
                                       HasSubstr("CKA_SENSITIVE is false"))));
  EXPECT_THAT(rejected, Contains(HasSubstr("receipt/v2 (private key)")));
  EXPECT_THAT(hsm->AuditKeys(), IsOkAndHolds(Not(IsEmpty()))) << "the audit still reports them";
  // A cold start refuses the token, as before.
  EXPECT_THAT(Pkcs11Hsm::Open(Options()), HasReason("key_template_mismatch"));
}

TEST_F(Pkcs11HsmTest, GeneratedKeys_HaveTheTemplateAttributes_AsPkcs11ToolReadsThem) {
  auto hsm = Provisioned();
  ASSERT_NE(hsm, nullptr);
  const auto listing = RunCommand(token_.Pkcs11Tool("--list-objects"));
  ASSERT_EQ(listing.exit_code, 0) << listing.output;
  const std::string kProtected =
      "Access:     sensitive, always sensitive, never extractable, local";
  for (const std::string label : {"otp/v1", "index/v1"}) {
    const std::string block = ObjectBlock(listing.output, "Secret Key Object", label);
    EXPECT_THAT(block, HasSubstr("Generic secret length 32")) << label;
    EXPECT_THAT(block, HasSubstr(kProtected)) << label;
    EXPECT_THAT(block, HasSubstr("Usage:      none")) << label << ": no encrypt/wrap usage";
  }
  const std::string data = ObjectBlock(listing.output, "Secret Key Object", "data/v1");
  EXPECT_THAT(data, HasSubstr("AES length 32"));
  EXPECT_THAT(data, HasSubstr("Usage:      encrypt, decrypt\n"));
  EXPECT_THAT(data, HasSubstr(kProtected));
  for (const auto& [label, mechanism] : {std::pair{"receipt/v1", "ECDSA"}, {"log/v1", "EDDSA"}}) {
    const std::string private_key = ObjectBlock(listing.output, "Private Key Object", label);
    EXPECT_THAT(private_key, HasSubstr("Usage:      sign\n")) << label;
    EXPECT_THAT(private_key, HasSubstr(kProtected)) << label;
    EXPECT_THAT(private_key, HasSubstr(std::string("Allowed mechanisms: ") + mechanism)) << label;
    const std::string public_key = ObjectBlock(listing.output, "Public Key Object", label);
    EXPECT_THAT(public_key, HasSubstr("Usage:      verify\n")) << label;
  }
  EXPECT_THAT(ObjectBlock(listing.output, "Public Key Object", "receipt/v1"),
              HasSubstr("EC_PARAMS:  06082a8648ce3d030107"));
}

TEST_F(Pkcs11HsmTest, SignEs256_SignatureVerifiesWithTheOpensslCommand) {
  auto hsm = Provisioned();
  ASSERT_NE(hsm, nullptr);
  const std::string message = "consent token signing input";
  const auto signature = hsm->SignEs256(kReceipt1, AsBytes(message));
  ASSERT_THAT(signature, IsOk());
  ASSERT_THAT(*signature, SizeIs(64));
  const auto public_key = hsm->ExportPublicKey(kReceipt1);
  ASSERT_THAT(public_key, IsOk());

  // SubjectPublicKeyInfo for P-256: a fixed prefix, then the uncompressed point.
  Bytes spki = *HexDecode("3059301306072a8648ce3d020106082a8648ce3d030107034200");
  spki.insert(spki.end(), public_key->point.begin(), public_key->point.end());
  const auto& dir = token_.dir();
  const auto key_file = dir.WriteFile("pub.der", AsString(spki));
  const auto sig_file = dir.WriteFile("sig.der", AsString(DerSignature(*signature)));
  const auto msg_file = dir.WriteFile("msg.txt", message);
  const std::string verify = "openssl dgst -sha256 -keyform DER -verify " + key_file.string() +
                             " -signature " + sig_file.string() + " ";
  EXPECT_EQ(RunCommand(verify + msg_file.string()).exit_code, 0);
  const auto other = dir.WriteFile("other.txt", message + ".");
  EXPECT_NE(RunCommand(verify + other.string()).exit_code, 0);
}

TEST_F(Pkcs11HsmTest, SignEs256_EverySingleBitFlipFailsVerification) {
  auto hsm = Provisioned();
  ASSERT_NE(hsm, nullptr);
  const Bytes message = ToBytes("flip me");
  const auto signature = hsm->SignEs256(kReceipt1, message);
  const auto public_key = hsm->ExportPublicKey(kReceipt1);
  ASSERT_THAT(signature, IsOk());
  ASSERT_THAT(public_key, IsOk());
  ASSERT_TRUE(VerifyEs256(public_key->point, message, *signature));
  for (std::size_t bit = 0; bit < signature->size() * 8; ++bit) {
    Bytes flipped = *signature;
    flipped[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    EXPECT_FALSE(VerifyEs256(public_key->point, message, flipped)) << "bit " << bit;
  }
}

TEST_F(Pkcs11HsmTest, SignEd25519_SignatureVerifies) {
  auto hsm = Provisioned();
  ASSERT_NE(hsm, nullptr);
  const Bytes message = ToBytes("checkpoint");
  const auto signature = hsm->SignEd25519(kLog1, message);
  const auto public_key = hsm->ExportPublicKey(kLog1);
  ASSERT_THAT(signature, IsOkAndHolds(SizeIs(64)));
  ASSERT_THAT(public_key, IsOk());
  EXPECT_TRUE(VerifyEd25519(public_key->point, message, *signature));
  EXPECT_FALSE(VerifyEd25519(public_key->point, ToBytes("checkpoinT"), *signature));
}

TEST_F(Pkcs11HsmTest, ExportPublicKey_ThumbprintMatchesAnIndependentJoseLibrary) {
  auto hsm = Provisioned();
  ASSERT_NE(hsm, nullptr);
  for (const KeyRef key : {kReceipt1, kLog1}) {
    const auto public_key = hsm->ExportPublicKey(key);
    ASSERT_THAT(public_key, IsOk());
    const auto jwk_file = token_.dir().WriteFile("key.jwk", public_key->jwk);
    const auto result = RunCommand(
        "/usr/bin/python3 -c 'import sys; from jwcrypto import jwk; "
        "print(jwk.JWK.from_json(open(sys.argv[1]).read()).thumbprint())' " +
        jwk_file.string());
    ASSERT_EQ(result.exit_code, 0) << result.output;
    EXPECT_EQ(result.output, public_key->kid + "\n") << key.Label();
  }
}

TEST_F(Pkcs11HsmTest, Hmac_IsDeterministicAndKeyed) {
  auto hsm = Provisioned();
  ASSERT_NE(hsm, nullptr);
  const auto a = hsm->Hmac(kOtp1, ToBytes("context"), HmacHash::kSha256);
  const auto b = hsm->Hmac(kOtp1, ToBytes("context"), HmacHash::kSha256);
  const auto c = hsm->Hmac(KeyRef{KeyKind::kIndex, 1}, ToBytes("context"), HmacHash::kSha256);
  ASSERT_THAT(a, IsOkAndHolds(SizeIs(32)));
  EXPECT_THAT(b, IsOkAndHolds(*a));
  EXPECT_THAT(c, IsOkAndHolds(Not(*a)));
}

TEST_F(Pkcs11HsmTest, Operations_RefuseKeysOfTheWrongKind) {
  auto hsm = Provisioned();
  ASSERT_NE(hsm, nullptr);
  EXPECT_THAT(hsm->Hmac(kReceipt1, ToBytes("x"), HmacHash::kSha256), HasReason("key_misuse"));
  EXPECT_THAT(hsm->SignEs256(kOtp1, ToBytes("x")), HasReason("key_misuse"));
  EXPECT_THAT(hsm->Seal(kOtp1, ToBytes("x"), {}), HasReason("key_misuse"));
  EXPECT_THAT(hsm->ExportPublicKey(kOtp1), HasReason("key_misuse"));
}

TEST_F(Pkcs11HsmTest, Operations_FailWithUnknownKey_ForMissingVersion) {
  auto hsm = Provisioned();
  ASSERT_NE(hsm, nullptr);
  EXPECT_THAT(hsm->Hmac(KeyRef{KeyKind::kOtp, 7}, ToBytes("x"), HmacHash::kSha256),
              HasReason("unknown_key"));
  EXPECT_THAT(hsm->SignEs256(KeyRef{KeyKind::kReceipt, 7}, ToBytes("x")), HasReason("unknown_key"));
}

TEST_F(Pkcs11HsmTest, SealOpen_RoundTrips_AndRejectsTampering) {
  auto hsm = Provisioned();
  ASSERT_NE(hsm, nullptr);
  const Bytes phone = ToBytes("+923001234567");
  const Bytes aad = ToBytes("enrolment:42");
  const auto sealed = hsm->Seal(kData1, phone, aad);
  ASSERT_THAT(sealed, IsOkAndHolds(SizeIs(12 + phone.size() + 16)));
  EXPECT_THAT(hsm->Open(kData1, *sealed, aad), IsOkAndHolds(phone));

  const auto again = hsm->Seal(kData1, phone, aad);
  ASSERT_THAT(again, IsOk());
  EXPECT_NE(*again, *sealed) << "each seal uses a fresh IV";

  EXPECT_THAT(hsm->Open(kData1, *sealed, ToBytes("enrolment:43")), HasReason("ciphertext_invalid"));
  for (std::size_t i : {std::size_t{0}, std::size_t{12}, sealed->size() - 1}) {
    Bytes tampered = *sealed;
    tampered[i] ^= 0x01;
    EXPECT_THAT(hsm->Open(kData1, tampered, aad), HasReason("ciphertext_invalid")) << i;
  }
  EXPECT_THAT(hsm->Open(kData1, Bytes(10), aad), HasReason("ciphertext_invalid"));
  // A bad ciphertext is not an HSM fault: the layer keeps working.
  EXPECT_THAT(hsm->Open(kData1, *sealed, aad), IsOkAndHolds(phone));
}

TEST_F(Pkcs11HsmTest, Random_ReturnsFreshBytes_AndRejectsBadSizes) {
  auto hsm = OpenOrDie(Options());
  ASSERT_NE(hsm, nullptr);
  const auto a = hsm->Random(32);
  const auto b = hsm->Random(32);
  ASSERT_THAT(a, IsOkAndHolds(SizeIs(32)));
  EXPECT_THAT(b, IsOkAndHolds(Not(*a)));
  EXPECT_THAT(hsm->Random(0), StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_THAT(hsm->Random(1 << 20), StatusIs(ErrorCode::kInvalidArgument));
}

TEST_F(Pkcs11HsmTest, RotateKey_NewVersionSigns_OldVersionStillVerifies) {
  auto hsm = Provisioned();
  ASSERT_NE(hsm, nullptr);
  const Bytes message = ToBytes("receipt before rotation");
  const auto old_signature = hsm->SignEs256(kReceipt1, message);
  ASSERT_THAT(old_signature, IsOk());
  const auto old_otp = hsm->Hmac(kOtp1, message, HmacHash::kSha256);
  ASSERT_THAT(old_otp, IsOk());

  const auto rotated = hsm->RotateKey(KeyKind::kReceipt);
  ASSERT_THAT(rotated, IsOk());
  EXPECT_EQ(rotated->ref, kReceipt2);
  ASSERT_THAT(hsm->RotateKey(KeyKind::kOtp), IsOk());

  EXPECT_THAT(hsm->ActiveKey(KeyKind::kReceipt), IsOkAndHolds(kReceipt2));
  EXPECT_THAT(hsm->SignEs256(kReceipt1, message), HasReason("key_not_active"));
  const auto new_signature = hsm->SignEs256(kReceipt2, message);
  ASSERT_THAT(new_signature, IsOk());

  const auto v1 = hsm->ExportPublicKey(kReceipt1);
  const auto v2 = hsm->ExportPublicKey(kReceipt2);
  ASSERT_THAT(v1, IsOk());
  ASSERT_THAT(v2, IsOk());
  EXPECT_NE(v1->kid, v2->kid);
  EXPECT_TRUE(VerifyEs256(v1->point, message, *old_signature));
  EXPECT_TRUE(VerifyEs256(v2->point, message, *new_signature));
  EXPECT_FALSE(VerifyEs256(v1->point, message, *new_signature));
  // The old OTP key still recomputes codes issued before the rotation.
  EXPECT_THAT(hsm->Hmac(kOtp1, message, HmacHash::kSha256), IsOkAndHolds(*old_otp));

  const auto jwks = hsm->Jwks();
  ASSERT_THAT(jwks, IsOk());
  EXPECT_THAT(*jwks, AllOf(HasSubstr(v1->kid), HasSubstr(v2->kid)));

  const auto keys = hsm->ListKeys();
  ASSERT_THAT(keys, IsOk());
  for (const KeyInfo& key : *keys) {
    if (key.ref == kReceipt1) {
      EXPECT_EQ(key.state, KeyState::kVerifyOnly);
    }
    if (key.ref == kReceipt2) {
      EXPECT_EQ(key.state, KeyState::kActive);
    }
  }
}

TEST_F(Pkcs11HsmTest, RotateKey_FailsWithUnknownKey_BeforeKeygen) {
  auto hsm = OpenOrDie(Options());
  ASSERT_NE(hsm, nullptr);
  EXPECT_THAT(hsm->RotateKey(KeyKind::kReceipt), HasReason("unknown_key"));
}

TEST_F(Pkcs11HsmTest, RetireKey_RemovesVersionFromJwksAndUse) {
  auto hsm = Provisioned();
  ASSERT_NE(hsm, nullptr);
  EXPECT_THAT(hsm->RetireKey(kReceipt1), HasReason("key_active"));
  ASSERT_THAT(hsm->RotateKey(KeyKind::kReceipt), IsOk());
  ASSERT_THAT(hsm->RotateKey(KeyKind::kOtp), IsOk());
  const auto v1 = hsm->ExportPublicKey(kReceipt1);
  ASSERT_THAT(v1, IsOk());

  EXPECT_THAT(hsm->RetireKey(kReceipt1), IsOk());
  EXPECT_THAT(hsm->RetireKey(kReceipt1), HasReason("key_retired"));
  EXPECT_THAT(hsm->RetireKey(KeyRef{KeyKind::kReceipt, 9}), HasReason("unknown_key"));
  EXPECT_THAT(hsm->RetireKey(kOtp1), IsOk());

  const auto jwks = hsm->Jwks();
  ASSERT_THAT(jwks, IsOk());
  EXPECT_THAT(*jwks, Not(HasSubstr(v1->kid)));
  EXPECT_THAT(hsm->Hmac(kOtp1, ToBytes("x"), HmacHash::kSha256), HasReason("key_retired"));
  EXPECT_THAT(hsm->ActiveKey(KeyKind::kOtp), IsOkAndHolds(KeyRef{KeyKind::kOtp, 2}));

  // The retirement lives in the HSM: a second instance sees it.
  hsm.reset();
  auto reopened = OpenOrDie(Options());
  ASSERT_NE(reopened, nullptr);
  EXPECT_THAT(reopened->Hmac(kOtp1, ToBytes("x"), HmacHash::kSha256), HasReason("key_retired"));
  const auto keys = reopened->ListKeys();
  ASSERT_THAT(keys, IsOk());
  for (const KeyInfo& key : *keys) {
    if (key.ref == kReceipt1 || key.ref == kOtp1) {
      EXPECT_EQ(key.state, KeyState::kRetired);
    }
  }
}

TEST_F(Pkcs11HsmTest, ConcurrentSignAndHmac_AllResultsCorrect) {
  auto hsm = Provisioned();
  ASSERT_NE(hsm, nullptr);
  const auto public_key = hsm->ExportPublicKey(kReceipt1);
  ASSERT_THAT(public_key, IsOk());
  const auto reference = hsm->Hmac(kOtp1, ToBytes("shared"), HmacHash::kSha256);
  ASSERT_THAT(reference, IsOk());

  constexpr int kThreads = 4;
  constexpr int kRounds = 150;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRounds; ++i) {
        const Bytes message =
            ToBytes("thread " + std::to_string(t) + " round " + std::to_string(i));
        const auto signature = hsm->SignEs256(kReceipt1, message);
        if (!signature.ok() || !VerifyEs256(public_key->point, message, *signature)) ++failures;
        const auto mac = hsm->Hmac(kOtp1, ToBytes("shared"), HmacHash::kSha256);
        if (!mac.ok() || *mac != *reference) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST_F(Pkcs11HsmTest, CheckHealth_IsOk_WhenLoggedIn) {
  auto hsm = OpenOrDie(Options());
  ASSERT_NE(hsm, nullptr);
  EXPECT_THAT(hsm->CheckHealth(), IsOk());
}

TEST_F(Pkcs11HsmTest, ListTokens_ShowsTheTokenByLabel) {
  const auto tokens = ListTokens(testing::kSoftHsmModule);
  ASSERT_THAT(tokens, IsOk());
  bool found = false;
  for (const TokenInfo& token : *tokens)
    found = found || (token.label == "ijazat-test" && token.initialized);
  EXPECT_TRUE(found);
}

TEST(InitToken, CreatesATokenThatOpens_AndRefusesTheSameLabelTwice) {
  testing::SoftHsmToken blank("unused", /*initialize=*/false);
  const SecretString so("so-secret");
  const SecretString user("user-secret");
  ASSERT_THAT(InitToken(testing::kSoftHsmModule, "fresh", so, user), IsOk());
  EXPECT_THAT(InitToken(testing::kSoftHsmModule, "fresh", so, user), HasReason("token_exists"));
  EXPECT_THAT(InitToken(testing::kSoftHsmModule, std::string(33, 'x'), so, user),
              HasReason("invalid_label"));

  setenv("IJAZAT_TEST_PIN", "user-secret", 1);
  HsmOptions options;
  options.module_path = testing::kSoftHsmModule;
  options.token_label = "fresh";
  options.pin = PinSource::Environment("IJAZAT_TEST_PIN");
  EXPECT_THAT(Pkcs11Hsm::Open(options), IsOk());
}

}  // namespace
}  // namespace ijazat::hsm

namespace ijazat::hsm {
namespace {

class TokenRecordTest : public HsmTest {};

TEST_F(TokenRecordTest, WrittenRecords_ReadBack_OneValueEachTime_AcrossReopen) {
  auto hsm = Provisioned();
  ASSERT_NE(hsm, nullptr);
  auto none = hsm->ReadRecord("audit-head");
  ASSERT_TRUE(none.ok()) << none.error().message();
  EXPECT_TRUE(none->empty());
  ASSERT_TRUE(hsm->WriteRecord("audit-head", Bytes{1, 2, 3}).ok());
  ASSERT_TRUE(hsm->WriteRecord("audit-head", Bytes{4, 5}).ok());
  auto read = hsm->ReadRecord("audit-head");
  ASSERT_TRUE(read.ok());
  ASSERT_EQ(read->size(), 1U) << "the old value is gone";
  EXPECT_EQ(read->front(), (Bytes{4, 5}));
  EXPECT_TRUE(hsm->ReadRecord("other")->empty()) << "records are by name";
  hsm.reset();
  auto reopened = OpenOrDie(Options());
  ASSERT_NE(reopened, nullptr);
  auto kept = reopened->ReadRecord("audit-head");
  ASSERT_TRUE(kept.ok());
  ASSERT_EQ(kept->size(), 1U);
  EXPECT_EQ(kept->front(), (Bytes{4, 5})) << "kept in the token";
  // A record is no key: the key audit and the key list ignore it.
  const auto deviations = reopened->AuditKeys();
  ASSERT_TRUE(deviations.ok());
  EXPECT_TRUE(deviations->empty());
}

}  // namespace
}  // namespace ijazat::hsm
