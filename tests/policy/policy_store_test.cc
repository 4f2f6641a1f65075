#include "ijazat/policy/policy_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <thread>
#include <vector>

#include "policy/policy_test_util.h"
#include "support/result_matchers.h"

namespace ijazat::policy {
namespace {

using ::testing::HasSubstr;
using testing::kMinimalPolicy;
using testing::ReplaceOnce;
using ::testing::SizeIs;

// Two valid policies that differ in a way a reader can check for consistency: policy "a"
// has provider alpha with purpose pa; policy "b" has provider beta with purpose pb.
std::string PolicyNamed(const std::string& name) {
  std::string text = ReplaceOnce(std::string(kMinimalPolicy), "version: 1", "version: " + name);
  text = ReplaceOnce(text, "id: demo-bank", "id: provider-" + name);
  return ReplaceOnce(text, "id: account-opening", "id: purpose-" + name);
}

constexpr std::string_view kInvalidPolicy = "version: bad\nproviders:\n  - id: Nope\n";

// Writes `text` to `path` atomically (write then rename), as deployment tools should.
void Install(const ijazat::testing::TempDir& dir, const std::filesystem::path& path,
             std::string_view text) {
  const auto staged = dir.WriteFile("staged.yaml", text);
  std::filesystem::rename(staged, path);
}

TEST(PolicyStore, OpenLoadsTheFirstPolicy) {
  const auto store = PolicyStore::Open(testing::ExamplePolicyPath());
  ASSERT_THAT(store, IsOk());
  EXPECT_EQ((*store)->Current()->version(), "2025.06.1");
  EXPECT_EQ((*store)->generation(), 0u);
}

TEST(PolicyStore, OpenFailsWithEveryProblem) {
  const ijazat::testing::TempDir dir;
  std::vector<Diagnostic> diagnostics;
  const auto store =
      PolicyStore::Open(dir.WriteFile("p.yaml", kInvalidPolicy), PolicyLoader(), &diagnostics);
  EXPECT_THAT(store, HasReason("policy_invalid"));
  EXPECT_THAT(diagnostics, SizeIs(::testing::Ge(2u)));
}

TEST(PolicyStore, ReloadSwapsToTheNewPolicy) {
  const ijazat::testing::TempDir dir;
  const auto path = dir.WriteFile("policy.yaml", PolicyNamed("a"));
  auto store = PolicyStore::Open(path);
  ASSERT_THAT(store, IsOk());
  const auto old_snapshot = (*store)->Current();
  Install(dir, path, PolicyNamed("b"));
  const auto identity = (*store)->Reload(path);
  ASSERT_THAT(identity, IsOk());
  EXPECT_EQ(identity->version, "b");
  EXPECT_EQ((*store)->Current()->identity(), *identity);
  EXPECT_EQ((*store)->generation(), 1u);
  // A request that started before the reload still sees the policy it started with.
  EXPECT_EQ(old_snapshot->version(), "a");
  EXPECT_NE(old_snapshot->FindProvider("provider-a"), nullptr);
}

TEST(PolicyStore, InvalidReloadKeepsTheOldPolicyAndReportsEveryError) {
  const ijazat::testing::TempDir dir;
  const auto path = dir.WriteFile("policy.yaml", PolicyNamed("a"));
  auto store = PolicyStore::Open(path);
  ASSERT_THAT(store, IsOk());
  const auto before = (*store)->Current();
  Install(dir, path, kInvalidPolicy);
  std::vector<Diagnostic> diagnostics;
  const auto result = (*store)->Reload(path, &diagnostics);
  EXPECT_THAT(result, HasReason("policy_invalid"));
  EXPECT_THAT(result.error().message(), HasSubstr("providers[0].id"));
  EXPECT_THAT(result.error().message(), HasSubstr("missing required key 'display_name'"));
  EXPECT_THAT(diagnostics, SizeIs(::testing::Ge(3u)));
  EXPECT_EQ((*store)->Current(), before);
  EXPECT_EQ((*store)->generation(), 0u);
}

TEST(PolicyStore, ReloadOfMissingFileKeepsTheOldPolicy) {
  const ijazat::testing::TempDir dir;
  const auto path = dir.WriteFile("policy.yaml", PolicyNamed("a"));
  auto store = PolicyStore::Open(path);
  ASSERT_THAT(store, IsOk());
  std::filesystem::remove(path);
  EXPECT_THAT((*store)->Reload(path), HasReason("policy_unreadable"));
  EXPECT_EQ((*store)->Current()->version(), "a");
}

// Readers take snapshots continuously while a writer alternates between two valid policies
// and an invalid one. Every snapshot must be one whole policy, never a mix, and never the
// invalid one. Run under ThreadSanitizer (the tsan preset) to check the synchronisation.
TEST(PolicyStore, ReloadUnderConcurrentReadersIsAtomic) {
  const ijazat::testing::TempDir dir;
  const auto path = dir.WriteFile("policy.yaml", PolicyNamed("a"));
  auto opened = PolicyStore::Open(path);
  ASSERT_THAT(opened, IsOk());
  PolicyStore& store = **opened;

  std::atomic<bool> stop{false};
  std::atomic<long> reads{0};
  std::atomic<long> inconsistent{0};
  const auto now = std::chrono::system_clock::now();
  const std::vector<std::string> scopes = {"name"};
  std::vector<std::thread> readers;
  readers.reserve(4);
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed)) {
        const std::shared_ptr<const PolicySet> snapshot = store.Current();
        const std::string& name = snapshot->version();
        const bool whole =
            (name == "a" || name == "b") && snapshot->providers().size() == 1 &&
            snapshot->Decide("provider-" + name, "purpose-" + name, scopes, now).allowed();
        if (!whole) inconsistent.fetch_add(1);
        reads.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  int successful = 0;
  for (int i = 0; i < 150; ++i) {
    const bool invalid_turn = i % 3 == 2;
    const std::string text =
        invalid_turn ? std::string(kInvalidPolicy) : PolicyNamed(i % 2 ? "b" : "a");
    Install(dir, path, text);
    const auto result = store.Reload(path);
    EXPECT_EQ(result.ok(), !invalid_turn);
    if (result.ok()) ++successful;
  }
  stop = true;
  for (auto& reader : readers) reader.join();
  EXPECT_EQ(inconsistent.load(), 0);
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(store.generation(), static_cast<std::uint64_t>(successful));
}

TEST(PolicyStore, ConcurrentReloadsAreSerialised) {
  const ijazat::testing::TempDir dir;
  const auto path_a = dir.WriteFile("a.yaml", PolicyNamed("a"));
  const auto path_b = dir.WriteFile("b.yaml", PolicyNamed("b"));
  auto opened = PolicyStore::Open(path_a);
  ASSERT_THAT(opened, IsOk());
  PolicyStore& store = **opened;
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) EXPECT_THAT(store.Reload(t % 2 ? path_a : path_b), IsOk());
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(store.generation(), 80u);
  const std::string& version = store.Current()->version();
  EXPECT_TRUE(version == "a" || version == "b");
}

}  // namespace
}  // namespace ijazat::policy
