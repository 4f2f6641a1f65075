// The citizen's commands at the short code, end to end through the webhook and the SMS sink.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "appliance_fixture.h"

namespace ijazat::appliance::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

class CitizenCommandsTest : public ApplianceTest {
 protected:
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
  EXPECT_THAT(Command("BLOCK nobody"), HasSubstr("no provider called \"nobody\""));
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
  EXPECT_THAT(Command("REVOKE ZZZZ-ZZZZ"), HasSubstr("no consent with reference ZZZZ-ZZZZ"));
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

TEST_F(CitizenCommandsTest, CommandsFromAnUnenrolledNumber_ExplainHowToEnrol) {
  EXPECT_THAT(Command("LOCK", "+923339999999"), HasSubstr("not enrolled"));
  EXPECT_THAT(Command("HELP"), HasSubstr("HISTORY, REVOKE <ref>"));
}

}  // namespace
}  // namespace ijazat::appliance::testing
