// Citizens' commands racing each other through the webhook. Every change of a citizen's state is
// a write conditional on the revision read (ConsentStore::SaveEnrolment), retried on a fresh read
// when another command got there first, so no command's effect is lost: a LOCK the citizen was
// told of stands, and a stale write never restores an old number.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "appliance_fixture.h"
#include "citizen_crypto.h"
#include "ijazat/hsm/pkcs11_hsm.h"
#include "store.h"

namespace ijazat::appliance::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kSecondPhone[] = "+923007654321";  // bound to kCnic too (a second SIM)

class CitizenRacesTest : public ApplianceTest {
 protected:
  void SetUp() override {
    ApplianceTest::SetUp();
    if (HasFatalFailure()) return;
    RestartWithRoomForReplies();
    ImportSubscribers(std::string("cnic,msisdn\n") + kCnic + "," + kPhone + "\n" + kCnic + "," +
                      kSecondPhone + "\n");
    ASSERT_EQ(InboundSms(kPhone, kCnic).status, 200);
    ASSERT_TRUE(Current().has_value()) << "not enrolled";
  }

  std::optional<Enrolment> Current() {
    CitizenCrypto crypto(appliance_->hsm());
    const auto indexes = crypto.CnicIndexes(kCnic);
    EXPECT_TRUE(indexes.ok());
    if (!indexes.ok()) return std::nullopt;
    const auto found = appliance_->store().FindEnrolment(indexes->front());
    EXPECT_TRUE(found.ok());
    return found.ok() ? *found : std::nullopt;
  }

  bool IsNumber(const BlindIndex& index, const std::string& e164) {
    CitizenCrypto crypto(appliance_->hsm());
    const auto phone = crypto.PhoneIndex(e164);
    EXPECT_TRUE(phone.ok());
    return phone.ok() && phone->value == index.value;
  }

  // The citizen-state events of the audit trail, oldest first.
  std::vector<std::string> StateEvents() {
    std::vector<std::string> events;
    const auto tail = appliance_->store().AuditTail(10000);
    EXPECT_TRUE(tail.ok());
    if (!tail.ok()) return events;
    for (const AuditEvent& event : *tail) {
      if (event.event == "citizen.lock" || event.event == "citizen.unlock" ||
          event.event == "enrolment.number_changed") {
        events.push_back(event.event);
      }
    }
    return events;
  }
};

// A number change reads the enrolment, then spends HSM time sealing the new number before it
// writes; a LOCK from the enrolled number lands in that window and is written first. The change's
// write, made from a read that saw the CNIC unlocked, must not unlock it.
TEST_F(CitizenRacesTest, LockInsideANumberChange_StaysLocked_AndTheChangeStandsToo) {
  faults_->Delay("C_Encrypt", std::chrono::milliseconds(400));
  std::atomic<int> change_status{0};
  std::thread change([&] { change_status = InboundSms(kSecondPhone, kCnic).status; });
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  const int lock_status = InboundSms(kPhone, "LOCK").status;
  change.join();
  faults_->Clear();
  ASSERT_EQ(lock_status, 200);
  ASSERT_EQ(change_status.load(), 200);

  const auto after = Current();
  ASSERT_TRUE(after.has_value());
  EXPECT_TRUE(after->locked) << "the LOCK the citizen was told of was overwritten";
  const auto events = StateEvents();
  ASSERT_FALSE(events.empty());
  ASSERT_THAT(events, ::testing::Contains("citizen.lock"));
  ASSERT_THAT(events, ::testing::Contains("enrolment.number_changed"));
  if (events.back() == "enrolment.number_changed") {
    // LOCK first, then the change (on a fresh read): the new number holds a locked CNIC, on
    // hold, and the old number may still LOCK it back.
    EXPECT_TRUE(IsNumber(after->phone, kSecondPhone));
    EXPECT_TRUE(IsNumber(after->previous_phone, kPhone));
  } else {
    // The change first, then the old number's LOCK, which wins: back to the old number.
    EXPECT_TRUE(IsNumber(after->phone, kPhone));
    EXPECT_TRUE(IsNumber(after->previous_phone, kSecondPhone));
  }
  EXPECT_GT(after->hold_until, clock_.Now()) << "a change, either way, is on hold";
  const auto sent = SentMessages();
  bool told_locked = false;
  for (const SentSms& sms : sent) {
    told_locked = told_locked || (sms.to == kPhone && sms.text.find("locked") != std::string::npos);
  }
  EXPECT_TRUE(told_locked) << "the old number was told its CNIC is locked";
}

// Many LOCKs and UNLOCKs from the citizen's number at once. Each one that changes the state is
// written against the state it read, so the audit trail alternates (a LOCK never recorded on top
// of a lock it did not see), and the CNIC ends as the last recorded command left it.
TEST_F(CitizenRacesTest, LocksAndUnlocksAtOnce_AlternateInTheAuditTrail_AndTheLastOneStands) {
  constexpr int kThreads = 6;
  constexpr int kRounds = 8;
  std::atomic<int> failures{0};
  for (int round = 0; round < kRounds; ++round) {
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        while (!go.load()) std::this_thread::yield();
        if (InboundSms(kPhone, t % 2 == 0 ? "LOCK" : "UNLOCK").status != 200) ++failures;
      });
    }
    go = true;
    for (std::thread& thread : threads) thread.join();
  }
  EXPECT_EQ(failures.load(), 0);

  const auto events = StateEvents();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.front(), "citizen.lock") << "the first change locks an unlocked CNIC";
  for (std::size_t i = 1; i < events.size(); ++i) {
    EXPECT_NE(events[i], events[i - 1])
        << "event " << i << " of " << events.size() << " repeats a change the state already had";
  }
  const auto after = Current();
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->locked, events.back() == "citizen.lock");
  // And the provider side agrees: a locked CNIC gets no code.
  const auto before = SentMessages().size();
  const auto created =
      Post("/v1/consents", {{"cnic", kCnic}, {"purpose", "account-opening"}, {"scopes", {"name"}}});
  ASSERT_EQ(created.status, 202) << created.body;
  const auto sent = SentMessages();
  bool code = false;
  for (std::size_t i = before; i < sent.size(); ++i) {
    code = code || sent[i].text.find("Ijazat code") != std::string::npos;
  }
  EXPECT_EQ(code, !after->locked);
}

}  // namespace
}  // namespace ijazat::appliance::testing
