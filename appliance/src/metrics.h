// Prometheus metrics: requests by route and status, latencies, HSM operations and failures,
// OTP failures, SMS outbox. Thread safe; counters are cheap enough for every request.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace ijazat::appliance {

class Metrics {
 public:
  void ObserveRequest(const std::string& route, int status, double seconds);
  void CountHsmFailure(const std::string& reason);
  void CountOtpFailure();
  void CountEvent(const std::string& name, std::uint64_t by = 1);  // "policy_reload_failed"
  // A provider's request stopped by a per-citizen limit: a code not sent because an SMS cap
  // was reached (the cap's name), or a code refused because the citizen had too many wrong
  // codes ("wrong_codes"). Per provider, so that the operator sees who hits limits.
  void CountLimitHit(const std::string& provider, std::string_view limit);

  // The exposition text; `extra` is appended as is (gauges read at scrape time).
  std::string Render(const std::string& extra) const;

 private:
  static constexpr std::array<double, 10> kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025,
                                                      0.05,  0.1,    0.25,  0.5,  1.0};
  struct Histogram {
    std::array<std::uint64_t, kBuckets.size()> buckets{};
    std::uint64_t count = 0;
    double sum = 0;
  };
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, std::uint64_t> requests_;
  std::map<std::string, Histogram> latency_;
  std::map<std::string, std::uint64_t> hsm_failures_;
  std::map<std::string, std::uint64_t> events_;
  std::map<std::pair<std::string, std::string>, std::uint64_t> limit_hits_;
  std::atomic<std::uint64_t> otp_failures_{0};
};

}  // namespace ijazat::appliance
