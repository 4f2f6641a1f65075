// flow_bench: whole consent flows per second through a real appliance, against the bound the
// HSM alone sets for the same work, in the same run on the same token.
//
//   flow_bench [--clients N] [--seconds S] [--rate R] [--open-fraction F] [--citizens N]
//              [--providers P] [--json FILE] [--server-threads N] [--dispatch-threads N]
//              [--dispatch-batch N] [--class-rounds N]
//   flow_bench --url https://host:port --ca FILE --api-key-file FILE --citizens-file FILE
//              --sms-file FILE [--gateway-secret-file FILE] [--hsm-token T --hsm-pin-file F]
//              [--clients N] [--seconds S] [--rate R] [--open-fraction F] [--json FILE]
//
// It starts a fresh appliance in-process (SoftHSM token with every key, self-signed TLS, a
// policy, a synthetic registry, the file SMS sink, the dispatcher running, the system clock),
// enrols --citizens numbers through the inbound webhook, then drives complete flows over HTTPS
// keep-alive: POST /v1/consents, the code read from the SMS sink, POST .../confirm,
// POST /v1/verifications.
//
//   closed loop   --clients connections, each starting its next flow when the last ends;
//   open loop     --rate R flows/s (or --open-fraction F of the closed-loop rate, after it),
//                 flows started on a fixed schedule over --clients connections, latency
//                 measured from the scheduled start (no coordinated omission).
//
// In-process, it then measures POST /v1/consents alone for citizens who are enrolled, not
// enrolled, locked, or blocking the provider, interleaved (--class-rounds requests each): a
// provider must not tell them apart by timing (docs/performance.md, "The same work").
//
// Then it runs exactly the HSM operations one flow performs (see kFlowOps) through the HSM
// layer with the same thread count and reports the ratio appliance / HSM-bound. Not a test:
// numbers depend on the machine. Clients are spread over --providers providers (default one
// per client, at least 10) so that the per-provider rate limit (at most 6000 requests/min, 100
// a second) does not cap the measurement, and over the citizens so that the per-CNIC SMS cap
// does not.
//
// With --url it drives a real deployment instead (docs/performance.md, "Against a real
// deployment"): no appliance is started, the citizens come from --citizens-file, the codes from
// the deployment's file SMS sink (--sms-file), and the HSM bound is measured only if the token
// is reachable from here (--hsm-token, --hsm-pin-file, --hsm-module).
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/NetSSL.h>
#include <Poco/Net/SSLManager.h>
#include <Poco/URI.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "appliance.h"
#include "config.h"
#include "ijazat/common/bytes.h"
#include "ijazat/hsm/pkcs11_hsm.h"
#include "registry.h"

namespace {

using namespace ijazat;
using SteadyClock = std::chrono::steady_clock;
using nlohmann::json;

constexpr char kModule[] = "/usr/lib/softhsm/libsofthsm2.so";
constexpr char kToken[] = "ijazat-flow-bench";
constexpr char kPin[] = "flow-bench-user-pin";
constexpr char kGatewaySecret[] = "flow-bench-gateway-secret-0123456789";
constexpr char kShortCode[] = "8009";
constexpr auto kCodeTimeout = std::chrono::seconds(10);
// Below the server's keep-alive timeout (ijazatd's default is 5 s; POCO's client default is 8 s):
// a connection idle for longer is opened afresh instead of being reused after the server has
// closed it, which the client only notices as "No message received" on its next request.
constexpr int kClientKeepAliveSeconds = 3;
// The latency-by-class phase's own providers, so that their rate limits (6000 requests/min,
// bursts of 1000 each) do not cap it, and its citizens.
constexpr int kClassProviders = 8;
constexpr int kClassCitizens = 50;
constexpr int kClasses = 5;

[[noreturn]] void Die(const std::string& message) {
  std::cerr << "flow_bench: " << message << '\n';
  std::exit(1);
}

std::string Sha256Hex(const std::string& text) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  return HexEncode(ByteView(digest, sizeof digest));
}

std::string ProviderKey(int p) {
  char key[64];
  std::snprintf(key, sizeof key, "ijz_bench_provider_%04d_0123456789abcdef", p);
  return key;
}

struct Citizen {
  std::string cnic;
  std::string phone;  // E.164, as the SMS sink writes it
};

// Citizen i: a synthetic CNIC (35202 + 8 digits) and its own mobile number.
std::string CitizenCnic(int i) {
  char cnic[32];
  std::snprintf(cnic, sizeof cnic, "35202%08d", i);
  return cnic;
}
std::string CitizenPhone(int i) {
  char phone[32];
  std::snprintf(phone, sizeof phone, "+92300%07d", i);
  return phone;
}

// ---- Latency statistics ----------------------------------------------------------------------

struct Samples {
  std::vector<double> ms;
  void Add(double value) { ms.push_back(value); }
  void Merge(const Samples& other) { ms.insert(ms.end(), other.ms.begin(), other.ms.end()); }
};

struct Summary {
  std::size_t count = 0;
  double p50 = 0, p95 = 0, p99 = 0, max = 0, mean = 0;
};

Summary Summarise(std::vector<double> values) {
  Summary s;
  s.count = values.size();
  if (values.empty()) return s;
  std::sort(values.begin(), values.end());
  auto at = [&](double q) {
    const auto index = static_cast<std::size_t>(q * static_cast<double>(values.size() - 1) + 0.5);
    return values[std::min(index, values.size() - 1)];
  };
  s.p50 = at(0.50);
  s.p95 = at(0.95);
  s.p99 = at(0.99);
  s.max = values.back();
  double total = 0;
  for (const double v : values) total += v;
  s.mean = total / static_cast<double>(values.size());
  return s;
}

json SummaryJson(const Summary& s) {
  return {{"count", s.count}, {"p50_ms", s.p50}, {"p95_ms", s.p95},
          {"p99_ms", s.p99},  {"max_ms", s.max}, {"mean_ms", s.mean}};
}

// ---- The SMS sink, tailed --------------------------------------------------------------------

// Tails the file sink and keeps, per number, the last code and how many codes arrived.
class CodeIndex {
 public:
  explicit CodeIndex(std::string path) : path_(std::move(path)) {
    reader_ = std::thread([this] { Run(); });
  }
  ~CodeIndex() {
    stop_ = true;
    reader_.join();
  }
  CodeIndex(const CodeIndex&) = delete;
  CodeIndex& operator=(const CodeIndex&) = delete;

  std::uint64_t Generation(const std::string& phone) {
    const std::lock_guard lock(mutex_);
    const auto it = codes_.find(phone);
    return it == codes_.end() ? 0 : it->second.generation;
  }
  // Waits for a code newer than `generation`.
  std::optional<std::string> Wait(const std::string& phone, std::uint64_t generation,
                                  SteadyClock::time_point deadline) {
    std::unique_lock lock(mutex_);
    const bool arrived = changed_.wait_until(lock, deadline, [&] {
      const auto it = codes_.find(phone);
      return it != codes_.end() && it->second.generation > generation;
    });
    if (!arrived) return std::nullopt;
    return codes_[phone].code;
  }
  std::uint64_t messages() const { return messages_; }

 private:
  struct Entry {
    std::string code;
    std::uint64_t generation = 0;
  };

  void Run() {
    int fd = -1;
    std::string pending;
    char buffer[1 << 16];
    while (!stop_) {
      if (fd < 0) fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
      const ssize_t n = fd < 0 ? 0 : ::read(fd, buffer, sizeof buffer);
      if (n <= 0) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        continue;
      }
      pending.append(buffer, static_cast<std::size_t>(n));
      std::size_t start = 0;
      bool any = false;
      for (std::size_t end; (end = pending.find('\n', start)) != std::string::npos;
           start = end + 1) {
        any = Parse(std::string_view(pending).substr(start, end - start)) || any;
      }
      pending.erase(0, start);
      if (any) changed_.notify_all();
    }
    if (fd >= 0) ::close(fd);
  }

  bool Parse(std::string_view line) {
    ++messages_;
    const auto message = json::parse(line, nullptr, false);
    if (!message.is_object() || !message.contains("to") || !message.contains("text")) return false;
    const std::string text = message["text"].get<std::string>();
    static constexpr std::string_view kPrefix = "Ijazat code ";
    const auto at = text.find(kPrefix);
    if (at == std::string::npos || text.size() < at + kPrefix.size() + 6) return false;
    const std::lock_guard lock(mutex_);
    Entry& entry = codes_[message["to"].get<std::string>()];
    entry.code = text.substr(at + kPrefix.size(), 6);
    ++entry.generation;
    return true;
  }

  std::string path_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> messages_{0};
  std::mutex mutex_;
  std::condition_variable changed_;
  std::unordered_map<std::string, Entry> codes_;
  std::thread reader_;
};

// ---- Citizens, handed out first-in first-out so that flows spread over every CNIC ------------

class CitizenPool {
 public:
  explicit CitizenPool(int count) {
    for (int i = 0; i < count; ++i) free_.push_back(i);
  }
  int Acquire() {
    std::unique_lock lock(mutex_);
    available_.wait(lock, [&] { return !free_.empty(); });
    const int citizen = free_.front();
    free_.pop_front();
    return citizen;
  }
  void Release(int citizen) {
    {
      const std::lock_guard lock(mutex_);
      free_.push_back(citizen);
    }
    available_.notify_one();
  }

 private:
  std::mutex mutex_;
  std::condition_variable available_;
  std::deque<int> free_;
};

// ---- One HTTPS keep-alive connection ---------------------------------------------------------

struct Response {
  int status = 0;  // 0: transport error
  json body;
};

class Client {
 public:
  Client(const std::string& host, int port, Poco::Net::Context::Ptr context)
      : session_(host, static_cast<Poco::UInt16>(port), context) {
    session_.setKeepAlive(true);
    session_.setKeepAliveTimeout(Poco::Timespan(kClientKeepAliveSeconds, 0));
    session_.setTimeout(Poco::Timespan(15, 0));
  }

  Response Send(const std::string& method, const std::string& path, const std::string& body,
                const std::string& api_key, const std::string& extra_header = "",
                const std::string& extra_value = "") {
    Response result;
    try {
      Poco::Net::HTTPRequest request(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
      request.setKeepAlive(true);
      if (!api_key.empty()) request.set("Authorization", "Bearer " + api_key);
      if (!extra_header.empty()) request.set(extra_header, extra_value);
      if (method == "POST") {
        request.setContentType("application/json");
        request.setContentLength64(static_cast<Poco::Int64>(body.size()));
      }
      session_.sendRequest(request) << body;
      Poco::Net::HTTPResponse response;
      std::istream& in = session_.receiveResponse(response);
      const std::string text(std::istreambuf_iterator<char>(in), {});
      result.status = static_cast<int>(response.getStatus());
      result.body = json::parse(text, nullptr, false);
    } catch (const std::exception& e) {
      session_.reset();
      result.status = 0;
      result.body = json{{"title", std::string("transport: ") + e.what()}};
    }
    return result;
  }

 private:
  Poco::Net::HTTPSClientSession session_;
};

// ---- The flows -------------------------------------------------------------------------------

enum Step { kRequest, kCode, kConfirm, kVerify, kFlow, kSteps };
constexpr const char* kStepNames[kSteps] = {"request", "sms_code", "confirm", "verify", "flow"};

struct WorkerStats {
  Samples steps[kSteps];
  long flows = 0;
  long errors = 0;
  std::map<std::string, long> error_kinds;
};

struct Bench {
  std::string host = "127.0.0.1";
  int port = 0;
  Poco::Net::Context::Ptr context;
  std::vector<std::string> keys;  // per provider
  std::vector<Citizen> people;
  std::string purpose = "account-opening";
  std::vector<std::string> scopes = {"name", "date_of_birth"};
  CodeIndex* codes = nullptr;
  CitizenPool* citizens = nullptr;

  // One whole flow; false on error (the kind is counted).
  bool Flow(Client& client, const std::string& key, WorkerStats& stats,
            SteadyClock::time_point started) {
    const int citizen = citizens->Acquire();
    const std::string& cnic = people[static_cast<std::size_t>(citizen)].cnic;
    const std::string& phone = people[static_cast<std::size_t>(citizen)].phone;
    auto fail = [&](const std::string& step, const Response& r) {
      citizens->Release(citizen);
      ++stats.errors;
      std::string kind = step + " " + std::to_string(r.status);
      if (r.body.is_object() && r.body.contains("title")) {
        kind += " " + r.body["title"].get<std::string>();
      }
      ++stats.error_kinds[kind];
      return false;
    };
    auto ms = [](SteadyClock::time_point from, SteadyClock::time_point to) {
      return std::chrono::duration<double, std::milli>(to - from).count();
    };

    const std::uint64_t generation = codes->Generation(phone);
    auto t0 = SteadyClock::now();
    const Response created =
        client.Send("POST", "/v1/consents",
                    json{{"cnic", cnic}, {"purpose", purpose}, {"scopes", scopes}}.dump(), key);
    auto t1 = SteadyClock::now();
    if (created.status != 202 || !created.body.contains("consent_id")) {
      return fail("request", created);
    }
    const std::string id = created.body["consent_id"].get<std::string>();
    const auto code = codes->Wait(phone, generation, SteadyClock::now() + kCodeTimeout);
    auto t2 = SteadyClock::now();
    if (!code) return fail("sms_code", Response{0, json{{"title", "timeout"}}});
    const Response confirmed =
        client.Send("POST", "/v1/consents/" + id + "/confirm", json{{"otp", *code}}.dump(), key);
    auto t3 = SteadyClock::now();
    if (confirmed.status != 200 || !confirmed.body.contains("consent_token")) {
      return fail("confirm", confirmed);
    }
    const Response verified = client.Send(
        "POST", "/v1/verifications",
        json{{"consent_token", confirmed.body["consent_token"].get<std::string>()}}.dump(), key);
    auto t4 = SteadyClock::now();
    if (verified.status != 200) return fail("verify", verified);
    citizens->Release(citizen);
    stats.steps[kRequest].Add(ms(t0, t1));
    stats.steps[kCode].Add(ms(t1, t2));
    stats.steps[kConfirm].Add(ms(t2, t3));
    stats.steps[kVerify].Add(ms(t3, t4));
    stats.steps[kFlow].Add(ms(started, t4));
    ++stats.flows;
    return true;
  }
};

struct PhaseResult {
  std::string mode;
  int clients = 0;
  double target_rate = 0;
  double seconds = 0;
  double flows_per_s = 0;
  long flows = 0;
  long errors = 0;
  long late_starts = 0;  // open loop: flows started > 1 ms after their schedule
  long min_client_flows = 0, max_client_flows = 0;
  Summary steps[kSteps];
  std::map<std::string, long> error_kinds;
};

// rate == 0: closed loop. Otherwise flows i = 0, 1, ... are scheduled at start + i / rate.
PhaseResult RunPhase(Bench& bench, int clients, double seconds, double rate) {
  std::vector<WorkerStats> stats(static_cast<std::size_t>(clients));
  std::vector<std::unique_ptr<Client>> connections;
  for (int c = 0; c < clients; ++c) {
    connections.push_back(std::make_unique<Client>(bench.host, bench.port, bench.context));
  }
  {
    // TLS handshakes outside the window, all at once: one by one, the connections beyond the
    // server's threads wait for earlier ones to idle out, and those are then closed under the
    // clients (the "No message received" errors of earlier runs).
    std::vector<std::thread> warm;
    for (auto& connection : connections) {
      warm.emplace_back([&client = *connection] { client.Send("GET", "/healthz", "", ""); });
    }
    for (auto& thread : warm) thread.join();
  }
  std::atomic<long> next{0};
  std::atomic<long> late{0};
  const auto start = SteadyClock::now() + std::chrono::milliseconds(50);
  const auto end = start + std::chrono::duration_cast<SteadyClock::duration>(
                               std::chrono::duration<double>(seconds));
  std::vector<std::thread> workers;
  for (int c = 0; c < clients; ++c) {
    workers.emplace_back([&, c] {
      Client& client = *connections[static_cast<std::size_t>(c)];
      const std::string& key = bench.keys[static_cast<std::size_t>(c) % bench.keys.size()];
      WorkerStats& mine = stats[static_cast<std::size_t>(c)];
      std::this_thread::sleep_until(start);
      while (true) {
        SteadyClock::time_point scheduled;
        if (rate > 0) {
          const long i = next++;
          scheduled = start + std::chrono::duration_cast<SteadyClock::duration>(
                                  std::chrono::duration<double>(static_cast<double>(i) / rate));
          if (scheduled >= end) break;
          std::this_thread::sleep_until(scheduled);
          if (SteadyClock::now() - scheduled > std::chrono::milliseconds(1)) ++late;
        } else {
          scheduled = SteadyClock::now();
          if (scheduled >= end) break;
        }
        bench.Flow(client, key, mine, scheduled);
      }
    });
  }
  for (auto& worker : workers) worker.join();
  const double elapsed = std::chrono::duration<double>(SteadyClock::now() - start).count();

  PhaseResult result;
  result.mode = rate > 0 ? "open" : "closed";
  result.clients = clients;
  result.target_rate = rate;
  result.seconds = elapsed;
  Samples merged[kSteps];
  result.min_client_flows = stats.empty() ? 0 : stats.front().flows;
  for (const WorkerStats& s : stats) {
    for (int i = 0; i < kSteps; ++i) merged[i].Merge(s.steps[i]);
    result.flows += s.flows;
    result.errors += s.errors;
    result.min_client_flows = std::min(result.min_client_flows, s.flows);
    result.max_client_flows = std::max(result.max_client_flows, s.flows);
    for (const auto& [kind, count] : s.error_kinds) result.error_kinds[kind] += count;
  }
  for (int i = 0; i < kSteps; ++i) result.steps[i] = Summarise(std::move(merged[i].ms));
  result.flows_per_s = static_cast<double>(result.flows) / elapsed;
  result.late_starts = late;
  return result;
}

void PrintPhase(const PhaseResult& r) {
  std::printf("\n%s loop, %d clients", r.mode.c_str(), r.clients);
  if (r.target_rate > 0) std::printf(", target %.1f flows/s", r.target_rate);
  std::printf(": %.1f flows/s (%ld flows, %ld errors in %.1f s); flows per client %ld..%ld\n",
              r.flows_per_s, r.flows, r.errors, r.seconds, r.min_client_flows, r.max_client_flows);
  if (r.target_rate > 0)
    std::printf("  late starts (> 1 ms behind schedule): %ld\n", r.late_starts);
  std::printf("  %-9s %9s %9s %9s %9s %9s\n", "step", "p50 ms", "p95 ms", "p99 ms", "max ms",
              "mean ms");
  for (int i = 0; i < kSteps; ++i) {
    const Summary& s = r.steps[i];
    std::printf("  %-9s %9.2f %9.2f %9.2f %9.2f %9.2f\n", kStepNames[i], s.p50, s.p95, s.p99, s.max,
                s.mean);
  }
  bool rate_limited = false;
  for (const auto& [kind, count] : r.error_kinds) {
    std::printf("  error: %-50s %ld\n", kind.c_str(), count);
    rate_limited = rate_limited || kind.find("rate_limited") != std::string::npos;
  }
  if (rate_limited) {
    std::printf(
        "  note: the providers' rate limits capped this run (each provider allows at most 6000 "
        "requests/min); spread the clients over more providers (--providers)\n");
  }
}

json PhaseJson(const PhaseResult& r) {
  json steps = json::object();
  for (int i = 0; i < kSteps; ++i) steps[kStepNames[i]] = SummaryJson(r.steps[i]);
  return {{"mode", r.mode},
          {"clients", r.clients},
          {"target_flows_per_s", r.target_rate},
          {"seconds", r.seconds},
          {"flows", r.flows},
          {"errors", r.errors},
          {"flows_per_s", r.flows_per_s},
          {"late_starts", r.late_starts},
          {"min_client_flows", r.min_client_flows},
          {"max_client_flows", r.max_client_flows},
          {"latency", steps},
          {"error_kinds", r.error_kinds}};
}

// ---- Latency by citizen class ------------------------------------------------------------------

// A provider must not tell citizens apart by how long POST /v1/consents takes (the request does
// the same work for all; the dispatcher decides later whether a code goes). One client sends
// requests for each class in turn, the order shuffled every round, from a provider of its own
// that the "blocking" citizens have blocked; latency is measured at the client.
struct CitizenClasses {
  std::vector<std::string> provider_keys;  // used in turn
  std::vector<std::pair<std::string, std::vector<Citizen>>> classes;
};

struct ClassLatency {
  std::string name;
  Summary summary;
  double p90 = 0;
  long errors = 0;
};

std::vector<ClassLatency> MeasureClasses(Bench& bench, const CitizenClasses& classes, int rounds) {
  Client client(bench.host, bench.port, bench.context);
  std::vector<Samples> samples(classes.classes.size());
  std::vector<long> errors(classes.classes.size(), 0);
  std::vector<std::size_t> order(classes.classes.size());
  for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::uint64_t rng = 0x9E3779B97F4A7C15ull;  // fixed: the same interleaving every run
  auto next_random = [&rng] {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
  };
  const int warm_up = 5;
  for (int round = -warm_up; round < rounds; ++round) {
    for (std::size_t k = order.size(); k > 1; --k)
      std::swap(order[k - 1], order[next_random() % k]);
    for (const std::size_t k : order) {
      const auto& people = classes.classes[k].second;
      const Citizen& citizen = people[static_cast<std::size_t>(round + warm_up) % people.size()];
      const auto t0 = SteadyClock::now();
      const Response r = client.Send(
          "POST", "/v1/consents",
          json{{"cnic", citizen.cnic}, {"purpose", bench.purpose}, {"scopes", bench.scopes}}.dump(),
          classes.provider_keys[static_cast<std::size_t>(round + warm_up) %
                                classes.provider_keys.size()]);
      const double ms = std::chrono::duration<double, std::milli>(SteadyClock::now() - t0).count();
      if (round < 0) continue;
      if (r.status != 202) {
        ++errors[k];
        continue;
      }
      samples[k].Add(ms);
    }
  }
  std::vector<ClassLatency> out;
  for (std::size_t k = 0; k < classes.classes.size(); ++k) {
    ClassLatency c;
    c.name = classes.classes[k].first;
    std::vector<double> values = samples[k].ms;
    c.summary = Summarise(values);
    if (!values.empty()) {
      std::sort(values.begin(), values.end());
      c.p90 = values[std::min(
          values.size() - 1,
          static_cast<std::size_t>(0.9 * static_cast<double>(values.size() - 1) + 0.5))];
    }
    c.errors = errors[k];
    out.push_back(std::move(c));
  }
  return out;
}

// The largest median over the smallest, minus one.
double MedianSpread(const std::vector<ClassLatency>& classes) {
  double low = 0, high = 0;
  for (const ClassLatency& c : classes) {
    if (c.summary.count == 0) continue;
    low = low == 0 ? c.summary.p50 : std::min(low, c.summary.p50);
    high = std::max(high, c.summary.p50);
  }
  return low > 0 ? high / low - 1 : 0;
}

// ---- The HSM-only bound ----------------------------------------------------------------------

// The HSM-layer calls of one flow, as the code makes them (consent_service.cc,
// citizen_crypto.cc, hsm_token_service.cc, sms.cc), with one index-key version.
constexpr const char* kFlowOps[] = {
    "request  Random(16)              consent id (CitizenCrypto::RandomId)",
    "request  Hmac(index)             CNIC blind index, one per index version (CnicIndexes)",
    "request  Seal(data)              CNIC sealed to the consent: C_GenerateRandom IV + C_Encrypt",
    "sms      Open(data)              OTP SMS: the enrolled number unsealed (OpenPhone)",
    "sms      Hmac(otp)               OTP SMS: the code derived (DeriveOtp)",
    "sms      Open(data)              OTP SMS: CNIC unsealed for the binding check (CodeMayGo)",
    "confirm  Hmac(otp)               the code derived again and compared (DeriveOtp)",
    "confirm  Open(data)              CNIC unsealed for the binding check (OpenCnic)",
    "confirm  Open(data)              the enrolled number unsealed for it (StillBound)",
    "confirm  Hmac(index)             pairwise subject (PairwiseSubject)",
    "confirm  Random(8)               receipt reference (RandomReference)",
    "confirm  SignEs256(receipt)      consent token (HsmTokenService::Issue)",
    "confirm  SignEs256(receipt)      receipt (HsmTokenService::Issue)",
    "sms      Open(data)              'granted' notice SMS: the number unsealed (OpenPhone)",
    "verify   Open(data)              CNIC unsealed for the registry (OpenCnic)",
};
constexpr int kFlowOpCount = static_cast<int>(sizeof kFlowOps / sizeof kFlowOps[0]);

struct HsmBound {
  double flows_per_s = 0;
  double ops_per_s = 0;
};

HsmBound MeasureHsmBound(hsm::Pkcs11Hsm& layer, int threads, double seconds) {
  const hsm::KeyRef index{hsm::KeyKind::kIndex, 1};
  const hsm::KeyRef data{hsm::KeyKind::kData, 1};
  const hsm::KeyRef otp{hsm::KeyKind::kOtp, 1};
  auto receipt = layer.ActiveKey(hsm::KeyKind::kReceipt);
  if (!receipt.ok()) Die(receipt.error().message());
  const std::string cnic = "3520200000001";
  const std::string phone = "+923000000001";
  const std::string cnic_index_hex(64, 'a');
  const std::string phone_aad = "phone:" + cnic_index_hex;
  auto sealed_phone = layer.Seal(data, AsBytes(phone), AsBytes(phone_aad));
  if (!sealed_phone.ok()) Die(sealed_phone.error().message());
  const std::string otp_context =
      "ijazat-otp/1\nAAAAAAAAAAAAAAAAAAAAAA\n" + cnic_index_hex +
      "\nbench-provider-0000\naccount-opening\nname,date_of_birth\n1767225900\n6";
  // Token and receipt signing inputs of about the real size (header.payload, base64url).
  const std::string token_input(620, 'x');
  const std::string receipt_input(900, 'y');
  const std::string subject = "sub:bench-provider-0000:" + cnic_index_hex;

  std::atomic<bool> stop{false};
  std::atomic<long> flows{0};
  std::atomic<long> failures{0};
  std::vector<std::thread> workers;
  const auto start = SteadyClock::now();
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      long local = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        const auto id = layer.Random(16);
        const auto cnic_mac = layer.Hmac(index, AsBytes("cnic:" + cnic), hsm::HmacHash::kSha256);
        const std::string consent_aad = "cnic:AAAAAAAAAAAAAAAAAAAAAA";
        const auto sealed_cnic = layer.Seal(data, AsBytes(cnic), AsBytes(consent_aad));
        const auto to = layer.Open(data, *sealed_phone, AsBytes(phone_aad));
        const auto sent = layer.Hmac(otp, AsBytes(otp_context), hsm::HmacHash::kSha256);
        const auto sent_binding = layer.Open(data, *sealed_cnic, AsBytes(consent_aad));
        const auto checked = layer.Hmac(otp, AsBytes(otp_context), hsm::HmacHash::kSha256);
        const auto grant_binding = layer.Open(data, *sealed_cnic, AsBytes(consent_aad));
        const auto grant_number = layer.Open(data, *sealed_phone, AsBytes(phone_aad));
        const auto sub = layer.Hmac(index, AsBytes(subject), hsm::HmacHash::kSha256);
        const auto reference = layer.Random(8);
        const auto token = layer.SignEs256(*receipt, AsBytes(token_input));
        const auto signed_receipt = layer.SignEs256(*receipt, AsBytes(receipt_input));
        const auto notice_to = layer.Open(data, *sealed_phone, AsBytes(phone_aad));
        bool ok = id.ok() && cnic_mac.ok() && sealed_cnic.ok() && to.ok() && sent.ok() &&
                  sent_binding.ok() && checked.ok() && grant_binding.ok() && grant_number.ok() &&
                  sub.ok() && reference.ok() && token.ok() && signed_receipt.ok() && notice_to.ok();
        if (ok) {
          ok = layer.Open(data, *sealed_cnic, AsBytes(consent_aad)).ok();
        }
        if (!ok) ++failures;
        ++local;
      }
      flows += local;
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& worker : workers) worker.join();
  const double elapsed = std::chrono::duration<double>(SteadyClock::now() - start).count();
  if (failures > 0) Die(std::to_string(failures.load()) + " HSM flows failed");
  HsmBound bound;
  bound.flows_per_s = static_cast<double>(flows.load()) / elapsed;
  bound.ops_per_s = bound.flows_per_s * kFlowOpCount;
  return bound;
}

// ---- Set-up ----------------------------------------------------------------------------------

void WriteFile(const std::filesystem::path& path, const std::string& content) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
  std::filesystem::permissions(
      path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

std::string Policy(int providers) {
  std::string yaml = R"(version: bench-1
defaults:
  otp: {digits: 6, ttl: 5m, max_attempts: 3}
  token: {ttl: 15m, max_uses: 2}
  limits:
    failures_per_cnic_per_day: 10
    sms_per_cnic_per_hour: 20
    number_change_cooling_off: 24h
providers:
)";
  // More than asked for: the latency-by-class phase has providers of its own.
  for (int p = 0; p < providers + kClassProviders; ++p) {
    char id[32];
    std::snprintf(id, sizeof id, "bench-provider-%04d", p);
    yaml += std::string("  - id: ") + id + "\n    display_name: Bench Provider " +
            std::to_string(p) +
            "\n    status: active\n    credentials:\n      - {type: api_key, sha256: " +
            Sha256Hex(ProviderKey(p)) +
            "}\n    purposes:\n      - id: account-opening\n        sms_text: opening a bank "
            "account\n        scopes: [name, father_name, date_of_birth]\n"
            "    rate_limit: {requests_per_minute: 6000, burst: 1000}\n";
  }
  return yaml;
}

std::string RegistryCsv(int citizens) {
  // msisdn: the number recorded at registration, which binds it to the CNIC for enrolment.
  std::string csv = "cnic,name,father_name,date_of_birth,gender,address,photo,cnic_status,msisdn\n";
  for (int i = 0; i < citizens; ++i) {
    csv += CitizenCnic(i) + ",Citizen " + std::to_string(i) + ",Father " + std::to_string(i) +
           ",1990-01-01," + (i % 2 ? "F" : "M") + ",\"House " + std::to_string(i) +
           ", Bench Town, Lahore\",bench-photo-" + std::to_string(i) + ",valid," + CitizenPhone(i) +
           "\n";
  }
  return csv;
}

int RunCommand(const std::string& command) { return std::system(command.c_str()); }

void Enrol(Bench& bench, int citizens, int clients, const std::string& short_code,
           const std::string& secret) {
  std::atomic<int> next{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> workers;
  for (int c = 0; c < clients; ++c) {
    workers.emplace_back([&] {
      Client client(bench.host, bench.port, bench.context);
      for (int i; (i = next++) < citizens;) {
        const Response r =
            client.Send("POST", "/v1/sms/inbound",
                        json{{"from", bench.people[static_cast<std::size_t>(i)].phone},
                             {"to", short_code},
                             {"text", bench.people[static_cast<std::size_t>(i)].cnic}}
                            .dump(),
                        "", "X-Ijazat-Gateway-Secret", secret);
        if (r.status / 100 != 2) {
          if (failures++ == 0)
            std::cerr << "enrolment failed: " << r.status << ' ' << r.body << '\n';
        }
      }
    });
  }
  for (auto& worker : workers) worker.join();
  if (failures > 0) Die(std::to_string(failures.load()) + " enrolments failed");
}

struct Options {
  int clients = 50;
  double seconds = 10;
  double rate = 0;
  double open_fraction = 0;
  int citizens = 2000;
  int providers = 0;        // 0: one per client, at least 10
  int class_rounds = 1000;  // requests per citizen class (0: no latency-by-class phase)
  std::string json_path;
  // The in-process appliance's settings (0: the configuration's default).
  int server_threads = 0;
  int dispatch_threads = 0;
  int dispatch_batch = 0;
  // A real deployment.
  std::string url;
  std::string ca;
  std::string api_key_file;
  std::string citizens_file;
  std::string sms_file;
  std::string gateway_secret_file;
  std::string short_code = kShortCode;
  std::string purpose = "account-opening";
  std::string scopes = "name,date_of_birth";
  std::string hsm_module = kModule;
  std::string hsm_token;
  std::string hsm_pin_file;
};

std::vector<std::string> SplitList(const std::string& text, char separator) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(text);
  while (std::getline(in, item, separator)) {
    while (!item.empty() && (item.back() == '\r' || item.back() == ' ')) item.pop_back();
    while (!item.empty() && item.front() == ' ') item.erase(0, 1);
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path);
  if (!in) Die("cannot read " + path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty() && line.front() != '#') lines.push_back(line);
  }
  return lines;
}

Options ParseOptions(int argc, char** argv) {
  Options o;
  const std::string usage =
      "usage: flow_bench [--clients N] [--seconds S] [--rate R] [--open-fraction F] "
      "[--citizens N] [--providers P] [--json FILE] [--server-threads N] "
      "[--dispatch-threads N] [--dispatch-batch N] [--class-rounds N]\n"
      "       flow_bench --url URL --ca FILE --api-key-file FILE --citizens-file FILE "
      "--sms-file FILE [--gateway-secret-file FILE] [--short-code C] [--purpose P] "
      "[--scopes a,b] [--hsm-token T --hsm-pin-file F [--hsm-module SO]] [--clients N] "
      "[--seconds S] [--rate R] [--open-fraction F] [--json FILE]";
  const std::map<std::string, std::string*> strings = {
      {"--json", &o.json_path},
      {"--url", &o.url},
      {"--ca", &o.ca},
      {"--api-key-file", &o.api_key_file},
      {"--citizens-file", &o.citizens_file},
      {"--sms-file", &o.sms_file},
      {"--gateway-secret-file", &o.gateway_secret_file},
      {"--short-code", &o.short_code},
      {"--purpose", &o.purpose},
      {"--scopes", &o.scopes},
      {"--hsm-module", &o.hsm_module},
      {"--hsm-token", &o.hsm_token},
      {"--hsm-pin-file", &o.hsm_pin_file}};
  const std::map<std::string, int*> ints = {{"--clients", &o.clients},
                                            {"--citizens", &o.citizens},
                                            {"--providers", &o.providers},
                                            {"--server-threads", &o.server_threads},
                                            {"--dispatch-threads", &o.dispatch_threads},
                                            {"--dispatch-batch", &o.dispatch_batch},
                                            {"--class-rounds", &o.class_rounds}};
  const std::map<std::string, double*> doubles = {
      {"--seconds", &o.seconds}, {"--rate", &o.rate}, {"--open-fraction", &o.open_fraction}};
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) Die(usage);
    const char* value = argv[++i];
    if (const auto it = strings.find(arg); it != strings.end()) {
      *it->second = value;
    } else if (const auto at = ints.find(arg); at != ints.end()) {
      *at->second = std::atoi(value);
    } else if (const auto dt = doubles.find(arg); dt != doubles.end()) {
      *dt->second = std::atof(value);
    } else {
      Die(usage);
    }
  }
  if (o.clients < 1 || o.seconds <= 0 || o.rate < 0 || o.open_fraction < 0 || o.citizens < 1 ||
      o.providers < 0 || o.server_threads < 0 || o.dispatch_threads < 0 || o.dispatch_batch < 0 ||
      o.class_rounds < 0) {
    Die(usage);
  }
  if (o.providers == 0) o.providers = std::max(10, o.clients);
  if (!o.url.empty() &&
      (o.ca.empty() || o.api_key_file.empty() || o.citizens_file.empty() || o.sms_file.empty())) {
    Die("--url needs --ca, --api-key-file, --citizens-file and --sms-file\n" + usage);
  }
  return o;
}

// Runs the phases and prints and writes the results; `bound` may be absent (remote deployment
// whose HSM is not reachable from here).
void Measure(Bench& bench, const Options& options, hsm::Pkcs11Hsm* layer, int server_threads,
             const CitizenClasses* classes = nullptr) {
  std::vector<PhaseResult> phases;
  double closed_rate = 0;
  if (options.rate <= 0) {
    phases.push_back(RunPhase(bench, options.clients, options.seconds, 0));
    PrintPhase(phases.back());
    closed_rate = phases.back().flows_per_s;
  }
  double open_rate = options.rate;
  if (open_rate <= 0 && options.open_fraction > 0) open_rate = closed_rate * options.open_fraction;
  if (open_rate > 0) {
    phases.push_back(RunPhase(bench, options.clients, options.seconds, open_rate));
    PrintPhase(phases.back());
  }

  std::vector<ClassLatency> by_class;
  if (classes != nullptr) {
    by_class = MeasureClasses(bench, *classes, options.class_rounds);
    std::printf(
        "\nPOST /v1/consents by citizen class (one client, %d interleaved requests per "
        "class):\n  %-14s %9s %9s %9s %7s\n",
        options.class_rounds, "class", "p50 ms", "p90 ms", "p99 ms", "errors");
    for (const ClassLatency& c : by_class) {
      std::printf("  %-14s %9.3f %9.3f %9.3f %7ld\n", c.name.c_str(), c.summary.p50, c.p90,
                  c.summary.p99, c.errors);
    }
    std::printf(
        "  medians within %.1f %% of each other (target: 3 %%); the two enrolled sets "
        "differ by %.1f %% (noise)\n",
        100 * MedianSpread(by_class),
        by_class.size() == kClasses ? 100 * MedianSpread({by_class[0], by_class[4]}) : 0.0);
  }

  std::printf("\nHSM operations per flow (%d layer calls; Seal is 2 PKCS#11 operations):\n",
              kFlowOpCount);
  for (const char* op : kFlowOps) std::printf("  %s\n", op);
  HsmBound bound;
  if (layer != nullptr) {
    bound = MeasureHsmBound(*layer, options.clients, std::min(options.seconds, 5.0));
    std::printf("HSM-bound: %.1f flows/s (%.0f layer calls/s) on %d threads\n", bound.flows_per_s,
                bound.ops_per_s, options.clients);
  } else {
    std::printf("HSM-bound: not measured (no --hsm-token); run hsm_bench on the appliance\n");
  }
  auto ratio = [&](double rate) { return bound.flows_per_s > 0 ? rate / bound.flows_per_s : 0.0; };

  std::printf("\n%-8s %8s %10s %7s %9s %9s %9s %9s %8s\n", "mode", "clients", "flows/s", "errors",
              "p50 ms", "p95 ms", "p99 ms", "max ms", "/HSM");
  json out_phases = json::array();
  for (const PhaseResult& r : phases) {
    const Summary& f = r.steps[kFlow];
    std::printf("%-8s %8d %10.1f %7ld %9.2f %9.2f %9.2f %9.2f %8.2f\n", r.mode.c_str(), r.clients,
                r.flows_per_s, r.errors, f.p50, f.p95, f.p99, f.max, ratio(r.flows_per_s));
    json phase = PhaseJson(r);
    phase["ratio_to_hsm_bound"] = ratio(r.flows_per_s);
    out_phases.push_back(phase);
  }
  if (layer != nullptr) std::printf("%-8s %8d %10.1f\n", "hsm", options.clients, bound.flows_per_s);

  if (!options.json_path.empty()) {
    json ops = json::array();
    for (const char* op : kFlowOps) ops.push_back(op);
    json out = {{"target", options.url.empty() ? "in-process" : options.url},
                {"clients", options.clients},
                {"seconds", options.seconds},
                {"citizens", bench.people.size()},
                {"providers", bench.keys.size()},
                {"server_threads", server_threads},
                {"phases", out_phases},
                {"hsm_ops_per_flow", ops},
                {"hsm_ops_per_flow_count", kFlowOpCount},
                {"hsm_bound_flows_per_s", bound.flows_per_s},
                {"sms_messages_seen", bench.codes->messages()}};
    json classes_json = json::object();
    for (const ClassLatency& c : by_class) {
      json summary = SummaryJson(c.summary);
      summary["p90_ms"] = c.p90;
      summary["errors"] = c.errors;
      classes_json[c.name] = summary;
    }
    if (!by_class.empty()) {
      out["request_latency_by_class"] = classes_json;
      out["request_median_spread"] = MedianSpread(by_class);
    }
    std::ofstream(options.json_path) << out.dump(2) << '\n';
  }
}

// Against a deployment: citizens "cnic,+92..." per line (enrolled already, or enrolled here
// through the gateway webhook when --gateway-secret-file is given), API keys one per line.
int RunRemote(const Options& options) {
  Poco::URI uri(options.url);
  if (uri.getScheme() != "https" || uri.getHost().empty()) Die("--url must be https://host[:port]");
  Bench bench;
  bench.host = uri.getHost();
  bench.port = uri.getPort();
  bench.context = new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, "", "", options.ca,
                                         Poco::Net::Context::VERIFY_RELAXED, 9, false);
  bench.keys = ReadLines(options.api_key_file);
  if (bench.keys.empty()) Die("no API key in " + options.api_key_file);
  for (const std::string& line : ReadLines(options.citizens_file)) {
    const auto fields = SplitList(line, ',');
    if (fields.size() < 2) Die("citizens file: expected \"cnic,phone\", got: " + line);
    bench.people.push_back({fields[0], fields[1]});
  }
  if (bench.people.empty()) Die("no citizen in " + options.citizens_file);
  bench.purpose = options.purpose;
  bench.scopes = SplitList(options.scopes, ',');
  CodeIndex codes(options.sms_file);
  CitizenPool citizens(static_cast<int>(bench.people.size()));
  bench.codes = &codes;
  bench.citizens = &citizens;
  std::printf("flow_bench: %s, %zu API keys, %zu citizens, codes from %s\n", options.url.c_str(),
              bench.keys.size(), bench.people.size(), options.sms_file.c_str());
  if (!options.gateway_secret_file.empty()) {
    const auto secret = ReadLines(options.gateway_secret_file);
    if (secret.empty()) Die("empty " + options.gateway_secret_file);
    const auto start = SteadyClock::now();
    Enrol(bench, static_cast<int>(bench.people.size()), std::min(options.clients, 16),
          options.short_code, secret.front());
    std::printf("enrolled %zu citizens in %.1f s\n", bench.people.size(),
                std::chrono::duration<double>(SteadyClock::now() - start).count());
  }
  std::unique_ptr<hsm::Pkcs11Hsm> layer;
  if (!options.hsm_token.empty()) {
    hsm::HsmOptions hsm_options;
    hsm_options.module_path = options.hsm_module;
    hsm_options.token_label = options.hsm_token;
    hsm_options.pin = hsm::PinSource::File(options.hsm_pin_file);
    auto opened = hsm::Pkcs11Hsm::Open(hsm_options);
    if (!opened.ok()) Die(opened.error().message());
    layer = std::move(opened).value();
  }
  Measure(bench, options, layer.get(), 0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = ParseOptions(argc, argv);
  Poco::Net::initializeSSL();
  if (!options.url.empty()) return RunRemote(options);

  char pattern[] = "/tmp/ijazat-flow-bench-XXXXXX";
  if (mkdtemp(pattern) == nullptr) Die("mkdtemp failed");
  const std::filesystem::path dir = pattern;
  std::filesystem::create_directories(dir / "tokens");
  std::ofstream(dir / "softhsm2.conf") << "directories.tokendir = " << (dir / "tokens").string()
                                       << "\nobjectstore.backend = file\nlog.level = ERROR\n";
  setenv("SOFTHSM2_CONF", (dir / "softhsm2.conf").c_str(), 1);
  WriteFile(dir / "user.pin", kPin);

  const SecretString so_pin{std::string("flow-bench-so-pin")};
  const SecretString user_pin{std::string(kPin)};
  if (auto status = hsm::InitToken(kModule, kToken, so_pin, user_pin); !status.ok()) {
    Die(status.error().message());
  }
  {
    hsm::HsmOptions hsm_options;
    hsm_options.module_path = kModule;
    hsm_options.token_label = kToken;
    hsm_options.pin = hsm::PinSource::File((dir / "user.pin").string());
    auto opened = hsm::Pkcs11Hsm::Open(hsm_options);
    if (!opened.ok()) Die(opened.error().message());
    for (const hsm::KeyKind kind : hsm::kAllKeyKinds) {
      if (auto created = (*opened)->GenerateKey(kind); !created.ok()) {
        Die(created.error().message());
      }
    }
  }
  if (RunCommand("cd " + dir.string() +
                 " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2"
                 " -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1"
                 " -keyout server.key -out server.crt >/dev/null 2>&1") != 0) {
    Die("openssl req failed");
  }
  WriteFile(dir / "policy.yaml", Policy(options.providers));
  WriteFile(dir / "gateway.secret", kGatewaySecret);
  // Past the flows' citizens: those of the latency-by-class phase.
  WriteFile(dir / "registry.csv", RegistryCsv(options.citizens + kClasses * kClassCitizens));
  if (auto imported = appliance::ImportRegistryCsv((dir / "registry.db").string(),
                                                   (dir / "registry.csv").string());
      !imported.ok()) {
    Die(imported.error().message());
  }

  appliance::Config config;
  config.issuer = "https://ijazat.bench";
  config.server.listen = "127.0.0.1:0";
  config.tls.certificate = (dir / "server.crt").string();
  config.tls.key = (dir / "server.key").string();
  config.hsm.module = kModule;
  config.hsm.token = kToken;
  config.hsm.pin_file = (dir / "user.pin").string();
  config.store_path = (dir / "ijazat.db").string();
  config.registry_path = (dir / "registry.db").string();
  config.policy_path = (dir / "policy.yaml").string();
  config.sms.short_code = kShortCode;
  config.sms.inbound_secret_file = (dir / "gateway.secret").string();
  config.sms.sender = "file";
  config.sms.file = (dir / "sms.jsonl").string();
  // The benchmark reuses each citizen many times an hour; the anti-pumping caps would stop
  // its codes, and they are not what is measured.
  config.sms.caps.per_number_per_hour = 1000;
  config.sms.caps.per_number_per_day = 10000;
  config.sms.caps.per_cnic_per_hour = 1000;
  config.sms.caps.per_cnic_per_day = 10000;
  config.receipt.policy_url = "https://ijazat.bench/policy";
  config.log_file = (dir / "ijazatd.log").string();
  if (options.server_threads > 0) config.server.threads = options.server_threads;
  if (options.dispatch_threads > 0) config.sms.dispatch_threads = options.dispatch_threads;
  if (options.dispatch_batch > 0) config.sms.dispatch_batch = options.dispatch_batch;
  appliance::ApplianceOptions appliance_options;  // system clock, dispatcher started
  auto started = appliance::Appliance::Start(config, appliance_options);
  if (!started.ok()) Die(started.error().message());
  std::unique_ptr<appliance::Appliance> app = std::move(started).value();

  CodeIndex codes(config.sms.file);
  CitizenPool citizens(options.citizens);
  Bench bench;
  bench.port = app->port();
  bench.context =
      new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, "", "", config.tls.certificate,
                             Poco::Net::Context::VERIFY_RELAXED, 9, false);
  for (int p = 0; p < options.providers; ++p) bench.keys.push_back(ProviderKey(p));
  for (int i = 0; i < options.citizens; ++i)
    bench.people.push_back({CitizenCnic(i), CitizenPhone(i)});
  bench.codes = &codes;
  bench.citizens = &citizens;

  std::printf(
      "flow_bench: appliance on 127.0.0.1:%d (server threads %d, dispatcher threads %d, batch "
      "%d), %d providers, %d citizens; working directory %s\n",
      bench.port, config.server.threads, config.sms.dispatch_threads, config.sms.dispatch_batch,
      options.providers, options.citizens, dir.c_str());
  const auto enrol_start = SteadyClock::now();
  Enrol(bench, options.citizens, std::min(options.clients, 16), kShortCode, kGatewaySecret);
  std::printf("enrolled %d citizens in %.1f s\n", options.citizens,
              std::chrono::duration<double>(SteadyClock::now() - enrol_start).count());

  // The enrolment replies go through the same outbox: let the dispatcher drain them first.
  const auto drain_deadline = SteadyClock::now() + std::chrono::seconds(120);
  while (codes.messages() < static_cast<std::uint64_t>(options.citizens) &&
         SteadyClock::now() < drain_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::printf("outbox drained after %.1f s (%llu enrolment replies)\n",
              std::chrono::duration<double>(SteadyClock::now() - enrol_start).count(),
              static_cast<unsigned long long>(codes.messages()));

  CitizenClasses classes;
  if (options.class_rounds > 0) {
    std::vector<std::string> provider_ids;
    for (int p = options.providers; p < options.providers + kClassProviders; ++p) {
      classes.provider_keys.push_back(ProviderKey(p));
      char id[32];
      std::snprintf(id, sizeof id, "bench-provider-%04d", p);
      provider_ids.emplace_back(id);
    }
    // Two sets of enrolled citizens: the difference between them is the measurement's noise.
    const char* names[] = {"enrolled", "not enrolled", "locked", "blocking", "enrolled (2)"};
    for (int k = 0; k < kClasses; ++k) {
      std::vector<Citizen> people;
      for (int i = 0; i < kClassCitizens; ++i) {
        const int n = options.citizens + k * kClassCitizens + i;
        people.push_back({CitizenCnic(n), CitizenPhone(n)});
      }
      classes.classes.emplace_back(names[k], std::move(people));
    }
    Client client(bench.host, bench.port, bench.context);
    auto text = [&](const Citizen& c, const std::string& body) {
      const Response r =
          client.Send("POST", "/v1/sms/inbound",
                      json{{"from", c.phone}, {"to", kShortCode}, {"text", body}}.dump(), "",
                      "X-Ijazat-Gateway-Secret", kGatewaySecret);
      if (r.status != 200) Die("class set-up: " + std::to_string(r.status) + " " + r.body.dump());
    };
    for (int k : {0, 2, 3, 4}) {
      for (const Citizen& c : classes.classes[static_cast<std::size_t>(k)].second) {
        text(c, c.cnic);
        if (k == 2) text(c, "LOCK");
        if (k == 3) {
          for (const std::string& id : provider_ids) text(c, "BLOCK " + id);
        }
      }
    }
  }

  Measure(bench, options, &app->hsm(), config.server.threads,
          options.class_rounds > 0 ? &classes : nullptr);
  app->Stop();
  app.reset();
  std::filesystem::remove_all(dir);
  return 0;
}
