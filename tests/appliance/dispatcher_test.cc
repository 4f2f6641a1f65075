// The outbox dispatcher's passes: one sink write and fsync per batch, single sends spread over
// several threads, at-most-once messages claimed before the hand-over, codes that expire during
// a pass dropped, failed sends retried with backoff. Each test drives a dispatcher of its own
// over the fixture appliance's store and HSM.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "appliance_fixture.h"
#include "citizen_crypto.h"
#include "ijazat/hsm/pkcs11_hsm.h"
#include "sms.h"
#include "store.h"
#include "support/result_matchers.h"

namespace ijazat::appliance::testing {
namespace {

using ::testing::SizeIs;

// Hands messages over one at a time, slowly, and records how many were in flight at once.
class SlowSender final : public SmsSender {
 public:
  explicit SlowSender(std::chrono::milliseconds delay, bool available = true)
      : delay_(delay), available_(available) {}
  Result<std::string> Send(std::int64_t message_id, const std::string& /*to*/,
                           const std::string& /*text*/) override {
    const int now = ++in_flight_;
    {
      const std::lock_guard lock(mutex_);
      max_in_flight_ = std::max(max_in_flight_, now);
      sent_.push_back(message_id);
    }
    std::this_thread::sleep_for(delay_);
    --in_flight_;
    if (!available_) {
      return Error(ErrorCode::kUnavailable, "gateway down", "sms_unavailable");
    }
    return "gw-" + std::to_string(message_id);
  }
  int max_in_flight() {
    const std::lock_guard lock(mutex_);
    return max_in_flight_;
  }
  std::size_t sent() {
    const std::lock_guard lock(mutex_);
    return sent_.size();
  }

 private:
  std::chrono::milliseconds delay_;
  bool available_;
  std::atomic<int> in_flight_{0};
  std::mutex mutex_;
  int max_in_flight_ = 0;
  std::vector<std::int64_t> sent_;
};

// Looks at the store while a message is being handed over.
class ProbeSender final : public SmsSender {
 public:
  explicit ProbeSender(ConsentStore& store) : store_(store) {}
  Result<std::string> Send(std::int64_t message_id, const std::string& /*to*/,
                           const std::string& text) override {
    const bool is_code = text.find("Ijazat code ") != std::string::npos;
    auto claimed = store_.FindMessageByGatewayId("claimed");
    const bool recorded = claimed.ok() && claimed->has_value() && (*claimed)->id == message_id &&
                          (*claimed)->status == OutboxStatus::kSent;
    const std::lock_guard lock(mutex_);
    (is_code ? code_claimed_before_send : other_claimed_before_send) = recorded;
    ++sends;
    return std::to_string(message_id);
  }
  std::mutex mutex_;
  bool code_claimed_before_send = false;
  bool other_claimed_before_send = false;
  int sends = 0;

 private:
  ConsentStore& store_;
};

// A clock that reads `start` for its first `calls` readings and `later` after.
class SteppingClock final : public Clock {
 public:
  SteppingClock(Timestamp start, int calls, Timestamp later)
      : start_(start), calls_(calls), later_(later) {}
  Timestamp Now() const override { return readings_++ < calls_ ? start_ : later_; }

 private:
  Timestamp start_;
  int calls_;
  Timestamp later_;
  mutable std::atomic<int> readings_{0};
};

class DispatcherTest : public ApplianceTest {
 protected:
  void SetUp() override {
    ApplianceTest::SetUp();
    crypto_ = std::make_unique<CitizenCrypto>(appliance_->hsm());
  }

  // Queues `count` replies (at-least-once messages) to distinct numbers.
  void QueueReplies(int count) {
    std::vector<OutboxMessage> messages;
    for (int i = 0; i < count; ++i) {
      char phone[32];
      std::snprintf(phone, sizeof phone, "+92333%07d", i);
      OutboxMessage m;
      m.kind = OutboxKind::kReply;
      auto sealed = crypto_->SealPhone(phone, BlindIndex{});
      ASSERT_THAT(sealed, IsOk());
      m.recipient = *sealed;
      m.params = nlohmann::json{{"text", "reply " + std::to_string(i)}}.dump();
      m.created_at = clock_.Now();
      m.next_attempt_at = m.created_at;
      messages.push_back(std::move(m));
    }
    ASSERT_THAT(appliance_->store().EnqueueMessages(messages), IsOk());
  }

  int Count(OutboxStatus status) {
    auto counts = appliance_->store().CountMessagesByStatus();
    EXPECT_THAT(counts, IsOk());
    if (!counts.ok()) return -1;
    for (const auto& [s, n] : *counts) {
      if (s == status) return n;
    }
    return 0;
  }

  // Enrols kPhone (its confirmation sent by the fixture's own dispatcher) and asks for a
  // consent: its code is then the only queued message.
  void QueueOneCode() {
    InboundSms(kPhone, kCnic);
    SentMessages();
    const auto created = Post(
        "/v1/consents", {{"cnic", kCnic}, {"purpose", "account-opening"}, {"scopes", {"name"}}});
    ASSERT_EQ(created.status, 202) << created.body;
    ASSERT_EQ(Count(OutboxStatus::kQueued), 1);
  }

  std::unique_ptr<CitizenCrypto> crypto_;
};

TEST_F(DispatcherTest, FileSink_GetsAWholePassInOneWriteAndOneFsync) {
  QueueReplies(40);
  const std::string path = (dir_ / "batch-sink.jsonl").string();
  FileSmsSender sink(path, clock_);
  OutboxDispatcher dispatcher(appliance_->store(), *crypto_, sink, SmsTemplates(), clock_,
                              DispatcherOptions{16, 4});
  EXPECT_THAT(dispatcher.RunOnce(), IsOkAndHolds(16));
  EXPECT_EQ(sink.syncs(), 1U);
  EXPECT_EQ(Count(OutboxStatus::kSent), 16);
  EXPECT_THAT(dispatcher.RunOnce(), IsOkAndHolds(16));
  EXPECT_THAT(dispatcher.RunOnce(), IsOkAndHolds(8));
  EXPECT_THAT(dispatcher.RunOnce(), IsOkAndHolds(0));
  EXPECT_EQ(sink.syncs(), 3U);
  EXPECT_EQ(Count(OutboxStatus::kSent), 40);
  EXPECT_EQ(Count(OutboxStatus::kQueued), 0);
  EXPECT_EQ(dispatcher.metrics().sent.load(), 40U);
  EXPECT_EQ(dispatcher.metrics().batches.load(), 3U);
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_THAT(lines, SizeIs(40));
  EXPECT_NE(lines.front().find("reply 0"), std::string::npos);
}

TEST_F(DispatcherTest, SingleSends_RunOnSeveralThreadsAtOnce) {
  QueueReplies(8);
  SlowSender sender(std::chrono::milliseconds(150));
  OutboxDispatcher dispatcher(appliance_->store(), *crypto_, sender, SmsTemplates(), clock_,
                              DispatcherOptions{64, 4});
  EXPECT_THAT(dispatcher.RunOnce(), IsOkAndHolds(8));
  EXPECT_EQ(sender.sent(), 8U);
  EXPECT_GE(sender.max_in_flight(), 2) << "the sends of a pass ran one after the other";
  EXPECT_LE(sender.max_in_flight(), 4);
  EXPECT_EQ(Count(OutboxStatus::kSent), 8);
}

TEST_F(DispatcherTest, OneThread_SendsOneAtATime) {
  QueueReplies(4);
  SlowSender sender(std::chrono::milliseconds(20));
  OutboxDispatcher dispatcher(appliance_->store(), *crypto_, sender, SmsTemplates(), clock_,
                              DispatcherOptions{64, 1});
  EXPECT_THAT(dispatcher.RunOnce(), IsOkAndHolds(4));
  EXPECT_EQ(sender.max_in_flight(), 1);
  EXPECT_EQ(Count(OutboxStatus::kSent), 4);
}

TEST_F(DispatcherTest, ACode_IsRecordedSentBeforeItIsHandedOver_OtherMessagesAfter) {
  QueueOneCode();
  QueueReplies(1);
  ProbeSender probe(appliance_->store());
  OutboxDispatcher dispatcher(appliance_->store(), *crypto_, probe, SmsTemplates(), clock_,
                              DispatcherOptions{64, 2});
  EXPECT_THAT(dispatcher.RunOnce(), IsOkAndHolds(2));
  const std::lock_guard lock(probe.mutex_);
  EXPECT_EQ(probe.sends, 2);
  EXPECT_TRUE(probe.code_claimed_before_send) << "a code must be claimed before the hand-over";
  EXPECT_FALSE(probe.other_claimed_before_send);
  EXPECT_EQ(Count(OutboxStatus::kSent), 2 + 1);  // and the enrolment confirmation
}

TEST_F(DispatcherTest, ACodeThatExpiresDuringThePass_IsDroppedNotSent) {
  QueueOneCode();
  // Readings: the pass's start and the code's rendering see the code valid; the check just
  // before the hand-over sees it expired.
  const Timestamp now = clock_.Now();
  SteppingClock clock(now, 2, now + 3600);
  SlowSender sender(std::chrono::milliseconds(0));
  OutboxDispatcher dispatcher(appliance_->store(), *crypto_, sender, SmsTemplates(), clock,
                              DispatcherOptions{64, 2});
  EXPECT_THAT(dispatcher.RunOnce(), IsOkAndHolds(1));
  EXPECT_EQ(sender.sent(), 0U);
  EXPECT_EQ(Count(OutboxStatus::kDropped), 1);
  EXPECT_EQ(Count(OutboxStatus::kQueued), 0);
  EXPECT_EQ(dispatcher.metrics().dropped.load(), 1U);
}

TEST_F(DispatcherTest, FailedSends_AreRetriedWithBackoff) {
  QueueReplies(5);
  SlowSender down(std::chrono::milliseconds(0), /*available=*/false);
  OutboxDispatcher dispatcher(appliance_->store(), *crypto_, down, SmsTemplates(), clock_,
                              DispatcherOptions{64, 3});
  EXPECT_THAT(dispatcher.RunOnce(), IsOkAndHolds(5));
  EXPECT_EQ(dispatcher.metrics().retried.load(), 5U);
  EXPECT_EQ(Count(OutboxStatus::kQueued), 5);
  EXPECT_THAT(dispatcher.RunOnce(), IsOkAndHolds(0)) << "not due again before 2 s";
  clock_.Advance(2);
  SlowSender up(std::chrono::milliseconds(0));
  OutboxDispatcher later(appliance_->store(), *crypto_, up, SmsTemplates(), clock_,
                         DispatcherOptions{64, 3});
  EXPECT_THAT(later.RunOnce(), IsOkAndHolds(5));
  EXPECT_EQ(up.sent(), 5U);
  EXPECT_EQ(Count(OutboxStatus::kSent), 5);
  auto due = appliance_->store().DueMessages(clock_.Now() + 3600, 10);
  ASSERT_THAT(due, IsOk());
  EXPECT_THAT(*due, SizeIs(0));
}

}  // namespace
}  // namespace ijazat::appliance::testing
