// A provider must not learn a citizen's state from how long its consent request takes
// (finding 1 of the provider-abuse review: a request that would send a code took about 0.7 ms
// longer). Proved structurally: one request for each kind of citizen makes the same PKCS#11
// calls and runs the same SQL statements, counted at the module and at SQLite.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "appliance_fixture.h"
#include "sqlite_db.h"

namespace ijazat::appliance::testing {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// Bound to each other by the subscriber records this suite imports.
struct Citizen {
  const char* cnic;
  const char* phone;
};
constexpr Citizen kEnrolled{"3520212340001", "+923001000001"};
constexpr Citizen kNotEnrolled{"3520212340002", "+923001000002"};
constexpr Citizen kLocked{"3520212340003", "+923001000003"};
constexpr Citizen kBlocking{"3520212340004", "+923001000004"};
constexpr Citizen kHeld{"3520212340005", "+923001000005"};
constexpr char kHeldNewPhone[] = "+923001000015";
constexpr Citizen kCapped{"3520212340006", "+923001000006"};
constexpr Citizen kSuspended{"3520212340007", "+923001000007"};
constexpr char kSuspendedNewPhone[] = "+923001000017";
constexpr Citizen kWarmUp{"3520212340008", "+923001000008"};

// What one request did: PKCS#11 calls by function, and SQL statements (text, sorted).
struct Work {
  std::map<std::string, int> hsm_calls;
  std::vector<std::string> statements;
};

class SameWorkTest : public ApplianceTest {
 protected:
  void SetUp() override {
    ApplianceTest::SetUp();
    if (HasFatalFailure()) return;
    sqlite::SetStatementObserver([this](std::string_view sql) {
      const std::lock_guard lock(mutex_);
      if (recording_) statements_.emplace_back(sql);
    });
    // Every connection from now on reports its statements.
    StopAppliance();
    MakeRoomForReplies();
    StartAppliance();
    if (HasFatalFailure()) return;
    std::string csv = "cnic,msisdn\n";
    for (const Citizen& c :
         {kEnrolled, kNotEnrolled, kLocked, kBlocking, kHeld, kCapped, kSuspended, kWarmUp}) {
      csv += std::string(c.cnic) + "," + c.phone + "\n";
    }
    csv += std::string(kHeld.cnic) + "," + kHeldNewPhone + "\n";
    ImportSubscribers(csv);
  }
  void TearDown() override {
    sqlite::SetStatementObserver(nullptr);
    ApplianceTest::TearDown();
  }

  HttpResult Ask(const char* cnic) {
    return Post("/v1/consents",
                {{"cnic", cnic}, {"purpose", "account-opening"}, {"scopes", {"name"}}});
  }
  void Enrol(const Citizen& c) { ASSERT_EQ(InboundSms(c.phone, c.cnic).status, 200); }
  int CodesTo(const std::string& phone) {
    int codes = 0;
    for (const SentSms& sms : SentMessages()) {
      if (sms.to == phone && sms.text.rfind("Ijazat code", 0) == 0) ++codes;
    }
    return codes;
  }

  // The work of one consent request for `cnic`; the outbox is drained before, not during.
  Work Measure(const char* cnic) {
    SentMessages();
    const auto before = faults_->AllCalls();
    {
      const std::lock_guard lock(mutex_);
      statements_.clear();
      recording_ = true;
    }
    const auto answer = Ask(cnic);
    Work work;
    {
      const std::lock_guard lock(mutex_);
      recording_ = false;
      work.statements = statements_;
    }
    EXPECT_EQ(answer.status, 202) << answer.body;
    for (const auto& [function, count] : faults_->AllCalls()) {
      const auto was = before.find(function);
      const int during = count - (was == before.end() ? 0 : was->second);
      if (during != 0) work.hsm_calls[function] = during;
    }
    std::sort(work.statements.begin(), work.statements.end());
    return work;
  }

  std::mutex mutex_;
  bool recording_ = false;
  std::vector<std::string> statements_;
};

TEST_F(SameWorkTest, ConsentRequest_MakesTheSameHsmCallsAndStatements_WhateverTheCitizensState) {
  // Each kind of citizen a provider might want to tell apart.
  Enrol(kWarmUp);
  Enrol(kEnrolled);
  Enrol(kLocked);
  ASSERT_EQ(InboundSms(kLocked.phone, "LOCK").status, 200);
  Enrol(kBlocking);
  ASSERT_EQ(InboundSms(kBlocking.phone, "BLOCK test-bank").status, 200);
  Enrol(kHeld);
  ASSERT_EQ(InboundSms(kHeldNewPhone, kHeld.cnic).status, 200);  // a number change: held
  Enrol(kCapped);
  for (int i = 0; i < 5; ++i) Ask(kCapped.cnic);  // the bank's hourly share of the citizen
  Enrol(kSuspended);
  // The authority gives the citizen another number: the next code finds the enrolled one
  // unbound, and the enrolment is suspended.
  ImportSubscribers(std::string("cnic,msisdn\n") + kSuspended.cnic + "," + kSuspendedNewPhone +
                    "\n");
  Ask(kSuspended.cnic);
  ASSERT_EQ(CodesTo(kCapped.phone), 5) << "the capped citizen had the bank's five codes";
  ASSERT_EQ(CodesTo(kSuspended.phone), 0) << "the unbound number got no code";
  // Sessions open, statements prepared, caches warm: the first request pays for those.
  for (int i = 0; i < 3; ++i) Ask(kWarmUp.cnic);

  const Work enrolled = Measure(kEnrolled.cnic);
  ASSERT_THAT(enrolled.hsm_calls, Not(IsEmpty())) << "the counters see the module";
  ASSERT_THAT(enrolled.statements, Contains(HasSubstr("INSERT INTO consents")))
      << "the observer sees the store";
  ASSERT_THAT(enrolled.statements, Contains(HasSubstr("INSERT INTO outbox"))) << "a code is queued";
  const std::map<std::string, const Citizen*> classes = {{"not enrolled", &kNotEnrolled},
                                                         {"locked", &kLocked},
                                                         {"blocking the provider", &kBlocking},
                                                         {"in a number-change hold", &kHeld},
                                                         {"capped", &kCapped},
                                                         {"suspended", &kSuspended},
                                                         {"enrolled, again", &kEnrolled}};
  for (const auto& [name, citizen] : classes) {
    const Work work = Measure(citizen->cnic);
    EXPECT_EQ(work.hsm_calls, enrolled.hsm_calls) << "PKCS#11 calls differ for a citizen " << name;
    EXPECT_EQ(work.statements, enrolled.statements)
        << "SQL statements differ for a citizen " << name;
  }
  // The dispatcher decided apart from the requests: codes went only where they may.
  EXPECT_EQ(CodesTo(kEnrolled.phone), 2);
  for (const Citizen& c : {kNotEnrolled, kLocked, kBlocking, kHeld, kSuspended}) {
    EXPECT_EQ(CodesTo(c.phone), 0) << c.cnic;
  }
  EXPECT_EQ(CodesTo(kHeldNewPhone), 0);
  EXPECT_EQ(CodesTo(kCapped.phone), 5);
}

}  // namespace
}  // namespace ijazat::appliance::testing
