// SMS abuse limits end to end: caps per CNIC and per number (with the uniform provider answer
// and the metric), the configured number ranges, and the optional subscriber registry.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "appliance_fixture.h"
#include "registry.h"

namespace ijazat::appliance::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;

// In the demo registry, besides kCnic.
constexpr char kOtherCnic[] = "4210112345673";

class SmsLimitsTest : public ApplianceTest {
 protected:
  HttpResult AskBank(const std::string& cnic = kCnic) {
    return Post("/v1/consents",
                {{"cnic", cnic}, {"purpose", "account-opening"}, {"scopes", {"name"}}});
  }
  int CodesTo(const std::string& phone) {
    int codes = 0;
    for (const SentSms& sms : SentMessages()) {
      if (sms.to == phone && sms.text.rfind("Ijazat code", 0) == 0) ++codes;
    }
    return codes;
  }
  std::string Metrics() { return Get("/metrics", "").body; }
  void Restart() {
    StopAppliance();
    StartAppliance();
  }
};

TEST_F(SmsLimitsTest, PerCnicDailyCap_StopsCodes_WithTheSameAnswer_AndIsCounted) {
  config_.sms.caps.per_cnic_per_day = 3;  // the enrolment confirmation is the first
  Restart();
  ASSERT_EQ(InboundSms(kPhone, kCnic).status, 200);
  const auto first = AskBank();
  const auto second = AskBank();
  EXPECT_EQ(CodesTo(kPhone), 2);
  // An hour later the policy's hourly cap (5) is far away, but the day's cap is reached.
  clock_.Advance(2 * 3600);
  const auto capped = AskBank();
  EXPECT_EQ(capped.status, 202);
  EXPECT_EQ(capped.json.size(), first.json.size()) << "the provider sees no difference";
  EXPECT_TRUE(capped.json.contains("consent_id"));
  EXPECT_EQ(CodesTo(kPhone), 2) << "no code past the cap";
  EXPECT_THAT(Metrics(), HasSubstr("event=\"sms_cap_hit_cnic_day\"} 1"));
  // The next day the citizen can be asked again.
  clock_.Advance(23 * 3600);
  AskBank();
  EXPECT_EQ(CodesTo(kPhone), 3);
  (void)second;
}

TEST_F(SmsLimitsTest, PerNumberHourlyCap_CountsEveryCnicEnrolledWithTheNumber) {
  config_.sms.caps.per_number_per_hour = 4;
  Restart();
  // One family phone for two CNICs: two confirmations already count against the number.
  ASSERT_EQ(InboundSms(kPhone, kCnic).status, 200);
  ASSERT_EQ(InboundSms(kPhone, kOtherCnic).status, 200);
  AskBank(kCnic);
  AskBank(kOtherCnic);
  EXPECT_EQ(CodesTo(kPhone), 2);
  const auto capped = AskBank(kCnic);
  EXPECT_EQ(capped.status, 202);
  EXPECT_EQ(CodesTo(kPhone), 2) << "the number has had its 4 SMS this hour";
  EXPECT_THAT(Metrics(), HasSubstr("event=\"sms_cap_hit_number_hour\"} 1"));
  clock_.Advance(61 * 60);
  AskBank(kOtherCnic);
  EXPECT_EQ(CodesTo(kPhone), 3);
}

TEST_F(SmsLimitsTest, PerNumberDailyCap_HoldsAcrossHours) {
  config_.sms.caps.per_number_per_day = 3;
  Restart();
  ASSERT_EQ(InboundSms(kPhone, kCnic).status, 200);
  AskBank();
  EXPECT_EQ(CodesTo(kPhone), 1);  // sent before the clock moves past the code's life
  clock_.Advance(2 * 3600);
  AskBank();
  EXPECT_EQ(CodesTo(kPhone), 2);
  clock_.Advance(2 * 3600);
  AskBank();
  EXPECT_EQ(CodesTo(kPhone), 2) << "the number has had its 3 SMS today";
  EXPECT_THAT(Metrics(), HasSubstr("event=\"sms_cap_hit_number_day\"} 1"));
}

TEST_F(SmsLimitsTest, NumberRanges_Configured_RefuseOtherSenders) {
  config_.sms.numbers.ranges = {"+92300", "+92301"};
  Restart();
  const auto refused = InboundSms("0345 1234567", kCnic);
  EXPECT_EQ(refused.status, 400);
  EXPECT_EQ(refused.json["title"], "invalid_msisdn");
  EXPECT_THAT(SentMessages(), SizeIs(0)) << "nothing stored, nothing sent";
  EXPECT_EQ(InboundSms("0092-300-1234567", kCnic).status, 200);
  EXPECT_THAT(SentMessages(), SizeIs(1));
  EXPECT_EQ(SentMessages().front().to, kPhone);
}

using SubscriberRegistryTest = SmsLimitsTest;

TEST_F(SubscriberRegistryTest, Required_EnrolsOnlyARegisteredNumber) {
  ImportSubscribers("cnic,msisdn\n35202-1234567-1,03001234567\n4210112345673,+923331112223\n");
  // Someone else's number tries to take over kCnic: refused, told why, nothing changes.
  const auto refused = InboundSms("+923459998887", kCnic);
  EXPECT_EQ(refused.status, 200);
  auto sent = SentMessages();
  ASSERT_THAT(sent, SizeIs(1));
  EXPECT_EQ(sent[0].to, "+923459998887");
  EXPECT_THAT(sent[0].text, HasSubstr("not registered to that CNIC"));
  AskBank();
  EXPECT_THAT(SentMessages(), SizeIs(1)) << "kCnic is still not enrolled: no code anywhere";

  ASSERT_EQ(InboundSms(kPhone, kCnic).status, 200);
  sent = SentMessages();
  ASSERT_THAT(sent, SizeIs(2));
  EXPECT_EQ(sent[1].to, kPhone);
  EXPECT_THAT(sent[1].text, HasSubstr("now enrolled"));
}

TEST_F(SubscriberRegistryTest, Required_RefusesANumberChangeToAnUnregisteredNumber) {
  ImportSubscribers("cnic,msisdn\n3520212345671,03001234567\n");
  ASSERT_EQ(InboundSms(kPhone, kCnic).status, 200);
  ASSERT_EQ(InboundSms("+923005556667", kCnic).status, 200);
  const auto sent = SentMessages();
  ASSERT_THAT(sent, SizeIs(2));
  EXPECT_EQ(sent[1].to, "+923005556667");
  EXPECT_THAT(sent[1].text, HasSubstr("not registered"));
  // No hold started and the old number was not told: a code still reaches kPhone at once.
  AskBank();
  EXPECT_EQ(CodesTo(kPhone), 1);
}

TEST_F(SubscriberRegistryTest, Required_WithoutSubscriberData_RefusesToStart) {
  StopAppliance();
  const auto bare = dir_ / "bare-registry.db";
  const auto citizens = dir_ / "bare-registry.csv";
  std::ofstream(citizens) << "cnic,name\n" << kCnic << ",Ayesha Khan\n";
  ASSERT_TRUE(ImportRegistryCsv(bare.string(), citizens.string()).ok());
  config_.registry_path = bare.string();
  auto started = Appliance::Start(config_, {});
  ASSERT_FALSE(started.ok());
  EXPECT_THAT(started.error().message(), HasSubstr("import-subscribers"));
  EXPECT_THAT(started.error().message(), HasSubstr("sms.enrolment is authority"));
}

}  // namespace
}  // namespace ijazat::appliance::testing
