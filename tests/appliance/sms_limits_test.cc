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
  HttpResult AskTelco(const std::string& cnic = kCnic) {
    return Post("/v1/consents", {{"cnic", cnic}, {"purpose", "sim-issuance"}, {"scopes", {"name"}}},
                kTelcoKey);
  }
  std::string Metrics() { return Get("/metrics", "").body; }
  void Restart() {
    StopAppliance();
    StartAppliance();
  }
};

TEST_F(SmsLimitsTest, PerCnicDailyCap_StopsCodes_WithTheSameAnswer_AndIsCounted) {
  config_.sms.caps.per_cnic_per_day = 6;  // a provider's share: 3
  Restart();
  ASSERT_EQ(InboundSms(kPhone, kCnic).status, 200);  // the confirmation counts for the CNIC
  const auto first = AskBank();
  AskBank();
  AskBank();
  EXPECT_EQ(CodesTo(kPhone), 3);
  clock_.Advance(2 * 3600);  // the hourly caps are far away now
  const auto capped = AskBank();
  EXPECT_EQ(capped.status, 202);
  EXPECT_EQ(capped.json.size(), first.json.size()) << "the provider sees no difference";
  EXPECT_TRUE(capped.json.contains("consent_id"));
  EXPECT_EQ(CodesTo(kPhone), 3) << "no code past the bank's share of the day's cap";
  EXPECT_THAT(Metrics(), HasSubstr("ijazat_provider_limit_hits_total{provider=\"test-bank\",limit="
                                   "\"cnic_provider_day\"} 1"));
  // The log names the cap, the provider and the consent whose code was dropped, which leads to
  // the request (http.request logs the consent id with the request id).
  std::ifstream log(config_.log_file);
  int cap_hits = 0;
  std::string request_id;
  for (std::string line; std::getline(log, line);) {
    const auto entry = nlohmann::json::parse(line, nullptr, false);
    if (!entry.is_object()) continue;
    if (entry.value("event", "") == "http.request" &&
        entry.value("consent_id", "") == capped.json["consent_id"].get<std::string>()) {
      request_id = entry.value("request_id", "");
    }
    if (entry.value("event", "") != "sms.cap_hit") continue;
    ++cap_hits;
    EXPECT_EQ(entry.value("consent_id", ""), capped.json["consent_id"].get<std::string>());
    EXPECT_EQ(entry.value("provider", ""), "test-bank");
    EXPECT_EQ(entry.value("cap", ""), "cnic_provider_day");
  }
  EXPECT_EQ(cap_hits, 1);
  // The request that asked for it, by the id the provider received.
  EXPECT_EQ(request_id, capped.header("x-request-id"));
  EXPECT_FALSE(request_id.empty());
  // Another provider still reaches the citizen, up to the CNIC's own cap.
  AskTelco();
  AskTelco();
  EXPECT_EQ(CodesTo(kPhone), 5);
  AskTelco();
  EXPECT_EQ(CodesTo(kPhone), 5) << "1 confirmation + 5 codes: the CNIC's 6 a day";
  EXPECT_THAT(
      Metrics(),
      HasSubstr("ijazat_provider_limit_hits_total{provider=\"test-telco\",limit=\"cnic_day\"} 1"));
  // The next day, counted from each SMS, the citizen can be asked again.
  clock_.Advance(23 * 3600);
  AskBank();
  EXPECT_EQ(CodesTo(kPhone), 6);
}

// Finding 3 of the provider-abuse review: four requests by one provider filled the
// per-CNIC hourly cap, and the next provider's code was never sent.
TEST_F(SmsLimitsTest, OneProvider_CannotFillTheCitizensCaps_ForAnother) {
  ASSERT_EQ(InboundSms(kPhone, kCnic).status, 200);
  for (int i = 0; i < 12; ++i) AskBank();
  EXPECT_EQ(CodesTo(kPhone), 5) << "the bank's share of the hour (the policy's 5)";
  AskTelco();
  EXPECT_EQ(CodesTo(kPhone), 6) << "the telco's code still goes out";
  EXPECT_THAT(Metrics(), HasSubstr("ijazat_provider_limit_hits_total{provider=\"test-bank\",limit="
                                   "\"cnic_provider_hour\"} 7"))
      << "the operator sees which provider hits caps";
}

TEST_F(SmsLimitsTest, PerNumberHourlyCap_CountsEverySmsToTheNumber) {
  config_.sms.caps.per_number_per_hour = 4;
  Restart();
  // One family phone for two CNICs: two confirmations already count against the number.
  ASSERT_EQ(InboundSms(kPhone, kCnic).status, 200);
  ASSERT_EQ(InboundSms(kPhone, kOtherCnic).status, 200);
  AskBank(kCnic);
  AskTelco(kOtherCnic);
  EXPECT_EQ(CodesTo(kPhone), 2);
  const auto capped = AskBank(kCnic);
  EXPECT_EQ(capped.status, 202);
  EXPECT_EQ(CodesTo(kPhone), 2) << "the number has had its 4 SMS this hour";
  EXPECT_THAT(Metrics(), HasSubstr("limit=\"number_hour\"} 1"));
  clock_.Advance(61 * 60);
  AskTelco(kOtherCnic);
  EXPECT_EQ(CodesTo(kPhone), 3);
}

TEST_F(SmsLimitsTest, PerNumberDailyCap_HoldsAcrossHours) {
  config_.sms.caps.per_number_per_day = 4;  // a provider's share: 2
  Restart();
  ASSERT_EQ(InboundSms(kPhone, kCnic).status, 200);
  AskBank();
  EXPECT_EQ(CodesTo(kPhone), 1);  // sent before the clock moves past the code's life
  clock_.Advance(2 * 3600);
  AskTelco();
  EXPECT_EQ(CodesTo(kPhone), 2);
  clock_.Advance(2 * 3600);
  AskBank();
  EXPECT_EQ(CodesTo(kPhone), 3);
  clock_.Advance(2 * 3600);
  AskTelco();
  EXPECT_EQ(CodesTo(kPhone), 3) << "the number has had its 4 SMS today";
  EXPECT_THAT(Metrics(), HasSubstr("provider=\"test-telco\",limit=\"number_day\"} 1"));
}

TEST_F(SmsLimitsTest, OneProvider_GetsHalfOfTheNumbersDay) {
  config_.sms.caps.per_number_per_day = 4;
  Restart();
  ASSERT_EQ(InboundSms(kPhone, kCnic).status, 200);
  for (int i = 0; i < 3; ++i) {
    AskBank();
    EXPECT_EQ(CodesTo(kPhone), std::min(i + 1, 2));  // sent before the code's life is over
    clock_.Advance(2 * 3600);
  }
  EXPECT_THAT(Metrics(), HasSubstr("provider=\"test-bank\",limit=\"number_provider_day\"} 1"));
  AskTelco();
  EXPECT_EQ(CodesTo(kPhone), 3) << "the rest of the number's day is another provider's";
}

// Finding 7 of the provider-abuse review: fixed windows let a limit be doubled around their
// boundary. Each SMS leaves the hour an hour after it was sent, not at the top of the hour.
TEST_F(SmsLimitsTest, HourlyCap_Slides_AndCannotBeDoubledAtABoundary) {
  clock_.Advance(59 * 60);  // 00:59
  ASSERT_EQ(InboundSms(kPhone, kCnic).status, 200);
  for (int i = 0; i < 5; ++i) AskBank();
  EXPECT_EQ(CodesTo(kPhone), 5) << "the bank's 5 an hour";
  clock_.Advance(2 * 60);  // 01:01: a fixed hourly window would have started afresh
  for (int i = 0; i < 5; ++i) AskBank();
  EXPECT_EQ(CodesTo(kPhone), 5) << "still the same sliding hour";
  clock_.Advance(58 * 60 + 1);  // an hour and a second after the first five
  AskBank();
  EXPECT_EQ(CodesTo(kPhone), 6) << "the first codes have left the hour";
}

// Finding 6: a number got 20 replies in an hour and still a code past its cap of 10.
TEST_F(SmsLimitsTest, Replies_CountAgainstTheNumbersCaps_AndLeaveRoomForCodes) {
  ASSERT_EQ(InboundSms(kPhone, kCnic).status, 200);
  for (int i = 0; i < 15; ++i) ASSERT_EQ(InboundSms(kPhone, "HISTORY").status, 200);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(InboundSms(kPhone, "BLOCK x").status, 200);
  EXPECT_EQ(SentMessages().size(), 5u)
      << "the confirmation and 4 replies: replies get half of the number's 10 an hour";
  for (int i = 0; i < 3; ++i) AskBank();
  AskTelco();
  EXPECT_EQ(CodesTo(kPhone), 4) << "the codes still go: texts to 8009 cannot crowd them out";
  AskTelco();
  EXPECT_EQ(SentMessages().size(), 10u) << "the number's 10 an hour, replies and codes together";
  AskBank();
  EXPECT_EQ(CodesTo(kPhone), 5) << "no code past the number's cap";
  ASSERT_EQ(InboundSms(kPhone, kCnic).status, 200);
  EXPECT_EQ(SentMessages().size(), 10u) << "nor a confirmation";
  ASSERT_EQ(InboundSms("+923339876543", "hello").status, 200);
  EXPECT_EQ(SentMessages().size(), 11u) << "another number is not affected";
  clock_.Advance(3601);
  ASSERT_EQ(InboundSms(kPhone, "HISTORY").status, 200);
  EXPECT_EQ(SentMessages().size(), 12u) << "an hour after, the number is answered again";
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
