// A whole appliance for one test: a fresh SoftHSM token with every key, self-signed TLS
// material, a test policy, the demo registry, SQLite files and the file SMS sink, all in a
// temporary directory; the server on 127.0.0.1 port 0; the clock injected.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "appliance.h"
#include "clock.h"
#include "config.h"
#include "ijazat/hsm/fault_injection.h"
#include "support/softhsm_token.h"

struct sqlite3;

namespace ijazat::appliance::testing {

inline constexpr char kBankKey[] = "ijz_test_bank_key_0000000000000000";
inline constexpr char kTelcoKey[] = "ijz_test_telco_key_000000000000000";
inline constexpr char kSuspendedKey[] = "ijz_test_suspended_key_0000000000";
inline constexpr char kUnknownKey[] = "ijz_test_unknown_key_00000000000000";
inline constexpr char kGatewaySecret[] = "gateway-secret-for-tests-0123456789";
inline constexpr char kDlrSecret[] = "test-delivery-report-secret-0123456789";
inline constexpr char kShortCode[] = "8009";
// In the demo registry (appliance/demo/registry.csv).
inline constexpr char kCnic[] = "3520212345671";
inline constexpr char kPhone[] = "+923001234567";

struct HttpResult {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  nlohmann::json json;  // parsed body, or null
  std::string header(const std::string& lower_case_name) const {
    const auto it = headers.find(lower_case_name);
    return it == headers.end() ? "" : it->second;
  }
};

struct SentSms {
  std::string to;
  std::string text;
};

// Holds an SQLite database locked, as an import that never commits would: BEGIN EXCLUSIVE on
// a connection of its own, so that the appliance's reads of the file (the identity registry's
// rollback journal lets no reader past an exclusive lock) fail for real once their busy
// timeout (5 s) runs out. Released when it goes out of scope.
class DatabaseLock {
 public:
  explicit DatabaseLock(const std::string& path);
  ~DatabaseLock();
  DatabaseLock(const DatabaseLock&) = delete;
  DatabaseLock& operator=(const DatabaseLock&) = delete;

  bool held() const { return held_; }
  void Release();

 private:
  sqlite3* db_ = nullptr;
  bool held_ = false;
};

class ApplianceTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Starts (or restarts) the appliance on the fixture's files.
  void StartAppliance();
  void StopAppliance();

  // HTTPS to the appliance. `api_key` empty: no Authorization header.
  HttpResult Request(const std::string& method, const std::string& path, const std::string& body,
                     const std::string& api_key,
                     const std::string& content_type = "application/json",
                     const std::map<std::string, std::string>& headers = {});
  HttpResult Post(const std::string& path, const nlohmann::json& body,
                  const std::string& api_key = kBankKey) {
    return Request("POST", path, body.dump(), api_key);
  }
  HttpResult Get(const std::string& path, const std::string& api_key = kBankKey) {
    return Request("GET", path, "", api_key);
  }

  // The SMS gateway posting a message from `from` to the short code.
  HttpResult InboundSms(const std::string& from, const std::string& text);
  // Everything the file sink received so far (the dispatcher is driven until idle first).
  std::vector<SentSms> SentMessages();
  // The last code sent to `to`, read from the sink.
  std::optional<std::string> LastCodeFor(const std::string& to);

  // Enrols kPhone for kCnic, asks for consent for demo purposes, and confirms with the code.
  std::string RequestConsentId(const std::string& cnic = kCnic,
                               const std::string& api_key = kBankKey);
  nlohmann::json Grant(const std::string& consent_id, const std::string& phone = kPhone);

  // Imports subscriber records (CSV with the header cnic,msisdn) into the registry: the
  // numbers of each CNIC in it replace those it had. The appliance reads them at once.
  void ImportSubscribers(const std::string& csv);

  // Room in config_ for many replies to one number (before StartAppliance): replies count
  // against the number's SMS caps, and suites about commands send more of them in an hour than
  // a citizen would (SmsLimitsTest covers the caps).
  void MakeRoomForReplies();
  // Restarts the appliance with MakeRoomForReplies().
  void RestartWithRoomForReplies();

  // Gives delivery reports their secret (kDlrSecret) in config_ (before StartAppliance).
  void EnableDeliveryReports();

  // Rewrites the policy file (before StartAppliance or followed by Reload()).
  void WritePolicy(const std::string& yaml);
  static std::string TestPolicy();

  ijazat::testing::SoftHsmToken token_{"ijazat-app-test"};
  std::filesystem::path dir_;
  Config config_;
  ManualClock clock_{1767225600};  // 2026-01-01T00:00:00Z
  std::shared_ptr<hsm::FaultInjector> faults_ = std::make_shared<hsm::FaultInjector>();
  std::unique_ptr<Appliance> appliance_;
};

}  // namespace ijazat::appliance::testing
