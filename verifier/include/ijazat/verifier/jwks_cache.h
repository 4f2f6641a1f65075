// A provider's cache of the appliance's JWKS, with the refresh rules of docs/consent-token.md:
// the set is fetched on first use and when older than max_age; a token whose "kid" is unknown
// triggers one refetch (at most one per min_refetch_interval, so that tokens with made-up key
// ids cannot make the provider hammer the appliance) and one more verification.
//
// The fetcher and the clock are injected: the fetcher returns the JWKS document (from HTTPS,
// a file, ...) or an error; the clock returns seconds since the Unix epoch.
//
// Thread safety: all methods may be called from any number of threads at once. The fetcher is
// called with an internal lock held, so at most one fetch runs at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "ijazat/common/result.h"
#include "ijazat/verifier/jwks.h"
#include "ijazat/verifier/verifier.h"

namespace ijazat::verifier {

struct JwksCacheOptions {
  // The appliance's Cache-Control max-age for its JWKS: a retired key version leaves the cache
  // within this time.
  std::int64_t max_age_seconds = 300;
  std::int64_t min_refetch_interval_seconds = 30;
};

class JwksCache {
 public:
  using Fetcher = std::function<Result<std::string>()>;
  using Clock = std::function<std::int64_t()>;

  explicit JwksCache(Fetcher fetcher, JwksCacheOptions options = {}, Clock clock = {});

  // The cached set, fetched first if there is none or it is older than max_age. When a refresh
  // fails and an older set exists, the older set is returned; otherwise the fetch's error, or
  // "jwks_invalid" for a document Jwks::Parse refuses. Failed fetches are retried at most once
  // per min_refetch_interval; in between, the last error is returned again.
  Result<Jwks> Get();

  // Verify(token, Get(), options), refetching once on "unknown_kid" as described above.
  // options.now, when unset, is taken from the clock.
  Result<VerifiedToken> Verify(std::string_view token, VerifyOptions options);

  // Fetches performed so far (for monitoring and tests).
  std::int64_t fetch_count() const;

 private:
  bool RecentlyAttempted(std::int64_t now) const;
  Result<Jwks> GetLocked(std::int64_t now);
  Result<Jwks> FetchLocked(std::int64_t now);

  Fetcher fetcher_;
  JwksCacheOptions options_;
  Clock clock_;
  mutable std::mutex mutex_;
  std::optional<Jwks> jwks_;
  std::int64_t fetched_at_ = 0;
  std::optional<std::int64_t> last_attempt_;
  std::optional<Error> last_error_;
  std::uint64_t generation_ = 0;  // successful fetches
  std::int64_t fetch_count_ = 0;
};

}  // namespace ijazat::verifier
