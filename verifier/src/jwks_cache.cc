#include "ijazat/verifier/jwks_cache.h"

#include <chrono>
#include <utility>

namespace ijazat::verifier {
namespace {

std::int64_t SystemNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

JwksCache::JwksCache(Fetcher fetcher, JwksCacheOptions options, Clock clock)
    : fetcher_(std::move(fetcher)),
      options_(options),
      clock_(clock ? std::move(clock) : Clock(SystemNow)) {}

Result<Jwks> JwksCache::FetchLocked(std::int64_t now) {
  last_attempt_ = now;
  ++fetch_count_;
  auto document = fetcher_ ? fetcher_()
                           : Result<std::string>(Error(ErrorCode::kFailedPrecondition,
                                                       "no JWKS fetcher", "jwks_unavailable"));
  auto jwks = document.ok() ? Jwks::Parse(*document) : Result<Jwks>(document.error());
  if (!jwks.ok()) {
    last_error_ = jwks.error();
    return jwks.error();
  }
  jwks_ = *jwks;
  fetched_at_ = now;
  last_error_.reset();
  ++generation_;
  return jwks;
}

bool JwksCache::RecentlyAttempted(std::int64_t now) const {
  return last_attempt_.has_value() && now - *last_attempt_ < options_.min_refetch_interval_seconds;
}

Result<Jwks> JwksCache::GetLocked(std::int64_t now) {
  if (jwks_.has_value() && now - fetched_at_ < options_.max_age_seconds) return *jwks_;
  if (RecentlyAttempted(now)) {
    if (jwks_.has_value()) return *jwks_;
    if (last_error_.has_value()) return *last_error_;
  }
  auto fetched = FetchLocked(now);
  if (!fetched.ok() && jwks_.has_value()) return *jwks_;
  return fetched;
}

Result<Jwks> JwksCache::Get() {
  const std::int64_t now = clock_();
  const std::lock_guard lock(mutex_);
  return GetLocked(now);
}

Result<VerifiedToken> JwksCache::Verify(std::string_view token, VerifyOptions options) {
  if (!options.now.has_value()) options.now = clock_();
  std::uint64_t generation = 0;
  std::optional<Jwks> jwks;
  {
    const std::int64_t now = clock_();
    const std::lock_guard lock(mutex_);
    auto current = GetLocked(now);
    if (!current.ok()) return current.error();
    jwks = std::move(current).value();
    generation = generation_;
  }
  auto verified = verifier::Verify(token, *jwks, options);
  if (verified.ok() || verified.error().reason() != "unknown_kid") return verified;

  {
    const std::int64_t now = clock_();
    const std::lock_guard lock(mutex_);
    if (generation_ != generation && jwks_.has_value()) {
      jwks = *jwks_;  // another thread refreshed meanwhile
    } else if (RecentlyAttempted(now)) {
      return verified;
    } else {
      auto fetched = FetchLocked(now);
      if (!fetched.ok()) return verified;
      jwks = std::move(fetched).value();
    }
  }
  return verifier::Verify(token, *jwks, options);
}

std::int64_t JwksCache::fetch_count() const {
  const std::lock_guard lock(mutex_);
  return fetch_count_;
}

}  // namespace ijazat::verifier
