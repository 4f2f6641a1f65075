#include "metrics.h"

#include <sstream>

namespace ijazat::appliance {

void Metrics::ObserveRequest(const std::string& route, int status, double seconds) {
  const std::lock_guard lock(mutex_);
  ++requests_[{route, status}];
  Histogram& h = latency_[route];
  for (std::size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) ++h.buckets[i];
  }
  ++h.count;
  h.sum += seconds;
}

void Metrics::CountHsmFailure(const std::string& reason) {
  const std::lock_guard lock(mutex_);
  ++hsm_failures_[reason];
}

void Metrics::CountOtpFailure() { ++otp_failures_; }

void Metrics::CountEvent(const std::string& name, std::uint64_t by) {
  const std::lock_guard lock(mutex_);
  events_[name] += by;
}

void Metrics::CountLimitHit(const std::string& provider, std::string_view limit) {
  const std::lock_guard lock(mutex_);
  ++limit_hits_[{provider, std::string(limit)}];
}

std::string Metrics::Render(const std::string& extra) const {
  std::ostringstream out;
  const std::lock_guard lock(mutex_);
  out << "# HELP ijazat_http_requests_total HTTP requests by route and status.\n"
         "# TYPE ijazat_http_requests_total counter\n";
  for (const auto& [key, count] : requests_) {
    out << "ijazat_http_requests_total{route=\"" << key.first << "\",status=\"" << key.second
        << "\"} " << count << '\n';
  }
  out << "# HELP ijazat_http_request_duration_seconds Request latency by route.\n"
         "# TYPE ijazat_http_request_duration_seconds histogram\n";
  for (const auto& [route, h] : latency_) {
    for (std::size_t i = 0; i < kBuckets.size(); ++i) {
      out << "ijazat_http_request_duration_seconds_bucket{route=\"" << route << "\",le=\""
          << kBuckets[i] << "\"} " << h.buckets[i] << '\n';
    }
    out << "ijazat_http_request_duration_seconds_bucket{route=\"" << route << "\",le=\"+Inf\"} "
        << h.count << '\n'
        << "ijazat_http_request_duration_seconds_sum{route=\"" << route << "\"} " << h.sum << '\n'
        << "ijazat_http_request_duration_seconds_count{route=\"" << route << "\"} " << h.count
        << '\n';
  }
  out << "# HELP ijazat_hsm_failures_total HSM operations that failed, by reason.\n"
         "# TYPE ijazat_hsm_failures_total counter\n";
  for (const auto& [reason, count] : hsm_failures_) {
    out << "ijazat_hsm_failures_total{reason=\"" << reason << "\"} " << count << '\n';
  }
  out << "# HELP ijazat_otp_failures_total Wrong codes relayed by providers.\n"
         "# TYPE ijazat_otp_failures_total counter\n"
      << "ijazat_otp_failures_total " << otp_failures_.load() << '\n';
  out << "# HELP ijazat_events_total Notable events.\n# TYPE ijazat_events_total counter\n";
  for (const auto& [name, count] : events_) {
    out << "ijazat_events_total{event=\"" << name << "\"} " << count << '\n';
  }
  out << "# HELP ijazat_provider_limit_hits_total Provider requests stopped by a per-citizen "
         "limit (an SMS cap, or wrong_codes), by provider and limit.\n"
         "# TYPE ijazat_provider_limit_hits_total counter\n";
  for (const auto& [key, count] : limit_hits_) {
    out << "ijazat_provider_limit_hits_total{provider=\"" << key.first << "\",limit=\""
        << key.second << "\"} " << count << '\n';
  }
  out << extra;
  return out.str();
}

}  // namespace ijazat::appliance
