// Per-provider rate limiting: a token bucket per provider, driven by an injected clock.
//
// The bucket is computed as GCRA ("virtual scheduling"), which is exactly a token bucket of
// capacity `burst` refilled at `requests_per_minute`, but keeps one time point instead of a
// fractional token count: integer nanoseconds, no drift, no floating point.
//
// These counters are per process. When several appliances share state (the scale-out
// roadmap), the store's counters are the authority and this limiter only sheds load early.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

#include "ijazat/policy/policy_set.h"

namespace ijazat::policy {

// A monotonic time source. Implementations must be thread safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::steady_clock::time_point Now() const = 0;
};

// std::chrono::steady_clock. The returned reference is to a process-wide immutable object.
const Clock& SteadyClock();

struct RateDecision {
  bool allowed = false;
  // When denied, how long until one request would be allowed (for Retry-After); zero when
  // allowed.
  std::chrono::nanoseconds retry_after{0};
};

// One bucket. Not thread safe: ProviderRateLimiter guards its buckets.
class TokenBucket {
 public:
  // Starts full: `burst` requests are allowed at once.
  TokenBucket(RateLimit limit, std::chrono::steady_clock::time_point now);

  RateDecision TryTake(std::chrono::steady_clock::time_point now);

  // Applies a new rate after a policy reload. The bucket keeps what has been spent, so a
  // reload is not a way to reset a provider's allowance.
  void Reconfigure(RateLimit limit);

  const RateLimit& limit() const { return limit_; }

 private:
  RateLimit limit_;
  std::chrono::nanoseconds interval_;   // time to earn one request
  std::chrono::nanoseconds tolerance_;  // how far ahead of schedule a burst may run
  std::chrono::steady_clock::time_point theoretical_arrival_;
};

// Thread safe. `clock` must outlive the limiter. Buckets are keyed by provider id, so a
// provider keeps its bucket across reloads; its rate follows the provider it is given.
class ProviderRateLimiter {
 public:
  explicit ProviderRateLimiter(const Clock& clock = SteadyClock()) : clock_(clock) {}

  RateDecision TryAcquire(const Provider& provider);

 private:
  const Clock& clock_;
  std::mutex mutex_;  // guards buckets_; held for a map lookup and a few additions
  std::unordered_map<std::string, TokenBucket> buckets_;
};

}  // namespace ijazat::policy
