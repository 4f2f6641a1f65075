// The citizen's commands at the short code, end to end through the webhook and the SMS sink.
#include <Poco/URI.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include "appliance_fixture.h"

namespace ijazat::appliance::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

class CitizenCommandsTest : public ApplianceTest {
 protected:
  void SetUp() override {
    ApplianceTest::SetUp();
    if (HasFatalFailure()) return;
    RestartWithRoomForReplies();
  }
  // Sends `text` from kPhone and returns the reply.
  std::string Command(const std::string& text, const std::string& from = kPhone) {
    const auto before = SentMessages().size();
    EXPECT_EQ(InboundSms(from, text).status, 200);
    const auto sent = SentMessages();
    if (sent.size() != before + 1) {
      ADD_FAILURE() << "expected one reply to " << text;
      return "";
    }
    EXPECT_LE(sent.back().text.size(), 160u) << "fits one SMS";
    EXPECT_THAT(sent.back().text, Not(HasSubstr("1234567"))) << "never echoes a CNIC";
    return sent.back().text;
  }
};

TEST_F(CitizenCommandsTest, Lock_StopsCodesAndVerification_UnlockRestores) {
  InboundSms(kPhone, kCnic);
  const std::string id = RequestConsentId();
  const std::string token = Grant(id)["consent_token"];
  EXPECT_THAT(Command("  lock "), HasSubstr("locked"));
  const auto before = SentMessages().size();
  const auto created =
      Post("/v1/consents", {{"cnic", kCnic}, {"purpose", "account-opening"}, {"scopes", {"name"}}});
  EXPECT_EQ(created.status, 202) << "a locked citizen looks like any other to the provider";
  EXPECT_THAT(SentMessages(), SizeIs(before)) << "and receives no code";
  const auto verify = Post("/v1/verifications", {{"consent_token", token}});
  EXPECT_EQ(verify.status, 403);
  EXPECT_EQ(verify.json["title"], "citizen_unavailable");

  EXPECT_THAT(Command("UNLOCK"), HasSubstr("unlocked"));
  EXPECT_EQ(Post("/v1/verifications", {{"consent_token", token}}).status, 200);
}

TEST_F(CitizenCommandsTest, Block_StopsOneProvider_UnblockRestores) {
  InboundSms(kPhone, kCnic);
  SentMessages();
  EXPECT_THAT(Command("block test bank"), HasSubstr("Test Bank can no longer ask"));
  auto before = SentMessages().size();
  Post("/v1/consents", {{"cnic", kCnic}, {"purpose", "account-opening"}, {"scopes", {"name"}}});
  EXPECT_THAT(SentMessages(), SizeIs(before)) << "no code for the blocked provider";
  Post("/v1/consents", {{"cnic", kCnic}, {"purpose", "sim-issuance"}, {"scopes", {"name"}}},
       kTelcoKey);
  EXPECT_THAT(SentMessages(), SizeIs(before + 1)) << "other providers are not affected";

  EXPECT_THAT(Command("UNBLOCK test-bank"), HasSubstr("may ask for your consent again"));
  before = SentMessages().size();
  Post("/v1/consents", {{"cnic", kCnic}, {"purpose", "account-opening"}, {"scopes", {"name"}}});
  EXPECT_THAT(SentMessages(), SizeIs(before + 1));
  EXPECT_THAT(Command("BLOCK nobody"), HasSubstr("no provider has that name"));
}

TEST_F(CitizenCommandsTest, Revoke_EndsAGrantedConsent) {
  InboundSms(kPhone, kCnic);
  const std::string id = RequestConsentId();
  const auto granted = Grant(id);
  const std::string reference = granted["reference"];
  std::string lower = reference;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  EXPECT_THAT(Command("revoke  " + lower), HasSubstr("is revoked"));
  const auto verify = Post("/v1/verifications", {{"consent_token", granted["consent_token"]}});
  EXPECT_EQ(verify.status, 409);
  EXPECT_EQ(verify.json["title"], "consent_revoked");
  EXPECT_THAT(Command("REVOKE " + reference), HasSubstr("already used, expired or revoked"));
  EXPECT_THAT(Command("REVOKE ZZZZ-ZZZZ"), HasSubstr("no consent of yours has that reference"));
}

TEST_F(CitizenCommandsTest, History_ListsRecentVerifications) {
  InboundSms(kPhone, kCnic);
  EXPECT_THAT(Command("HISTORY"), HasSubstr("no one has verified"));
  const std::string id = RequestConsentId();
  const auto granted = Grant(id);
  ASSERT_EQ(Post("/v1/verifications", {{"consent_token", granted["consent_token"]}}).status, 200);
  const std::string history = Command("history");
  EXPECT_THAT(history, HasSubstr("Test Bank ref " + granted["reference"].get<std::string>()));
  EXPECT_THAT(history, HasSubstr("01 Jan"));
}

// Finding 4 of the provider-abuse review: the echoed argument was cut inside a character and
// building the reply threw: 500, and the gateway retried.
TEST_F(CitizenCommandsTest, AnyBytesAfterACommand_GetA200AndAHelpfulReply) {
  InboundSms(kPhone, kCnic);
  std::string e_acute;
  for (int i = 0; i < 30; ++i) e_acute += "\xC3\xA9";
  for (const std::string& text :
       {"BLOCK x" + e_acute, "REVOKE x" + e_acute.substr(0, 30), std::string("BLOCK \xff"),
        std::string("REVOKE \xC3"), std::string("UNBLOCK \xF0\x9F\x98")}) {
    // As the gateway posts it: a form, which carries any bytes.
    std::string form = "from=03001234567&to=8009&text=";
    Poco::URI::encode(text, "&=+", form);
    const auto before = SentMessages().size();
    const auto answer =
        Request("POST", "/v1/sms/inbound", form, "", "application/x-www-form-urlencoded",
                {{"X-Ijazat-Gateway-Secret", kGatewaySecret}});
    EXPECT_EQ(answer.status, 200) << answer.body;
    const auto sent = SentMessages();
    ASSERT_EQ(sent.size(), before + 1) << "one reply to a text of " << text.size() << " bytes";
    EXPECT_THAT(sent.back().text, Not(HasSubstr("x\xC3"))) << "the sender's text is not echoed";
  }
}

// Findings 5 and 6: replies echoed up to 40 characters of any text (spam relayed by the
// appliance, and a CNIC stored in clear in the outbox).
TEST_F(CitizenCommandsTest, Replies_NeverEchoTheSendersText) {
  InboundSms(kPhone, kCnic);
  EXPECT_THAT(Command("BLOCK Buy cheap gold now at evil.example 0300"),
              AllOf(HasSubstr("no provider has that name"), Not(HasSubstr("gold")),
                    Not(HasSubstr("evil"))));
  EXPECT_THAT(Command("REVOKE 35202-1234567-1"), HasSubstr("no consent of yours"));
  EXPECT_THAT(Command("BLOCK 3520212345671"), Not(HasSubstr("3520212345671")));
  StopAppliance();
  std::string bytes;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::ifstream in(config_.store_path + suffix, std::ios::binary);
    bytes.append(std::istreambuf_iterator<char>(in), {});
  }
  for (const std::string& secret : {std::string(kCnic), std::string("35202-1234567-1"),
                                    std::string("3001234567"), std::string("evil.example")}) {
    EXPECT_EQ(bytes.find(secret), std::string::npos) << "found " << secret << " in the store";
  }
  StartAppliance();
}

// Every table of the store, and the log, after every kind of citizen command and enrolment,
// with the CNIC and the number written every way a citizen might: nothing identifying in clear.
TEST_F(CitizenCommandsTest, EveryCommand_LeavesNoCnicNumberOrCodeInTheStoreOrTheLog) {
  ASSERT_EQ(InboundSms("0300 1234567", "35202-1234567-1").status, 200);
  const std::string id = RequestConsentId();
  const auto code = LastCodeFor(kPhone);
  ASSERT_TRUE(code.has_value());
  const std::string reference = Grant(id)["reference"];
  for (const std::string& text :
       {std::string("HELP"), std::string("HISTORY"), "REVOKE " + reference,
        std::string("REVOKE 35202-1234567-1"), std::string("REVOKE 3520212345671"),
        std::string("BLOCK 3520212345671"), std::string("UNBLOCK 35202-1234567-1"),
        std::string("BLOCK test-bank"), std::string("UNBLOCK test-bank"), std::string("LOCK"),
        std::string("UNLOCK"), std::string("LOCK 3520212345671"),
        std::string("UNLOCK +923001234567"), std::string("hello 3520212345671 +923001234567"),
        std::string("3520212345671"), std::string("HISTORY 03001234567")}) {
    ASSERT_EQ(InboundSms(kPhone, text).status, 200) << text;
  }
  SentMessages();  // every reply rendered and handed over
  StopAppliance();
  std::string bytes;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::ifstream in(config_.store_path + suffix, std::ios::binary);
    bytes.append(std::istreambuf_iterator<char>(in), {});
  }
  ASSERT_FALSE(bytes.empty());
  std::string log;
  {
    std::ifstream in(config_.log_file, std::ios::binary);
    log.assign(std::istreambuf_iterator<char>(in), {});
  }
  ASSERT_FALSE(log.empty()) << "the log was written";
  for (const std::string& secret : {std::string(kCnic), std::string("35202-1234567-1"),
                                    std::string("3001234567"), std::string("300 1234567"), *code}) {
    EXPECT_EQ(bytes.find(secret), std::string::npos) << "found " << secret << " in the store";
    EXPECT_EQ(log.find(secret), std::string::npos) << "found " << secret << " in the log";
  }
  StartAppliance();
}

TEST_F(CitizenCommandsTest, CommandsFromAnUnenrolledNumber_ExplainHowToEnrol) {
  EXPECT_THAT(Command("LOCK", "+923339999999"), HasSubstr("not enrolled"));
  EXPECT_THAT(Command("HELP"), HasSubstr("HISTORY, REVOKE <ref>"));
}

}  // namespace
}  // namespace ijazat::appliance::testing
