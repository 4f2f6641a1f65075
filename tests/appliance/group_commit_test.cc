// Group commit in the SQLite store: concurrent writers share one transaction and one COMMIT,
// and none of them is answered before the COMMIT that holds its changes has returned.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ijazat/common/bytes.h"
#include "model.h"
#include "store.h"
#include "support/result_matchers.h"
#include "support/temp_dir.h"

namespace ijazat::appliance {
namespace {

using ::testing::Each;
using ::testing::Gt;

constexpr Timestamp kNow = 1'700'000'000;

BlindIndex Index(std::string_view plain) {
  Bytes out = ToBytes(plain);
  for (auto& b : out) b = static_cast<std::uint8_t>(b ^ 0x33);
  return {out, 1};
}

Consent MakeConsent(const std::string& id, Timestamp expires_at = kNow + 300) {
  Consent c;
  c.id = id;
  c.provider_id = "bank";
  c.purpose = "account_opening";
  c.scopes = {"name"};
  c.cnic = Index("3520212345671");
  c.cnic_sealed = {ToBytes("sealed:" + id), 2};
  c.deliverable = true;
  c.state = ConsentState::kPending;
  c.created_at = kNow;
  c.expires_at = expires_at;
  c.max_attempts = 3;
  c.otp_key_version = 1;
  c.otp_digits = 6;
  c.policy_version = "1";
  c.policy_hash = "abc";
  c.updated_at = kNow;
  return c;
}

AuditEvent Audit(const std::string& event, const std::string& consent_id) {
  AuditEvent e;
  e.at = kNow;
  e.event = event;
  e.provider_id = "bank";
  e.consent_id = consent_id;
  e.detail = "{}";
  return e;
}

OutboxMessage MakeMessage(std::int64_t n) {
  OutboxMessage m;
  m.kind = OutboxKind::kHelp;
  m.recipient = {ToBytes("sealed-phone-" + std::to_string(n)), 2};
  m.params = "{}";
  m.created_at = kNow;
  m.next_attempt_at = kNow;
  return m;
}

// Counts rows through a connection of its own, as another process would see the file.
std::int64_t CountRows(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  std::int64_t value = -1;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      value = sqlite3_column_int64(stmt, 0);
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db);
  return value;
}

int Exec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open(path.c_str(), &db);
  if (rc == SQLITE_OK) rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
  sqlite3_close(db);
  return rc;
}

// Holds the store's commits at a gate: the test decides when each may go on.
class CommitGate {
 public:
  // Called by the store before each COMMIT.
  void BeforeCommit(std::size_t writers) {
    std::unique_lock lock(mutex_);
    batches_.push_back(writers);
    changed_.notify_all();
    changed_.wait(lock, [&] { return released_ >= batches_.size() || open_; });
  }
  // Waits until `count` commits have reached the gate.
  bool WaitForBatches(std::size_t count) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(20),
                             [&] { return batches_.size() >= count; });
  }
  void ReleaseOne() {
    const std::lock_guard lock(mutex_);
    ++released_;
    changed_.notify_all();
  }
  void Open() {
    const std::lock_guard lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }
  std::vector<std::size_t> batches() {
    const std::lock_guard lock(mutex_);
    return batches_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::size_t> batches_;
  std::size_t released_ = 0;
  bool open_ = false;
};

class GroupCommitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    GroupCommitOptions group;
    group.before_commit_for_test = [this](std::size_t writers) { gate_.BeforeCommit(writers); };
    auto opened = OpenSqliteStore({Path(), 5000}, group);
    ASSERT_THAT(opened, IsOk());
    store_ = std::move(opened).value();
  }
  void TearDown() override { gate_.Open(); }

  std::string Path() const { return (dir_.path() / "store.db").string(); }
  std::int64_t Consents() const { return CountRows(Path(), "SELECT COUNT(*) FROM consents"); }

  // Blocks the store's next commit on a first writer, then starts `writers` more, which queue
  // behind it; returns once they are all waiting.
  void StartBehindABlockedCommit(std::vector<std::function<void()>> writers) {
    first_ = std::thread([this] {
      EXPECT_THAT(
          store_->InsertConsent(MakeConsent("first"), Audit("consent.requested", "first"), {}),
          IsOk());
    });
    ASSERT_TRUE(gate_.WaitForBatches(1));
    for (auto& writer : writers) {
      threads_.emplace_back([this, w = std::move(writer)] {
        ++started_;
        w();
        ++answered_;
      });
    }
    // They queue behind the commit held at the gate; give them time to get there.
    while (started_.load() < static_cast<int>(threads_.size())) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  void JoinAll() {
    gate_.Open();
    if (first_.joinable()) first_.join();
    for (auto& thread : threads_) thread.join();
  }

  ijazat::testing::TempDir dir_;
  CommitGate gate_;
  std::unique_ptr<ConsentStore> store_;
  std::thread first_;
  std::vector<std::thread> threads_;
  std::atomic<int> started_{0};
  std::atomic<int> answered_{0};
};

TEST_F(GroupCommitTest, WritersQueuedBehindACommit_ShareTheNextOne_AndAreAnsweredOnlyAfterIt) {
  constexpr int kWriters = 8;
  std::vector<std::function<void()>> writers;
  std::atomic<int> ok{0};
  for (int i = 0; i < kWriters; ++i) {
    writers.emplace_back([this, i, &ok] {
      const std::string id = "w" + std::to_string(i);
      if (store_->InsertConsent(MakeConsent(id), Audit("consent.requested", id), {}).ok()) ++ok;
    });
  }
  StartBehindABlockedCommit(std::move(writers));
  EXPECT_EQ(answered_.load(), 0);
  gate_.ReleaseOne();  // the first writer's commit
  first_.join();
  ASSERT_TRUE(gate_.WaitForBatches(2));
  // The queued writers' bodies have run in one transaction, now held before its COMMIT: none of
  // them may have been answered, and no other connection sees their rows.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(answered_.load(), 0) << "a writer was answered before its commit";
  EXPECT_EQ(Consents(), 1);
  EXPECT_EQ(gate_.batches()[1], static_cast<std::size_t>(kWriters));
  JoinAll();
  EXPECT_EQ(ok.load(), kWriters);
  EXPECT_EQ(answered_.load(), kWriters);
  EXPECT_EQ(Consents(), 1 + kWriters);
  EXPECT_THAT(store_->VerifyAuditChain(), IsOk());
  EXPECT_EQ(CountRows(Path(), "SELECT COUNT(*) FROM audit"), 1 + kWriters);
}

TEST_F(GroupCommitTest, AFailingWriter_LeavesTheOthersInItsBatchIntact) {
  gate_.ReleaseOne();  // lets the next commit through
  ASSERT_THAT(store_->InsertConsent(MakeConsent("taken"), Audit("consent.requested", "taken"), {}),
              IsOk());
  gate_.ReleaseOne();
  ASSERT_THAT(store_->InsertConsent(MakeConsent("expiring", kNow + 10),
                                    Audit("consent.requested", "expiring"), {}),
              IsOk());
  std::atomic<int> ok{0};
  std::atomic<int> taken{0};
  std::atomic<int> expired{0};
  std::vector<std::function<void()>> writers;
  for (int i = 0; i < 4; ++i) {
    writers.emplace_back([this, i, &ok] {
      const std::string id = "ok" + std::to_string(i);
      if (store_->InsertConsent(MakeConsent(id), Audit("consent.requested", id), {}).ok()) ++ok;
    });
  }
  // Its id is taken: it fails and changes nothing.
  writers.emplace_back([this, &taken] {
    auto status = store_->InsertConsent(MakeConsent("taken"), Audit("consent.requested", "x"),
                                        {MakeMessage(1)});
    if (!status.ok() && status.error().code() == ErrorCode::kAlreadyExists) ++taken;
  });
  // Fails, but keeps its change (the consent is marked expired): committed with the others.
  writers.emplace_back([this, &expired] {
    Consent granted;
    granted.reference = "REF1";
    granted.expires_at = kNow + 3600;
    granted.max_uses = 1;
    auto result = store_->GrantConsent("expiring", granted, kNow + 20,
                                       Audit("consent.granted", "expiring"), {});
    if (!result.ok() && result.error().reason() == "consent_not_pending") ++expired;
  });
  StartBehindABlockedCommit(std::move(writers));
  JoinAll();
  EXPECT_EQ(ok.load(), 4);
  EXPECT_EQ(taken.load(), 1);
  EXPECT_EQ(expired.load(), 1);
  EXPECT_EQ(Consents(), 2 + 1 + 4);
  EXPECT_EQ(CountRows(Path(), "SELECT COUNT(*) FROM outbox"), 0);
  EXPECT_EQ(CountRows(Path(), "SELECT COUNT(*) FROM consents WHERE state = 'expired'"), 1);
  EXPECT_THAT(store_->VerifyAuditChain(), IsOk());
  // taken, expiring, first, 4 inserts, and the expiry of "expiring".
  EXPECT_EQ(CountRows(Path(), "SELECT COUNT(*) FROM audit"), 8);
}

TEST_F(GroupCommitTest, ACommitThatFails_FailsEveryWriterInIt_AndKeepsNothing) {
  // A deferred foreign key that one writer breaks: SQLite refuses the COMMIT itself.
  ASSERT_EQ(Exec(Path(),
                 "CREATE TABLE parent (id INTEGER PRIMARY KEY);"
                 "CREATE TABLE child (pid INTEGER REFERENCES parent (id) "
                 "DEFERRABLE INITIALLY DEFERRED);"
                 "CREATE TRIGGER poison AFTER INSERT ON consents WHEN NEW.id = 'poison' "
                 "BEGIN INSERT INTO child VALUES (42); END;"),
            SQLITE_OK);
  std::atomic<int> failed{0};
  std::vector<std::function<void()>> writers;
  for (const char* name : {"a", "poison", "b", "c"}) {
    writers.emplace_back([this, id = std::string(name), &failed] {
      if (!store_->InsertConsent(MakeConsent(id), Audit("consent.requested", id), {}).ok()) {
        ++failed;
      }
    });
  }
  StartBehindABlockedCommit(std::move(writers));
  JoinAll();
  EXPECT_EQ(failed.load(), 4) << "every writer of the refused commit is told";
  EXPECT_EQ(Consents(), 1);
  EXPECT_THAT(store_->VerifyAuditChain(), IsOk());
  EXPECT_THAT(store_->InsertConsent(MakeConsent("later"), Audit("consent.requested", "later"), {}),
              IsOk());
  EXPECT_EQ(Consents(), 2);
  EXPECT_THAT(store_->VerifyAuditChain(), IsOk());
}

TEST_F(GroupCommitTest, ManyConcurrentWriters_AllLand_InFewerCommits_WithTheChainIntact) {
  gate_.Open();
  constexpr int kThreads = 16;
  constexpr int kPerThread = 20;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string id = "c-" + std::to_string(t) + "-" + std::to_string(i);
        if (!store_->InsertConsent(MakeConsent(id), Audit("consent.requested", id), {}).ok()) {
          ++failures;
        }
        if (!store_->RecordFailedAttempt(id, kNow + 1, Audit("otp.failed", id)).ok()) ++failures;
        if (!store_->FindConsent(id).ok()) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(Consents(), kThreads * kPerThread);
  EXPECT_EQ(CountRows(Path(), "SELECT SUM(attempts) FROM consents"), kThreads * kPerThread);
  EXPECT_EQ(CountRows(Path(), "SELECT COUNT(*) FROM code_failures"), kThreads * kPerThread);
  EXPECT_EQ(CountRows(Path(), "SELECT consecutive FROM cnic_failures"), kThreads * kPerThread);
  EXPECT_THAT(store_->VerifyAuditChain(), IsOk());
  const auto batches = gate_.batches();
  EXPECT_LT(batches.size(), static_cast<std::size_t>(2 * kThreads * kPerThread))
      << "concurrent writers never shared a commit";
  EXPECT_THAT(batches, Each(Gt(0U)));
}

TEST_F(GroupCommitTest, UpdateMessages_AppliesAllOrNothing) {
  gate_.Open();
  ASSERT_THAT(store_->EnqueueMessages({MakeMessage(1), MakeMessage(2), MakeMessage(3)}), IsOk());
  auto due = store_->DueMessages(kNow, 10);
  ASSERT_THAT(due, IsOk());
  ASSERT_EQ(due->size(), 3U);
  const std::int64_t a = (*due)[0].id;
  const std::int64_t b = (*due)[1].id;
  EXPECT_THAT(store_->UpdateMessages({{a, OutboxStatus::kSent, 0, "gw-a", ""},
                                      {9999, OutboxStatus::kSent, 0, "gw-x", ""}}),
              StatusIs(ErrorCode::kNotFound));
  EXPECT_THAT(store_->DueMessages(kNow, 10), IsOkAndHolds(::testing::SizeIs(3)));
  ASSERT_THAT(store_->UpdateMessages({{a, OutboxStatus::kSent, 0, "gw-a", ""},
                                      {b, OutboxStatus::kQueued, kNow + 2, "", "busy"}}),
              IsOk());
  auto left = store_->DueMessages(kNow, 10);
  ASSERT_THAT(left, IsOk());
  ASSERT_EQ(left->size(), 1U);
  EXPECT_EQ((*left)[0].id, (*due)[2].id);
  auto sent = store_->FindMessageByGatewayId("gw-a");
  ASSERT_THAT(sent, IsOk());
  ASSERT_TRUE(sent->has_value());
  EXPECT_EQ((*sent)->status, OutboxStatus::kSent);
  EXPECT_EQ((*sent)->attempts, 1);
  auto retried = store_->DueMessages(kNow + 2, 10);
  ASSERT_THAT(retried, IsOk());
  ASSERT_EQ(retried->size(), 2U);
  EXPECT_EQ((*retried)[0].last_error, "busy");
}

}  // namespace
}  // namespace ijazat::appliance
