#include "ijazat/policy/rate_limiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "policy/policy_test_util.h"

namespace ijazat::policy {
namespace {

using namespace std::chrono_literals;
using testing::FakeClock;

Provider MakeProvider(std::string id, std::uint32_t per_minute, std::uint32_t burst) {
  Provider provider;
  provider.id = std::move(id);
  provider.rate_limit = {per_minute, burst};
  return provider;
}

int TakeAll(ProviderRateLimiter& limiter, const Provider& provider, int attempts) {
  int allowed = 0;
  for (int i = 0; i < attempts; ++i) allowed += limiter.TryAcquire(provider).allowed ? 1 : 0;
  return allowed;
}

TEST(PolicyRateLimiter, AllowsBurstThenDeniesWithRetryAfter) {
  FakeClock clock;
  ProviderRateLimiter limiter(clock);
  const Provider provider = MakeProvider("bank", 60, 5);  // one per second, five at once
  EXPECT_EQ(TakeAll(limiter, provider, 5), 5);
  const RateDecision denied = limiter.TryAcquire(provider);
  EXPECT_FALSE(denied.allowed);
  EXPECT_EQ(denied.retry_after, 1s);
  clock.Advance(400ms);
  EXPECT_EQ(limiter.TryAcquire(provider).retry_after, 600ms);
}

TEST(PolicyRateLimiter, RefillsAtTheConfiguredRate) {
  FakeClock clock;
  ProviderRateLimiter limiter(clock);
  const Provider provider = MakeProvider("bank", 120, 1);  // one every 500 ms
  EXPECT_TRUE(limiter.TryAcquire(provider).allowed);
  EXPECT_FALSE(limiter.TryAcquire(provider).allowed);
  clock.Advance(499ms);
  EXPECT_FALSE(limiter.TryAcquire(provider).allowed);
  clock.Advance(1ms);
  EXPECT_TRUE(limiter.TryAcquire(provider).allowed);
  // Over one simulated minute, at most rate + burst requests get through.
  int allowed = 0;
  for (int i = 0; i < 6000; ++i) {
    clock.Advance(10ms);
    allowed += limiter.TryAcquire(provider).allowed ? 1 : 0;
  }
  EXPECT_EQ(allowed, 120);
}

TEST(PolicyRateLimiter, IdleTimeNeverBuildsMoreThanTheBurst) {
  FakeClock clock;
  ProviderRateLimiter limiter(clock);
  const Provider provider = MakeProvider("bank", 600, 3);
  EXPECT_EQ(TakeAll(limiter, provider, 10), 3);
  clock.Advance(24h);
  EXPECT_EQ(TakeAll(limiter, provider, 10), 3);
}

TEST(PolicyRateLimiter, ProvidersHaveSeparateBuckets) {
  FakeClock clock;
  ProviderRateLimiter limiter(clock);
  const Provider a = MakeProvider("a", 60, 2);
  const Provider b = MakeProvider("b", 60, 2);
  EXPECT_EQ(TakeAll(limiter, a, 5), 2);
  EXPECT_EQ(TakeAll(limiter, b, 5), 2);
}

TEST(PolicyRateLimiter, ReloadedRateAppliesWithoutResettingTheBucket) {
  FakeClock clock;
  ProviderRateLimiter limiter(clock);
  EXPECT_EQ(TakeAll(limiter, MakeProvider("bank", 60, 2), 5), 2);
  // A larger burst after a reload does not hand out a fresh allowance for what was spent.
  const Provider reloaded = MakeProvider("bank", 60, 4);
  EXPECT_EQ(TakeAll(limiter, reloaded, 10), 2);
  clock.Advance(1s);
  EXPECT_EQ(TakeAll(limiter, reloaded, 10), 1);
}

TEST(PolicyRateLimiter, ClockSteppingBackNeverGrantsExtraRequests) {
  using Time = std::chrono::steady_clock::time_point;
  TokenBucket bucket({60, 2}, Time(100s));
  EXPECT_TRUE(bucket.TryTake(Time(100s)).allowed);
  // A thread that read the clock a moment earlier is judged as if it arrived late.
  EXPECT_FALSE(bucket.TryTake(Time(99s)).allowed);
  EXPECT_TRUE(bucket.TryTake(Time(100s)).allowed);
  EXPECT_FALSE(bucket.TryTake(Time(100s)).allowed);
}

TEST(PolicyRateLimiter, ConcurrentCallersNeverExceedTheBurst) {
  FakeClock clock;  // frozen: only the burst may pass
  ProviderRateLimiter limiter(clock);
  const Provider provider = MakeProvider("bank", 60, 100);
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  threads.reserve(8);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i) {
        if (limiter.TryAcquire(provider).allowed) allowed.fetch_add(1);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(allowed.load(), 100);
}

TEST(PolicyRateLimiter, ConcurrentCallersWithAMovingClock) {
  FakeClock clock;
  ProviderRateLimiter limiter(clock);
  const Provider provider = MakeProvider("bank", 6000, 10);  // one per 10 ms
  constexpr int kWorkers = 4;
  std::atomic<int> allowed{0};
  std::atomic<int> started{0};
  std::atomic<bool> done{false};
  std::vector<std::thread> threads;
  threads.reserve(kWorkers);
  for (int t = 0; t < kWorkers; ++t) {
    threads.emplace_back([&] {
      started.fetch_add(1);
      do {
        if (limiter.TryAcquire(provider).allowed) allowed.fetch_add(1);
      } while (!done.load());
    });
  }
  while (started.load() < kWorkers) std::this_thread::yield();
  for (int i = 0; i < 1000; ++i) {
    clock.Advance(1ms);
    std::this_thread::yield();
  }
  done = true;
  for (auto& thread : threads) thread.join();
  // One simulated second: at most the burst of 10 plus the 100 earned.
  EXPECT_LE(allowed.load(), 110);
  EXPECT_GE(allowed.load(), kWorkers);
}

TEST(PolicyRateLimiter, SteadyClockMoves) {
  const auto first = SteadyClock().Now();
  EXPECT_LE(first, SteadyClock().Now());
}

}  // namespace
}  // namespace ijazat::policy
