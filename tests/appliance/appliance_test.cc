// The appliance end to end: real HTTPS on port 0, a real SoftHSM token, real SQLite files,
// the file SMS sink, an injected clock.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "appliance_fixture.h"
#include "ijazat/hsm/fault_injection.h"
#include "ijazat/hsm/pkcs11_hsm.h"
#include "ijazat/policy/policy_loader.h"
#include "ijazat/verifier/jwks.h"
#include "ijazat/verifier/verifier.h"
#include "support/result_matchers.h"
#include "support/temp_dir.h"

namespace ijazat::appliance::testing {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

nlohmann::json ConsentBody(const std::string& cnic = kCnic) {
  return {{"cnic", cnic}, {"purpose", "account-opening"}, {"scopes", {"name", "date_of_birth"}}};
}

// The receipt names the provider as the controller, with the details of its policy, and the
// operator (ijazatd.yaml's receipt section) after it as the processor; a provider whose policy
// gives no details is named by its display name, with the operator's contact.
TEST_F(ApplianceTest, Receipt_NamesTheProviderAsControllerAndTheOperatorAsProcessor) {
  ASSERT_EQ(InboundSms("03001234567", "35202-1234567-1").status, 200);
  const auto jwks = verifier::Jwks::Parse(Get("/.well-known/jwks.json", "").body);
  ASSERT_THAT(jwks, IsOk());
  const auto receipt_of = [&](const std::string& purpose, const std::string& scope,
                              const std::string& api_key, const std::string& audience) {
    const auto created =
        Post("/v1/consents", {{"cnic", kCnic}, {"purpose", purpose}, {"scopes", {scope}}}, api_key);
    EXPECT_EQ(created.status, 202) << created.body;
    const auto confirmed = Post("/v1/consents/" + created.json.value("consent_id", "") + "/confirm",
                                {{"otp", LastCodeFor(kPhone).value_or("")}}, api_key);
    EXPECT_EQ(confirmed.status, 200) << confirmed.body;
    verifier::VerifyOptions options;
    options.type = verifier::TokenType::kReceipt;
    options.audience = audience;
    options.issuer = config_.issuer;
    options.now = clock_.Now();
    auto verified = verifier::Verify(confirmed.json.value("receipt", ""), *jwks, options);
    EXPECT_THAT(verified, IsOk());
    return verified.ok() ? *verified->receipt : verifier::ReceiptClaims{};
  };

  const verifier::ReceiptClaims bank = receipt_of("account-opening", "name", kBankKey, "test-bank");
  ASSERT_THAT(bank.pii_controllers, SizeIs(2));
  const verifier::PiiController& controller = bank.pii_controllers[0];
  EXPECT_EQ(controller.name, "Test Bank Limited");
  EXPECT_FALSE(controller.on_behalf);
  EXPECT_EQ(controller.contact, "Data Protection Officer");
  EXPECT_EQ(controller.address.street_address, "1 Test Road, Lahore");
  EXPECT_EQ(controller.address.address_country, "PK");
  EXPECT_EQ(controller.email, "dpo@test-bank.example");
  EXPECT_EQ(controller.phone, "+92 42 111 000 000");
  EXPECT_EQ(bank.policy_url, "https://test-bank.example/privacy");
  const verifier::PiiController& processor = bank.pii_controllers[1];
  EXPECT_EQ(processor.name, config_.receipt.operator_name);
  EXPECT_TRUE(processor.on_behalf);
  EXPECT_EQ(processor.contact, config_.receipt.operator_contact);

  const verifier::ReceiptClaims telco = receipt_of("sim-issuance", "name", kTelcoKey, "test-telco");
  ASSERT_THAT(telco.pii_controllers, SizeIs(2));
  EXPECT_EQ(telco.pii_controllers[0].name, "Test Telco");
  EXPECT_FALSE(telco.pii_controllers[0].on_behalf);
  EXPECT_EQ(telco.pii_controllers[0].contact, config_.receipt.operator_contact);
  EXPECT_EQ(telco.policy_url, config_.receipt.policy_url);
  EXPECT_TRUE(telco.pii_controllers[1].on_behalf);
}

// Writes the worked examples of docs/consent-token.md when IJAZAT_WRITE_EXAMPLES names a
// directory: a real consent of the example policy's demo-bank, granted by the appliance at
// 2025-03-01T10:00:00Z, so that token, receipt and JWKS are exactly what providers receive.
// The checked-in copies (tests/data/verifier/examples) are tested by verify_cli_test.cc.
TEST_F(ApplianceTest, WorkedExamples_AreWrittenOnRequest) {
  const char* out = std::getenv("IJAZAT_WRITE_EXAMPLES");
  if (out == nullptr) GTEST_SKIP() << "set IJAZAT_WRITE_EXAMPLES=DIR to write the examples";
  StopAppliance();
  clock_.Set(1740823200);
  config_.issuer = "https://ijazat.nadra.example";
  config_.receipt.operator_name = "Ijazat operator";
  config_.receipt.operator_contact = "privacy@ijazat.nadra.example";
  config_.receipt.policy_url = "https://ijazat.nadra.example/policy";
  config_.allow_demo_credentials = true;
  std::ifstream example(ijazat::testing::TestDataPath("../../policy/example/policy.yaml"));
  WritePolicy(std::string(std::istreambuf_iterator<char>(example), {}));
  StartAppliance();
  ASSERT_EQ(InboundSms("03001234567", "35202-1234567-1").status, 200);
  const std::string demo_key = "ijz_demo_0123456789abcdef0123456789abcdef";
  const auto created = Post("/v1/consents",
                            {{"cnic", "35202-1234567-1"},
                             {"purpose", "account-opening"},
                             {"scopes", {"name", "father_name", "date_of_birth"}}},
                            demo_key);
  ASSERT_EQ(created.status, 202) << created.body;
  const auto confirmed =
      Post("/v1/consents/" + created.json["consent_id"].get<std::string>() + "/confirm",
           {{"otp", LastCodeFor(kPhone).value_or("")}}, demo_key);
  ASSERT_EQ(confirmed.status, 200) << confirmed.body;
  const std::filesystem::path dir(out);
  std::filesystem::create_directories(dir);
  const auto write = [&](const char* name, const std::string& text) {
    std::ofstream(dir / name, std::ios::binary | std::ios::trunc) << text << "\n";
  };
  write("token.jws", confirmed.json["consent_token"]);
  write("receipt.jws", confirmed.json["receipt"]);
  write("jwks.json", nlohmann::json::parse(Get("/.well-known/jwks.json", "").body).dump(2));
}

TEST_F(ApplianceTest, HappyPath_EnrolAskConfirmVerify) {
  const auto enrolled = InboundSms("03001234567", "35202-1234567-1");
  ASSERT_EQ(enrolled.status, 200) << enrolled.body;
  auto sent = SentMessages();
  ASSERT_THAT(sent, SizeIs(1));
  EXPECT_EQ(sent[0].to, kPhone);
  EXPECT_THAT(sent[0].text, HasSubstr("enrolled"));

  const auto created = Post("/v1/consents", ConsentBody());
  ASSERT_EQ(created.status, 202) << created.body;
  const std::string id = created.json["consent_id"];
  EXPECT_THAT(id, SizeIs(22));
  EXPECT_FALSE(created.json.contains("enrolled"));

  sent = SentMessages();
  ASSERT_THAT(sent, SizeIs(2));
  EXPECT_EQ(sent[1].to, kPhone);
  EXPECT_THAT(sent[1].text, AllOf(HasSubstr("Test Bank"), HasSubstr("opening a bank account"),
                                  HasSubstr("Share it only with Test Bank")));

  const auto pending = Get("/v1/consents/" + id);
  EXPECT_EQ(pending.status, 200);
  EXPECT_EQ(pending.json["state"], "pending");
  EXPECT_EQ(pending.json["attempts_remaining"], 3);

  const auto granted = Grant(id);
  ASSERT_TRUE(granted.is_object());
  EXPECT_EQ(granted["state"], "granted");
  const std::string token = granted["consent_token"];
  EXPECT_THAT(token, SizeIs(::testing::Gt(100u)));
  EXPECT_THAT(granted["receipt"].get<std::string>(), SizeIs(::testing::Gt(100u)));
  const std::string reference = granted["reference"];

  sent = SentMessages();
  ASSERT_THAT(sent, SizeIs(3));
  EXPECT_THAT(sent[2].text, AllOf(HasSubstr("Test Bank"), HasSubstr(reference)));

  const auto verified = Post("/v1/verifications", {{"consent_token", token}});
  ASSERT_EQ(verified.status, 200) << verified.body;
  EXPECT_EQ(verified.json["consent_id"], id);
  EXPECT_TRUE(verified.json["attributes"].contains("name"));
  EXPECT_TRUE(verified.json["attributes"].contains("date_of_birth"));
  EXPECT_FALSE(verified.json["attributes"].contains("address")) << "beyond the consent's scopes";
  EXPECT_EQ(verified.json["uses_remaining"], 1);

  const auto jwks = Get("/.well-known/jwks.json", "");
  EXPECT_EQ(jwks.status, 200);
  EXPECT_THAT(jwks.json["keys"], SizeIs(1));
  // Providers may cache the published keys, as docs/consent-token.md tells them to; nothing
  // else is cacheable.
  EXPECT_EQ(jwks.header("cache-control"), "public, max-age=300");
  EXPECT_EQ(verified.header("cache-control"), "no-store");
}

TEST_F(ApplianceTest, WrongCodes_CountDownThenFailTheConsent) {
  InboundSms(kPhone, kCnic);
  const std::string id = RequestConsentId();
  const auto code = LastCodeFor(kPhone);
  ASSERT_TRUE(code.has_value());
  const std::string wrong = *code == "000000" ? "111111" : "000000";
  for (int remaining : {2, 1}) {
    const auto attempt = Post("/v1/consents/" + id + "/confirm", {{"otp", wrong}});
    EXPECT_EQ(attempt.status, 403) << attempt.body;
    EXPECT_EQ(attempt.json["attempts_remaining"], remaining);
    EXPECT_EQ(attempt.header("content-type"), "application/problem+json");
  }
  const auto last = Post("/v1/consents/" + id + "/confirm", {{"otp", wrong}});
  EXPECT_EQ(last.status, 409) << last.body;
  EXPECT_EQ(last.json["state"], "failed");
  // Even the right code is refused now.
  const auto after = Post("/v1/consents/" + id + "/confirm", {{"otp", *code}});
  EXPECT_EQ(after.status, 409) << after.body;
}

TEST_F(ApplianceTest, ExpiredCode_IsRefusedWithGone) {
  InboundSms(kPhone, kCnic);
  const std::string id = RequestConsentId();
  const auto code = LastCodeFor(kPhone);
  ASSERT_TRUE(code.has_value());
  clock_.Advance(5 * 60);
  const auto late = Post("/v1/consents/" + id + "/confirm", {{"otp", *code}});
  EXPECT_EQ(late.status, 410) << late.body;
  EXPECT_EQ(Get("/v1/consents/" + id).json["state"], "expired");
}

TEST_F(ApplianceTest, CodeSentAfterExpiry_IsDroppedNotDelivered) {
  InboundSms(kPhone, kCnic);
  SentMessages();
  RequestConsentId();
  clock_.Advance(6 * 60);
  const auto sent = SentMessages();
  ASSERT_THAT(sent, SizeIs(1)) << "only the enrolment confirmation";
}

TEST_F(ApplianceTest, ReplayedConfirmation_IsRefused) {
  InboundSms(kPhone, kCnic);
  const std::string id = RequestConsentId();
  const auto code = LastCodeFor(kPhone);
  ASSERT_EQ(Post("/v1/consents/" + id + "/confirm", {{"otp", *code}}).status, 200);
  const auto replay = Post("/v1/consents/" + id + "/confirm", {{"otp", *code}});
  EXPECT_EQ(replay.status, 409) << replay.body;
}

TEST_F(ApplianceTest, TokenUsedBeyondItsUses_IsRefused) {
  InboundSms(kPhone, kCnic);
  const std::string id = RequestConsentId();
  const std::string token = Grant(id)["consent_token"];
  EXPECT_EQ(Post("/v1/verifications", {{"consent_token", token}}).status, 200);
  EXPECT_EQ(Post("/v1/verifications", {{"consent_token", token}}).status, 200);
  const auto third = Post("/v1/verifications", {{"consent_token", token}});
  EXPECT_EQ(third.status, 409) << third.body;
  EXPECT_EQ(third.json["title"], "consent_used");
}

TEST_F(ApplianceTest, AnotherProvider_CannotConfirmReadOrVerify) {
  InboundSms(kPhone, kCnic);
  const std::string id = RequestConsentId();
  const auto code = LastCodeFor(kPhone);
  EXPECT_EQ(Post("/v1/consents/" + id + "/confirm", {{"otp", *code}}, kTelcoKey).status, 404);
  EXPECT_EQ(Get("/v1/consents/" + id, kTelcoKey).status, 404);
  const std::string token = Grant(id)["consent_token"];
  const auto stolen = Post("/v1/verifications", {{"consent_token", token}}, kTelcoKey);
  EXPECT_EQ(stolen.status, 401) << stolen.body;
  EXPECT_EQ(stolen.json["title"], "wrong_audience");
}

TEST_F(ApplianceTest, ScopesBeyondThePolicy_AreForbidden) {
  const auto denied =
      Post("/v1/consents",
           {{"cnic", kCnic}, {"purpose", "account-opening"}, {"scopes", {"name", "address"}}});
  EXPECT_EQ(denied.status, 403) << denied.body;
  EXPECT_EQ(denied.json["title"], "scope_not_allowed");
  const auto unknown =
      Post("/v1/consents", {{"cnic", kCnic}, {"purpose", "mortgage"}, {"scopes", {"name"}}});
  EXPECT_EQ(unknown.status, 403) << unknown.body;
}

TEST_F(ApplianceTest, UnknownAndSuspendedProviders_AreRefused) {
  const auto unknown = Post("/v1/consents", ConsentBody(), kUnknownKey);
  EXPECT_EQ(unknown.status, 401);
  EXPECT_THAT(unknown.header("www-authenticate"), HasSubstr("Bearer"));
  EXPECT_THAT(unknown.json["detail"].get<std::string>(), HasSubstr("unknown provider credentials"));
  // No credentials at all: the answer says what to send.
  const auto anonymous = Post("/v1/consents", ConsentBody(), "");
  EXPECT_EQ(anonymous.status, 401);
  EXPECT_THAT(anonymous.json["detail"].get<std::string>(),
              HasSubstr("no credentials: send Authorization: Bearer <API key>"));
  const auto suspended = Post("/v1/consents", ConsentBody(), kSuspendedKey);
  EXPECT_EQ(suspended.status, 403);
  EXPECT_EQ(suspended.json["title"], "provider_suspended");
}

TEST_F(ApplianceTest, UnenrolledCnic_LooksTheSameAsAnEnrolledOne) {
  InboundSms(kPhone, kCnic);
  SentMessages();
  const auto enrolled = Post("/v1/consents", ConsentBody(kCnic));
  const auto unenrolled = Post("/v1/consents", ConsentBody("4210112345673"));
  EXPECT_EQ(enrolled.status, unenrolled.status);
  std::vector<std::string> enrolled_keys;
  std::vector<std::string> unenrolled_keys;
  for (const auto& [key, value] : enrolled.json.items()) enrolled_keys.push_back(key);
  for (const auto& [key, value] : unenrolled.json.items()) unenrolled_keys.push_back(key);
  EXPECT_EQ(enrolled_keys, unenrolled_keys);
  EXPECT_EQ(enrolled.json["expires_at"], unenrolled.json["expires_at"]);
  EXPECT_EQ(enrolled.body.size(), unenrolled.body.size());
  EXPECT_THAT(SentMessages(), SizeIs(2)) << "one code, for the enrolled citizen only";
  // The unenrolled consent cannot be confirmed with any code.
  const std::string id = unenrolled.json["consent_id"];
  EXPECT_EQ(Post("/v1/consents/" + id + "/confirm", {{"otp", "123456"}}).status, 403);
}

TEST_F(ApplianceTest, RevealingProvider_IsToldWhetherTheCnicIsEnrolled) {
  InboundSms(kPhone, kCnic);
  const auto body =
      nlohmann::json{{"cnic", kCnic}, {"purpose", "sim-issuance"}, {"scopes", {"name"}}};
  const auto enrolled = Post("/v1/consents", body, kTelcoKey);
  EXPECT_EQ(enrolled.json["enrolled"], true);
  auto other = body;
  other["cnic"] = "4210112345673";
  EXPECT_EQ(Post("/v1/consents", other, kTelcoKey).json["enrolled"], false);
}

TEST_F(ApplianceTest, NumberChange_TellsTheOldNumberAndHoldsVerification) {
  ImportSubscribers("cnic,msisdn\n3520212345671,+923001234567\n3520212345671,+923331234567\n");
  InboundSms(kPhone, kCnic);
  SentMessages();
  const std::string new_phone = "+923331234567";
  ASSERT_EQ(InboundSms("0333 1234567", kCnic).status, 200);
  const auto sent = SentMessages();
  ASSERT_THAT(sent, SizeIs(3));
  EXPECT_EQ(sent[1].to, kPhone);
  EXPECT_THAT(sent[1].text, HasSubstr("new number"));
  EXPECT_EQ(sent[2].to, new_phone);

  // Held: the request looks normal but no code goes out.
  const auto held = Post("/v1/consents", ConsentBody());
  EXPECT_EQ(held.status, 202);
  EXPECT_THAT(SentMessages(), SizeIs(3));

  clock_.Advance(24 * 3600 + 1);
  const std::string id = RequestConsentId();
  ASSERT_THAT(SentMessages(), SizeIs(4));
  EXPECT_EQ(Grant(id, new_phone)["state"], "granted");
}

TEST_F(ApplianceTest, ReEnrolment_WithTheSameNumber_OnlyConfirmsAgain) {
  InboundSms(kPhone, kCnic);
  InboundSms(kPhone, "CNIC: 35202 1234567 1");
  const auto sent = SentMessages();
  ASSERT_THAT(sent, SizeIs(2));
  EXPECT_EQ(sent[1].to, kPhone);
  const std::string id = RequestConsentId();
  EXPECT_EQ(Grant(id)["state"], "granted") << "no hold after re-enrolling the same number";
}

TEST_F(ApplianceTest, OtherText_GetsHelp) {
  ASSERT_EQ(InboundSms(kPhone, "hello").status, 200);
  const auto sent = SentMessages();
  ASSERT_THAT(sent, SizeIs(1));
  EXPECT_THAT(sent[0].text, HasSubstr("13-digit CNIC"));
}

TEST_F(ApplianceTest, InboundSms_RequiresTheGatewaySecret) {
  const auto refused =
      Request("POST", "/v1/sms/inbound",
              nlohmann::json{{"from", kPhone}, {"to", kShortCode}, {"text", kCnic}}.dump(), "",
              "application/json", {{"X-Ijazat-Gateway-Secret", "wrong"}});
  EXPECT_EQ(refused.status, 401);
  EXPECT_THAT(SentMessages(), IsEmpty());
  // Kannel's get-url form: everything in the query.
  const auto kannel = Request("GET",
                              std::string("/v1/sms/inbound?secret=") + kGatewaySecret +
                                  "&from=%2B923001234567&to=8009&text=3520212345671",
                              "", "");
  EXPECT_EQ(kannel.status, 200) << kannel.body;
  EXPECT_EQ(kannel.body, "");
  EXPECT_THAT(SentMessages(), SizeIs(1));
}

TEST_F(ApplianceTest, Database_HoldsNoCnicPhoneOrCode) {
  InboundSms("03001234567", "35202-1234567-1");
  const std::string id = RequestConsentId();
  const auto code = LastCodeFor(kPhone);
  ASSERT_TRUE(code.has_value());
  Grant(id);
  StopAppliance();  // flush and close the database
  std::string bytes;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::ifstream in(config_.store_path + suffix, std::ios::binary);
    bytes.append(std::istreambuf_iterator<char>(in), {});
  }
  ASSERT_FALSE(bytes.empty());
  for (const std::string& secret :
       {std::string(kCnic), std::string("35202-1234567-1"), std::string("3001234567"), *code}) {
    EXPECT_EQ(bytes.find(secret), std::string::npos) << "found " << secret;
  }
  StartAppliance();
}

// Finding 1 of the trust-anchor review: an otp/v2 planted by hand became the active OTP key
// after SIGHUP. Now it is refused on reload, named by /readyz and the log, and codes keep
// coming from the audited version.
TEST_F(ApplianceTest, KeyPlantedOnTheToken_IsRefusedOnReload_NamedAndNeverUsed) {
  ASSERT_EQ(InboundSms(kPhone, kCnic).status, 200);
  const auto planted = ijazat::testing::RunCommand(
      token_.Pkcs11Tool("--keygen --key-type GENERIC:32 --label otp/v2 --id 12"));
  ASSERT_EQ(planted.exit_code, 0) << planted.output;
  ASSERT_THAT(appliance_->Reload(), IsOk());  // what SIGHUP does
  const auto ready = Get("/readyz", "");
  EXPECT_EQ(ready.status, 200) << "the conforming keys still serve";
  EXPECT_EQ(ready.json["checks"]["keys"], "rejected");
  EXPECT_THAT(ready.body, HasSubstr("otp/v2 (secret key)"));
  EXPECT_THAT(Get("/metrics", "").body, HasSubstr("ijazat_hsm_keys_rejected 1"));
  EXPECT_THAT(ijazat::testing::ReadFileOrDie(config_.log_file), HasSubstr("hsm.key_rejected"));
  const std::string id = RequestConsentId();
  EXPECT_EQ(Grant(id)["state"], "granted") << "the code came from otp/v1";
  auto otp = appliance_->hsm().ActiveKey(hsm::KeyKind::kOtp);
  ASSERT_THAT(otp, IsOk());
  EXPECT_EQ(otp->version, 1u);
}

// The key ceremony's tool rotates and retires from another process; the running appliance
// follows within one sweep (every minute), without a signal, and a retired version verifies
// nothing any more.
TEST_F(ApplianceTest, RotationAndRetirementByTheTool_TakeEffectAtTheNextSweep) {
  ASSERT_EQ(InboundSms(kPhone, kCnic).status, 200);
  const std::string v1_token = Grant(RequestConsentId())["consent_token"];
  ASSERT_FALSE(v1_token.empty());
  const std::string provision =
      token_.Environment() + ijazat::testing::BinaryPath("ijazat-provision") + " --token " +
      token_.label() + " --pin-file " + token_.user_pin_file().string() + " ";
  const auto rotated = ijazat::testing::RunCommand(provision + "rotate --name receipt");
  ASSERT_EQ(rotated.exit_code, 0) << rotated.output;
  appliance_->Sweep();
  EXPECT_THAT(Get("/.well-known/jwks.json", "").json["keys"], SizeIs(2)) << "v2 published";
  const std::string v2_token = Grant(RequestConsentId())["consent_token"];
  EXPECT_EQ(Post("/v1/verifications", {{"consent_token", v1_token}}).status, 200)
      << "v1 still verifies before its retirement";

  const auto retired = ijazat::testing::RunCommand(provision + "retire --name receipt --version 1");
  ASSERT_EQ(retired.exit_code, 0) << retired.output;
  appliance_->Sweep();
  EXPECT_THAT(Get("/.well-known/jwks.json", "").json["keys"], SizeIs(1)) << "v1 withdrawn";
  const auto refused = Post("/v1/verifications", {{"consent_token", v1_token}});
  EXPECT_NE(refused.status, 200) << "a retired version verifies nothing: " << refused.body;
  EXPECT_EQ(Post("/v1/verifications", {{"consent_token", v2_token}}).status, 200);
  EXPECT_THAT(ijazat::testing::ReadFileOrDie(config_.log_file),
              HasSubstr("receipt/v2:active receipt/v1:retired"))
      << "the versions in use are logged when they change";

  // After a compromise the retired version is destroyed while the appliance serves: nothing
  // changes for providers, the key ceremony's check agrees with the token, and the appliance
  // starts again on it.
  const auto destroyed =
      ijazat::testing::RunCommand(provision + "destroy --name receipt --version 1 --confirm");
  ASSERT_EQ(destroyed.exit_code, 0) << destroyed.output;
  appliance_->Sweep();
  EXPECT_THAT(Get("/.well-known/jwks.json", "").json["keys"], SizeIs(1));
  EXPECT_NE(Post("/v1/verifications", {{"consent_token", v1_token}}).status, 200);
  const auto checked = ijazat::testing::RunCommand(provision + "check");
  EXPECT_EQ(checked.exit_code, 0) << checked.output;
  const auto listed = ijazat::testing::RunCommand(provision + "list");
  EXPECT_THAT(listed.output, HasSubstr("receipt/v1  destroyed")) << listed.output;
  StopAppliance();
  StartAppliance();
  EXPECT_EQ(Get("/readyz", "").status, 200);
  EXPECT_NE(Post("/v1/verifications", {{"consent_token", v1_token}}).status, 200);
  const std::string v2_again = Grant(RequestConsentId())["consent_token"];
  EXPECT_EQ(Post("/v1/verifications", {{"consent_token", v2_again}}).status, 200);
}

TEST_F(ApplianceTest, PinRefusedAfterAnOutage_ReadyzNamesIt_AndNoLoginFollows) {
  faults_->FailCall("C_Sign", hsm::rv::kSessionHandleInvalid);  // the session is lost
  faults_->FailCall("C_Login", hsm::rv::kPinIncorrect, 1, /*count=*/0);
  EXPECT_EQ(Post("/v1/consents", ConsentBody()).status, 503);
  const int logins = faults_->Calls("C_Login");
  for (int i = 0; i < 10; ++i) {
    const auto ready = Get("/readyz", "");
    EXPECT_EQ(ready.status, 503);
    EXPECT_EQ(ready.json["checks"]["hsm"], "pin_incorrect");
  }
  EXPECT_EQ(faults_->Calls("C_Login"), logins) << "/readyz never logs in again";
  EXPECT_TRUE(appliance_->hsm().LoginRefused().has_value()) << "what makes ijazatd exit 3";
}

TEST_F(ApplianceTest, HsmUnavailable_Answers503ThenRecoversWithoutRestart) {
  InboundSms(kPhone, kCnic);
  faults_->FailCall("C_Sign", hsm::rv::kDeviceError, 1, /*count=*/0);
  const auto down = Post("/v1/consents", ConsentBody());
  EXPECT_EQ(down.status, 503) << down.body;
  EXPECT_EQ(down.header("retry-after"), "5");
  EXPECT_THAT(down.body, Not(HasSubstr("CKR_")));
  EXPECT_EQ(Get("/readyz", "").status, 200) << "the session still answers; only signing fails";
  faults_->FailCall("C_GetSessionInfo", hsm::rv::kDeviceError, 1, 0);
  faults_->FailCall("C_Login", hsm::rv::kDeviceError, 1, 0);
  EXPECT_EQ(Get("/readyz", "").status, 503);
  faults_->Clear();
  // Reconnections after a failed one back off (200 ms, doubling): it recovers at the next.
  int status = 0;
  for (int i = 0; i < 100 && status != 200; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    status = Get("/readyz", "").status;
  }
  EXPECT_EQ(status, 200);
  const auto up = Post("/v1/consents", ConsentBody());
  EXPECT_EQ(up.status, 202) << up.body;
}

// The identity registry locked by another process (an import that never commits): a right
// code cannot be confirmed, since whether an authority still binds the number to the CNIC
// cannot be checked. The provider is told that the registry is down (not the HSM, and nothing
// more); the operator's log says why; the HSM's failure count is untouched; nothing counts
// against the consent, and the same code confirms once the registry answers again.
TEST_F(ApplianceTest, RegistryUnavailable_Answers503RegistryUnavailable_NotHsm) {
  ASSERT_EQ(InboundSms(kPhone, kCnic).status, 200);
  const std::string id = RequestConsentId();
  const std::optional<std::string> code = LastCodeFor(kPhone);
  ASSERT_TRUE(code.has_value());
  {
    DatabaseLock lock(config_.registry_path);
    ASSERT_TRUE(lock.held());
    const auto down = Post("/v1/consents/" + id + "/confirm", {{"otp", *code}});
    EXPECT_EQ(down.status, 503) << down.body;
    EXPECT_EQ(down.json.value("title", ""), "registry_unavailable") << down.body;
    EXPECT_EQ(down.header("retry-after"), "5");
    EXPECT_THAT(down.body, Not(HasSubstr("SQLITE"))) << "no internal detail for the provider";
  }
  const auto metrics = Get("/metrics", "");
  EXPECT_THAT(metrics.body, Not(HasSubstr("ijazat_hsm_failures_total{"))) << metrics.body;
  std::ifstream log_file(config_.log_file);
  const std::string log((std::istreambuf_iterator<char>(log_file)), {});
  EXPECT_THAT(log, HasSubstr(R"("event":"request.dependency_unavailable")"));
  EXPECT_THAT(log, HasSubstr(R"("reason":"registry_unavailable")"));
  EXPECT_THAT(log, AllOf(Not(HasSubstr(kCnic)), Not(HasSubstr("3001234567"))));

  const auto pending = Get("/v1/consents/" + id);
  EXPECT_EQ(pending.json["state"], "pending");
  EXPECT_EQ(pending.json["attempts_remaining"], 3) << "the outage cost no attempt";
  const auto granted = Post("/v1/consents/" + id + "/confirm", {{"otp", *code}});
  EXPECT_EQ(granted.status, 200) << granted.body;
}

TEST_F(ApplianceTest, PolicyReload_AppliesAGoodFileAndKeepsTheOldOnABadOne) {
  std::string tighter = TestPolicy();
  tighter.replace(tighter.find("scopes: [name, father_name, date_of_birth]"),
                  std::string("scopes: [name, father_name, date_of_birth]").size(),
                  "scopes: [name]");
  tighter.replace(tighter.find("version: test-1"), 15, "version: test-2");
  EXPECT_THAT(Get("/metrics", "").body, HasSubstr("ijazat_policy_info{version=\"test-1\""));
  WritePolicy(tighter);
  ASSERT_TRUE(appliance_->Reload().ok());
  EXPECT_EQ(Post("/v1/consents", ConsentBody()).status, 403) << "date_of_birth is gone";
  EXPECT_THAT(Get("/metrics", "").body, HasSubstr("ijazat_policy_info{version=\"test-2\""))
      << "the metric names the policy in force";

  WritePolicy("version: broken\nproviders: [\n");
  EXPECT_FALSE(appliance_->Reload().ok());
  EXPECT_THAT(Get("/metrics", "").body, HasSubstr("ijazat_policy_info{version=\"test-2\""));
  const auto still =
      Post("/v1/consents", {{"cnic", kCnic}, {"purpose", "account-opening"}, {"scopes", {"name"}}});
  EXPECT_EQ(still.status, 202) << "the good policy stays in force";
}

TEST_F(ApplianceTest, Restart_KeepsEveryConsent) {
  InboundSms(kPhone, kCnic);
  const std::string id = RequestConsentId();
  const std::string token = Grant(id)["consent_token"];
  StopAppliance();
  StartAppliance();
  EXPECT_EQ(Get("/v1/consents/" + id).json["state"], "granted");
  EXPECT_EQ(Post("/v1/verifications", {{"consent_token", token}}).status, 200);
}

TEST_F(ApplianceTest, MalformedRequests_GetSpecificErrorsAndTheServerKeepsServing) {
  struct Case {
    std::string method, path, body, content_type;
    int status;
    std::string title;
  };
  const std::vector<Case> cases = {
      {"POST", "/v1/consents", "{", "application/json", 400, "invalid_json"},
      {"POST", "/v1/consents", "[]", "application/json", 400, "not_an_object"},
      {"POST", "/v1/consents", std::string(40, '[') + std::string(40, ']'), "application/json", 400,
       "json_too_deep"},
      {"POST", "/v1/consents", std::string(17 * 1024, ' '), "application/json", 413,
       "body_too_large"},
      {"POST", "/v1/consents", "{\"cnic\":\"x\"}", "text/plain", 415, "unsupported_media_type"},
      {"POST", "/v1/consents", "{\"cnic\":\"\xff\xfe\"}", "application/json", 400, "invalid_json"},
      {"POST", "/v1/consents", R"({"cnic":"123","purpose":"account-opening","scopes":["name"]})",
       "application/json", 400, "invalid_cnic"},
      {"POST", "/v1/consents", R"({"cnic":3520212345671})", "application/json", 400,
       "invalid_request"},
      {"POST", "/v1/consents",
       R"({"cnic":"3520212345671","purpose":"account-opening","scopes":[]})", "application/json",
       400, "invalid_request"},
      {"POST", "/v1/consents",
       R"({"cnic":"3520212345671","purpose":"account-opening","scopes":["name"],"x":1})",
       "application/json", 400, "invalid_request"},
      {"GET", "/v1/consents", "", "application/json", 405, "method_not_allowed"},
      {"GET", "/v1/consents/not*valid", "", "application/json", 404, "consent_not_found"},
      {"GET", "/v1/nothing", "", "application/json", 404, "not_found"},
      {"POST", "/v1/consents/abc/confirm", R"({"otp":"12"})", "application/json", 404,
       "consent_not_found"},
  };
  for (const Case& c : cases) {
    const auto result = Request(c.method, c.path, c.body, kBankKey, c.content_type);
    EXPECT_EQ(result.status, c.status)
        << c.path << " " << c.body.substr(0, 40) << ": " << result.body;
    EXPECT_EQ(result.json.is_object() ? result.json["title"] : "", c.title) << result.body;
  }
  EXPECT_EQ(Get("/healthz", "").status, 200);
  const auto bad_auth = Request("POST", "/v1/consents", ConsentBody().dump(), "",
                                "application/json", {{"Authorization", "Basic Zm9vOmJhcg=="}});
  EXPECT_EQ(bad_auth.status, 401);
}

TEST_F(ApplianceTest, Operations_HealthReadinessMetrics) {
  EXPECT_EQ(Get("/healthz", "").json["status"], "ok");
  const auto ready = Get("/readyz", "");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(ready.json["checks"]["hsm"], "ok");
  Post("/v1/consents", ConsentBody());
  const auto metrics = Get("/metrics", "");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_THAT(metrics.body,
              HasSubstr("ijazat_http_requests_total{route=\"consents\",status=\"202\"} 1"));
  EXPECT_THAT(metrics.body, HasSubstr("ijazat_sms_outbox_messages"));
  const auto response = Get("/healthz", "");
  EXPECT_EQ(response.header("strict-transport-security"), "max-age=63072000");
  EXPECT_EQ(response.header("x-content-type-options"), "nosniff");
}

namespace ijazat::appliance::testing {
namespace {

TEST_F(ApplianceTest, InboundSms_AcceptsKannelPostUrl) {
  const auto posted =
      Request("POST", std::string("/v1/sms/inbound?secret=") + kGatewaySecret, "35202-1234567-1",
              "", "text/plain", {{"X-Kannel-From", "+923001234567"}, {"X-Kannel-To", "8009"}});
  EXPECT_EQ(posted.status, 200) << posted.body;
  const auto sent = SentMessages();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].to, kPhone);
}

TEST_F(ApplianceTest, InboundSms_RejectsBadSendersAndShortCodes) {
  const auto send = [&](const std::string& from, const std::string& to) {
    return Request("POST", "/v1/sms/inbound",
                   nlohmann::json{{"from", from}, {"to", to}, {"text", kCnic}}.dump(), "",
                   "application/json", {{"X-Ijazat-Gateway-Secret", kGatewaySecret}});
  };
  EXPECT_EQ(send("+442071234567", kShortCode).json["title"], "invalid_msisdn");
  EXPECT_EQ(send(kPhone, "9999").json["title"], "wrong_short_code");
  EXPECT_TRUE(SentMessages().empty());
}

TEST_F(ApplianceTest, OversizedHeaders_AreRefusedAndTheServerKeepsServing) {
  const auto huge = Request("GET", "/healthz", "", "", "application/json",
                            {{"X-Filler", std::string(20000, 'a')}});
  EXPECT_EQ(huge.status, 431);
  std::map<std::string, std::string> many;
  for (int i = 0; i < 200; ++i) many["X-Header-" + std::to_string(i)] = "x";
  EXPECT_EQ(Request("GET", "/healthz", "", "", "application/json", many).status, 431);
  EXPECT_EQ(Get("/healthz", "").status, 200);
}

}  // namespace
}  // namespace ijazat::appliance::testing

// A provider outside its validity window is refused by every endpoint with a documented 403,
// whatever it asks (issue: expired providers got 500 on requests and could still read and
// revoke).
TEST_F(ApplianceTest, ProvidersOutsideTheirValidity_AreRefusedByEveryEndpoint) {
  std::string policy = TestPolicy();
  const auto insert_after = [&policy](const std::string& line, const std::string& text) {
    const std::size_t at = policy.find(line);
    ASSERT_NE(at, std::string::npos) << line;
    policy.insert(at + line.size(), text);
  };
  // The clock starts at 2026-01-01T00:00:00Z: the bank's window ends in an hour, the telco's
  // starts tomorrow.
  insert_after("display_name: Test Bank\n", "    valid_until: 2026-01-01T01:00:00Z\n");
  insert_after("display_name: Test Telco\n", "    valid_from: 2026-01-02T00:00:00Z\n");
  WritePolicy(policy);
  StopAppliance();
  StartAppliance();

  InboundSms(kPhone, kCnic);
  const std::string granted_id = RequestConsentId();
  const std::string token = Grant(granted_id)["consent_token"];
  const auto pending = Post("/v1/consents", ConsentBody());
  ASSERT_EQ(pending.status, 202) << pending.body;
  const std::string pending_id = pending.json["consent_id"];
  clock_.Advance(2 * 3600);

  const auto expect_refused = [](const HttpResult& result, const std::string& reason,
                                 const std::string& what) {
    EXPECT_EQ(result.status, 403) << what << ": " << result.body;
    EXPECT_EQ(result.json.value("title", ""), reason) << what;
    EXPECT_EQ(result.json.value("type", ""), "urn:ijazat:problem:" + reason) << what;
  };
  expect_refused(Post("/v1/consents", ConsentBody()), "provider_expired", "request");
  expect_refused(Post("/v1/consents/" + pending_id + "/confirm", {{"otp", "123456"}}),
                 "provider_expired", "confirm");
  expect_refused(Get("/v1/consents/" + granted_id), "provider_expired", "read");
  expect_refused(Post("/v1/consents/" + granted_id + "/revoke", nlohmann::json::object()),
                 "provider_expired", "revoke");
  expect_refused(Post("/v1/verifications", {{"consent_token", token}}), "provider_expired",
                 "verify");

  expect_refused(
      Post("/v1/consents", {{"cnic", kCnic}, {"purpose", "sim-issuance"}, {"scopes", {"name"}}},
           kTelcoKey),
      "provider_not_yet_valid", "request before the window");
  expect_refused(Get("/v1/consents/" + granted_id, kTelcoKey), "provider_not_yet_valid",
                 "read before the window");
}

// A reload that would admit the public demo key is refused like any invalid policy: the policy
// in force stays, and the demo key opens nothing.
TEST_F(ApplianceTest, ReloadGivingAProviderThePublishedDemoKey_IsRefused_AndTheOldPolicyStays) {
  std::string text = TestPolicy();
  const std::string line = "display_name: Test Bank\n";
  // A second credential for the bank: the published demo key's SHA-256.
  const std::string credentials = "    credentials:\n";
  const std::size_t at = text.find(credentials, text.find(line));
  ASSERT_NE(at, std::string::npos);
  text.insert(at + credentials.size(),
              "      - {type: api_key, sha256: "
              "54bd67e14abb2c86b58570285af9d2210ad3e0c0b7eaabc2acacc220e93eca24}\n");
  WritePolicy(text);
  const Status reloaded = appliance_->Reload();
  ASSERT_FALSE(reloaded.ok());
  EXPECT_THAT(reloaded.error().message(), HasSubstr("public demo API key"));
  const auto demo =
      Post("/v1/consents", ConsentBody(), std::string(::ijazat::policy::kPublishedDemoApiKey));
  EXPECT_EQ(demo.status, 401) << demo.body;
  EXPECT_EQ(Post("/v1/consents", ConsentBody()).status, 202);
}

}  // namespace
}  // namespace ijazat::appliance::testing
