#include "ijazat/policy/rate_limiter.h"

#include <algorithm>

namespace ijazat::policy {
namespace {

class SystemSteadyClock final : public Clock {
 public:
  std::chrono::steady_clock::time_point Now() const override {
    return std::chrono::steady_clock::now();
  }
};

}  // namespace

const Clock& SteadyClock() {
  static const SystemSteadyClock clock;
  return clock;
}

TokenBucket::TokenBucket(RateLimit limit, std::chrono::steady_clock::time_point now)
    : theoretical_arrival_(now) {
  Reconfigure(limit);
}

void TokenBucket::Reconfigure(RateLimit limit) {
  // The loader guarantees requests_per_minute >= 1 and burst >= 1; clamp anyway so a bucket
  // can never divide by zero.
  limit_ = {std::max<std::uint32_t>(limit.requests_per_minute, 1),
            std::max<std::uint32_t>(limit.burst, 1)};
  interval_ = std::chrono::nanoseconds(std::chrono::minutes(1)) / limit_.requests_per_minute;
  tolerance_ = interval_ * (limit_.burst - 1);
}

RateDecision TokenBucket::TryTake(std::chrono::steady_clock::time_point now) {
  // GCRA: a request is on time if it is no more than `tolerance_` ahead of the schedule.
  const auto arrival = std::max(theoretical_arrival_, now);
  const auto ahead = arrival - now;
  if (ahead > tolerance_) return {false, ahead - tolerance_};
  theoretical_arrival_ = arrival + interval_;
  return {true, std::chrono::nanoseconds(0)};
}

RateDecision ProviderRateLimiter::TryAcquire(const Provider& provider) {
  const auto now = clock_.Now();
  std::lock_guard lock(mutex_);
  auto found = buckets_.find(provider.id);
  if (found == buckets_.end()) {
    found = buckets_.emplace(provider.id, TokenBucket(provider.rate_limit, now)).first;
  } else if (!(found->second.limit() == provider.rate_limit)) {
    found->second.Reconfigure(provider.rate_limit);
  }
  return found->second.TryTake(now);
}

}  // namespace ijazat::policy
