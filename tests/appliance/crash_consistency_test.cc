// Crash consistency of the real ijazatd binary: client threads drive whole flows (request, code
// from the SMS sink, confirm, verify) over HTTPS while the process is killed with SIGKILL at
// seeded random moments. After every restart each consent acknowledged to a client is still
// there in a state consistent with the acknowledgement; at the end of each epoch every issued
// token verifies offline against the JWKS, the store passes its integrity and audit-chain
// checks, and no outbox message was handed to the SMS sink twice.
//
// The per-CNIC SMS cap (at most 20 an hour, by policy) bounds the flows one database can carry,
// so the run is split into epochs, each on a fresh store and sink with the same HSM token.
// IJAZAT_CRASH_CYCLES sets the number of kill cycles (default 50; scripts/crash-loop.sh).
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "appliance_fixture.h"
#include "ijazat/verifier/verifier.h"
#include "store.h"
#include "support/temp_dir.h"

namespace ijazat::appliance::testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kThreads = 3;
constexpr int kDefaultCycles = 50;
// 1 enrolment SMS + 2 per flow (code, granted notice) stays within 20 an hour.
constexpr int kFlowsPerCitizen = 9;
constexpr int kMaxUses = 2;
constexpr std::uint32_t kSeed = 20261126;

int CycleCount() {
  const char* value = std::getenv("IJAZAT_CRASH_CYCLES");
  if (value == nullptr || *value == '\0') return kDefaultCycles;
  const int cycles = std::atoi(value);
  return cycles > 0 ? cycles : kDefaultCycles;
}

// One line of the file SMS sink.
struct SinkLine {
  std::int64_t id = 0;
  std::string to;
  std::string text;
};

std::vector<SinkLine> ReadSink(const std::string& path) {
  std::vector<SinkLine> lines;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const auto json = nlohmann::json::parse(line, nullptr, false);
    if (!json.is_object() || !json.contains("id") || !json.contains("to") ||
        !json.contains("text")) {
      continue;  // a line cut by SIGKILL
    }
    lines.push_back({json["id"].get<std::int64_t>(), json["to"].get<std::string>(),
                     json["text"].get<std::string>()});
  }
  return lines;
}

// The code in an OTP message ("Ijazat code 123456: ..."), or "".
std::string CodeIn(const std::string& text) {
  static constexpr char kPrefix[] = "Ijazat code ";
  if (text.rfind(kPrefix, 0) != 0) return "";
  const auto end = text.find(':');
  return end == std::string::npos ? "" : text.substr(sizeof kPrefix - 1, end - sizeof kPrefix + 1);
}

std::vector<std::string> CodesTo(const std::string& sink, const std::string& to) {
  std::vector<std::string> codes;
  for (const auto& line : ReadSink(sink)) {
    if (line.to != to) continue;
    if (auto code = CodeIn(line.text); !code.empty()) codes.push_back(code);
  }
  return codes;
}

struct Citizen {
  std::string cnic;
  std::string local_phone;  // as the gateway posts it: 03xxxxxxxxx
  std::string e164;         // as the sink shows it: +923xxxxxxxxx
  int flows = 0;
};

// What a client was told.
struct Ack {
  std::string id;
  bool granted = false;  // 200 to confirm
  std::string token;
  std::string receipt;
  int uses = 0;  // 200s to verify
};

struct Counters {
  std::atomic<int> requested{0};
  std::atomic<int> granted{0};
  std::atomic<int> verified{0};
  std::atomic<int> no_code{0};
  std::atomic<int> wrong_code{0};
  std::atomic<int> refused{0};
  std::atomic<int> cut{0};  // a request that got no answer (the kill)
};

class CrashConsistencyTest : public ApplianceTest {
 protected:
  void SetUp() override {
    ApplianceTest::SetUp();
    StopAppliance();  // the binary takes over the same HSM token and files
    std::string policy = TestPolicy();
    for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
             {"max_attempts: 3", "max_attempts: 5"},
             {"failures_per_cnic_per_day: 10", "failures_per_cnic_per_day: 100"},
             {"sms_per_cnic_per_hour: 5", "sms_per_cnic_per_hour: 20"},
             {"max_uses: 2", "max_uses: " + std::to_string(kMaxUses)}}) {
      const auto at = policy.find(from);
      ASSERT_NE(at, std::string::npos) << from;
      policy.replace(at, from.size(), to);
    }
    WritePolicy(policy);
    config_file_ = dir_ / "crash-ijazatd.yaml";
    context_ =
        new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, "", "", config_.tls.certificate,
                               Poco::Net::Context::VERIFY_RELAXED, 9, false);
    std::ifstream registry(std::string(IJAZAT_SOURCE_DIR) + "/appliance/demo/registry.csv");
    std::string line;
    std::getline(registry, line);  // header
    while (std::getline(registry, line)) {
      const std::string cnic = line.substr(0, line.find(','));
      if (cnic.size() != 13) continue;
      const int n = static_cast<int>(citizens_.size());
      char phone[16];
      std::snprintf(phone, sizeof phone, "0300%07d", 5550000 + n);
      citizens_.push_back({cnic, phone, std::string("+92") + (phone + 1), 0});
    }
    ASSERT_GE(citizens_.size(), static_cast<std::size_t>(kThreads));
    // Each citizen's number is bound to the CNIC by the subscriber records.
    std::string subscribers = "cnic,msisdn\n";
    for (const auto& citizen : citizens_) subscribers += citizen.cnic + "," + citizen.e164 + "\n";
    ImportSubscribers(subscribers);
  }

  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

  void StartEpoch(int epoch) {
    // A new, empty store on the same token: the token remembers the last audit head signed for
    // the previous store, so the first start on the new one is a restore the operator accepts.
    new_store_ = epoch > 0;
    store_path_ = (dir_ / ("crash-" + std::to_string(epoch) + ".db")).string();
    sink_path_ = (dir_ / ("crash-sms-" + std::to_string(epoch) + ".jsonl")).string();
    std::ofstream(config_file_, std::ios::trunc)
        << "issuer: https://ijazat.test\n"
        << "server: {listen: \"127.0.0.1:0\", threads: 8, request_timeout: 5s}\n"
        << "tls: {certificate: " << config_.tls.certificate << ", key: " << config_.tls.key << "}\n"
        << "hsm: {module: " << config_.hsm.module << ", token: " << config_.hsm.token
        << ", pin_file: " << config_.hsm.pin_file << "}\n"
        << "store: {path: " << store_path_ << "}\n"
        << "registry: {path: " << config_.registry_path << "}\n"
        << "policy: " << config_.policy_path << "\n"
        << "sms: {short_code: \"8009\", inbound_secret_file: " << config_.sms.inbound_secret_file
        << ", sender: file, file: " << sink_path_ << "}\n"
        << "log: {file: " << config_.log_file << "}\n";
    for (auto& citizen : citizens_) citizen.flows = 0;
    acks_.clear();
    enrolled_ = false;
  }

  // Starts the binary; returns its port, or 0 if it did not come up within 20 s.
  int Spawn() {
    const std::string binary = ijazat::testing::BinaryPath("ijazatd");
    const std::string port_file = (dir_ / "port").string();
    const std::string output = (dir_ / "ijazatd.out").string();
    std::filesystem::remove(port_file);
    const bool new_store = new_store_;
    new_store_ = false;
    pid_ = fork();
    if (pid_ == 0) {
      const int fd = ::open(output.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
      execl(binary.c_str(), binary.c_str(), "--config", config_file_.c_str(), "--port-file",
            port_file.c_str(), "--allow-root",
            new_store ? "--accept-restored-audit" : static_cast<char*>(nullptr),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 2000; ++i) {
      std::ifstream in(port_file);
      int port = 0;
      if (in >> port && port > 0) return port;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return 0;
  }

  // The end of what ijazatd wrote to its standard error (why it did not start).
  std::string OutputTail() {
    std::ifstream in(dir_ / "ijazatd.out");
    const std::string all((std::istreambuf_iterator<char>(in)), {});
    return all.size() > 2000 ? all.substr(all.size() - 2000) : all;
  }

  void Kill() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  // One HTTPS request; nullopt when the connection failed or broke (the process died).
  std::optional<HttpResult> Call(int port, const std::string& method, const std::string& path,
                                 const std::string& body, const std::string& api_key,
                                 const std::map<std::string, std::string>& headers = {}) {
    try {
      Poco::Net::HTTPSClientSession session("127.0.0.1", static_cast<Poco::UInt16>(port), context_);
      session.setTimeout(Poco::Timespan(5, 0));
      Poco::Net::HTTPRequest request(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
      if (!api_key.empty()) request.set("Authorization", std::string("Bearer ") + api_key);
      for (const auto& [name, value] : headers) request.set(name, value);
      if (method == "POST") {
        request.setContentType("application/json");
        request.setContentLength64(static_cast<Poco::Int64>(body.size()));
      }
      session.sendRequest(request) << body;
      Poco::Net::HTTPResponse response;
      std::istream& in = session.receiveResponse(response);
      HttpResult result;
      result.status = static_cast<int>(response.getStatus());
      result.body.assign(std::istreambuf_iterator<char>(in), {});
      if (response.hasContentLength() &&
          static_cast<Poco::Int64>(result.body.size()) != response.getContentLength64()) {
        return std::nullopt;  // cut short
      }
      result.json = nlohmann::json::parse(result.body, nullptr, false);
      if (result.json.is_discarded()) result.json = nullptr;
      return result;
    } catch (const Poco::Exception&) {
      return std::nullopt;
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }

  void Enrol(int port) {
    for (const auto& citizen : citizens_) {
      const auto enrolled = Call(
          port, "POST", "/v1/sms/inbound",
          nlohmann::json{{"from", citizen.local_phone}, {"to", kShortCode}, {"text", citizen.cnic}}
              .dump(),
          "", {{"X-Ijazat-Gateway-Secret", kGatewaySecret}});
      ASSERT_TRUE(enrolled.has_value());
      ASSERT_EQ(enrolled->status, 200) << enrolled->body;
    }
    enrolled_ = true;
  }

  // Flows on this thread's citizens until `stop` or until the server stops answering.
  void Worker(int port, int thread, const std::atomic<bool>& stop) {
    // Each thread has its own citizens and moves to the next one with every flow, so that a
    // code sent late after a restart is rarely taken for a newer consent's.
    std::vector<Citizen*> mine;
    for (std::size_t i = static_cast<std::size_t>(thread); i < citizens_.size(); i += kThreads) {
      mine.push_back(&citizens_[i]);
    }
    while (!stop) {
      Citizen* citizen = nullptr;
      for (std::size_t tried = 0; tried < mine.size() && citizen == nullptr; ++tried) {
        Citizen* candidate = mine[cursor_[thread]++ % mine.size()];
        if (candidate->flows < kFlowsPerCitizen) citizen = candidate;
      }
      if (citizen == nullptr) return;  // this thread's budget for the epoch is spent
      ++citizen->flows;
      const std::size_t codes_before = CodesTo(sink_path_, citizen->e164).size();

      const auto created = Call(port, "POST", "/v1/consents",
                                nlohmann::json{{"cnic", citizen->cnic},
                                               {"purpose", "account-opening"},
                                               {"scopes", {"name", "date_of_birth"}}}
                                    .dump(),
                                kBankKey);
      if (!created) {
        ++counters_.cut;
        return;
      }
      if (created->status != 202 || !created->json.is_object() ||
          !created->json.contains("consent_id")) {
        ++counters_.refused;
        continue;
      }
      ++counters_.requested;
      const std::string id = created->json["consent_id"];
      std::size_t index;
      {
        const std::lock_guard lock(mutex_);
        Ack ack;
        ack.id = id;
        acks_.push_back(std::move(ack));
        index = acks_.size() - 1;
      }

      std::string code;
      for (const auto deadline = Clock::now() + std::chrono::seconds(3);
           !stop && Clock::now() < deadline;
           std::this_thread::sleep_for(std::chrono::milliseconds(5))) {
        const auto codes = CodesTo(sink_path_, citizen->e164);
        if (codes.size() > codes_before) {
          code = codes.back();
          break;
        }
      }
      if (code.empty()) {
        if (!stop) ++counters_.no_code;
        continue;
      }

      const auto confirmed = Call(port, "POST", "/v1/consents/" + id + "/confirm",
                                  nlohmann::json{{"otp", code}}.dump(), kBankKey);
      if (!confirmed) {
        ++counters_.cut;
        return;
      }
      if (confirmed->status != 200) {
        ++counters_.wrong_code;  // a late code of an earlier consent of this citizen
        continue;
      }
      ++counters_.granted;
      const std::string token = confirmed->json.value("consent_token", "");
      {
        const std::lock_guard lock(mutex_);
        acks_[index].granted = true;
        acks_[index].token = token;
        acks_[index].receipt = confirmed->json.value("receipt", "");
      }
      for (int use = 0; use < kMaxUses && !stop; ++use) {
        const auto verified = Call(port, "POST", "/v1/verifications",
                                   nlohmann::json{{"consent_token", token}}.dump(), kBankKey);
        if (!verified) {
          ++counters_.cut;
          return;
        }
        if (verified->status != 200) {
          ++counters_.refused;
          break;
        }
        ++counters_.verified;
        const std::lock_guard lock(mutex_);
        ++acks_[index].uses;
      }
    }
  }

  // Every acknowledged consent from `from` on is there in a state consistent with what the
  // client was told.
  void CheckAcknowledged(int port, std::size_t from, int cycle) {
    for (std::size_t i = from; i < acks_.size(); ++i) {
      const Ack& ack = acks_[i];
      const auto got = Call(port, "GET", "/v1/consents/" + ack.id, "", kBankKey);
      ASSERT_TRUE(got.has_value()) << "cycle " << cycle;
      ASSERT_EQ(got->status, 200) << "cycle " << cycle << ": acknowledged consent " << ack.id
                                  << " is missing: " << got->body;
      const std::string state = got->json.value("state", "");
      if (ack.granted) {
        EXPECT_TRUE(state == "granted" || state == "used" || state == "expired")
            << "cycle " << cycle << ": granted consent " << ack.id << " is " << state;
        if (state == "granted") {
          EXPECT_LE(got->json.value("uses_remaining", -1), kMaxUses - ack.uses)
              << "cycle " << cycle << ": acknowledged verifications of " << ack.id << " lost";
        }
        if (ack.uses == kMaxUses) {
          EXPECT_EQ(state, "used") << "cycle " << cycle << ": " << ack.id;
        }
      } else {
        EXPECT_TRUE(state == "pending" || state == "granted" || state == "used" ||
                    state == "expired" || state == "failed")
            << "cycle " << cycle << ": consent " << ack.id << " is " << state;
      }
    }
  }

  // Full checks at the end of an epoch; stops the binary with SIGTERM.
  void EndEpoch(int epoch, int cycle) {
    const int port = Spawn();
    ASSERT_GT(port, 0);
    CheckAcknowledged(port, 0, cycle);
    const auto jwks_reply = Call(port, "GET", "/.well-known/jwks.json", "", "");
    ASSERT_TRUE(jwks_reply.has_value());
    ASSERT_EQ(jwks_reply->status, 200);
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "epoch " << epoch;

    auto jwks = verifier::Jwks::Parse(jwks_reply->body);
    ASSERT_TRUE(jwks.ok()) << jwks.error().message();
    for (const Ack& ack : acks_) {
      if (!ack.granted) continue;
      ++tokens_checked_;
      verifier::VerifyOptions options;
      options.audience = "test-bank";
      options.issuer = "https://ijazat.test";
      const auto verified = verifier::Verify(ack.token, *jwks, options);
      EXPECT_TRUE(verified.ok()) << ack.id << ": " << verified.error().message();
      options.type = verifier::TokenType::kReceipt;
      const auto receipt = verifier::Verify(ack.receipt, *jwks, options);
      EXPECT_TRUE(receipt.ok()) << ack.id << " receipt: " << receipt.error().message();
    }

    auto store = OpenSqliteStore({store_path_});
    ASSERT_TRUE(store.ok()) << store.error().message();
    const auto integrity = (*store)->CheckIntegrity();
    EXPECT_TRUE(integrity.ok()) << integrity.error().message();
    const auto chain = (*store)->VerifyAuditChain();
    EXPECT_TRUE(chain.ok()) << chain.error().message();

    std::map<std::int64_t, int> sent;
    for (const auto& line : ReadSink(sink_path_)) {
      ++sms_sent_;
      // A consent's messages (its code, its grant notice) go out at most once; others
      // (enrolment replies) at least once, so only the former must never repeat.
      const bool consent_message =
          !CodeIn(line.text).empty() || line.text.find("you allowed") != std::string::npos;
      if (consent_message) ++sent[line.id];
    }
    for (const auto& [id, count] : sent) {
      if (count > 1) {
        ++sms_duplicated_;
        ADD_FAILURE() << "epoch " << epoch << ": outbox message " << id << " sent " << count
                      << " times";
      }
    }
    // One consent's code under two outbox ids (queued again after a kill) would escape the
    // check by id: count codes per consent, as the store records which consent each is for.
    // (Two consents may draw the same six digits for one number by chance; that is no fault.)
    std::map<std::string, int> codes_per_consent;
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open_v2(store_path_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* find = nullptr;
    ASSERT_EQ(
        sqlite3_prepare_v2(db, "SELECT consent_id FROM outbox WHERE id = ?", -1, &find, nullptr),
        SQLITE_OK);
    for (const auto& line : ReadSink(sink_path_)) {
      if (CodeIn(line.text).empty()) continue;
      sqlite3_reset(find);
      sqlite3_bind_int64(find, 1, line.id);
      ASSERT_EQ(sqlite3_step(find), SQLITE_ROW)
          << "epoch " << epoch << ": outbox message " << line.id << " was sent but is not stored";
      const auto* consent = reinterpret_cast<const char*>(sqlite3_column_text(find, 0));
      ++codes_per_consent[consent == nullptr ? "" : consent];
    }
    sqlite3_finalize(find);
    sqlite3_close(db);
    for (const auto& [consent, count] : codes_per_consent) {
      EXPECT_FALSE(consent.empty()) << "epoch " << epoch << ": a code for no consent";
      EXPECT_EQ(count, 1) << "epoch " << epoch << ": the code of consent " << consent << " sent "
                          << count << " times";
    }
  }

  std::filesystem::path config_file_;
  std::size_t cursor_[kThreads] = {};
  std::size_t last_cycle_start_ = 0;
  Poco::Net::Context::Ptr context_;
  std::vector<Citizen> citizens_;
  std::string store_path_;
  std::string sink_path_;
  bool enrolled_ = false;
  std::mutex mutex_;
  std::vector<Ack> acks_;
  Counters counters_;
  int tokens_checked_ = 0;
  int sms_sent_ = 0;
  int sms_duplicated_ = 0;
  pid_t pid_ = -1;
  bool new_store_ = false;
};

TEST_F(CrashConsistencyTest, SigkillAtRandomMoments_LosesNothingAcknowledged) {
  const int cycles = CycleCount();
  std::mt19937 rng(kSeed);
  std::uniform_int_distribution<int> kill_after_ms(0, 400);
  const auto started = Clock::now();
  int epoch = 0;
  int epochs = 0;
  StartEpoch(epoch);
  for (int cycle = 0; cycle < cycles; ++cycle) {
    const int port = Spawn();
    ASSERT_GT(port, 0) << "cycle " << cycle << ": ijazatd did not come up after a kill:\n"
                       << OutputTail();
    if (!enrolled_) {
      Enrol(port);
      if (HasFatalFailure()) return;
    }
    const std::size_t checked_from = last_cycle_start_;
    CheckAcknowledged(port, checked_from, cycle);
    if (HasFatalFailure()) return;
    last_cycle_start_ = acks_.size();

    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] { Worker(port, t, stop); });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(kill_after_ms(rng)));
    Kill();
    stop = true;
    for (auto& thread : threads) thread.join();

    bool spent = true;
    for (const auto& citizen : citizens_) spent = spent && citizen.flows >= kFlowsPerCitizen;
    if (spent || cycle + 1 == cycles) {
      EndEpoch(epoch, cycle);
      if (HasFatalFailure()) return;
      ++epochs;
      last_cycle_start_ = 0;
      StartEpoch(++epoch);
    }
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  std::cout << "[ crash    ] " << cycles << " SIGKILL cycles, " << epochs << " epochs, "
            << counters_.requested << " consents requested, " << counters_.granted << " granted, "
            << counters_.verified << " verifications, " << counters_.cut
            << " requests cut by a kill, " << counters_.no_code << " without a code, "
            << counters_.wrong_code << " late codes, " << counters_.refused << " refused, "
            << tokens_checked_ << " tokens verified offline, " << sms_sent_ << " SMS, "
            << sms_duplicated_ << " sent twice, " << seconds << " s\n";
  EXPECT_GT(counters_.granted.load(), 0);
  EXPECT_EQ(counters_.refused.load(), 0);
}

}  // namespace
}  // namespace ijazat::appliance::testing
