// Helpers shared by the policy tests.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ijazat/policy/policy_loader.h"
#include "ijazat/policy/rate_limiter.h"
#include "support/temp_dir.h"

namespace ijazat::policy::testing {

// The example policy shipped in policy/example/ (and used by `make run`).
inline std::filesystem::path ExamplePolicyPath() {
  return ijazat::testing::TestDataPath("../../policy/example/policy.yaml");
}

inline std::string ExamplePolicyText() {
  return ijazat::testing::ReadFileOrDie(ExamplePolicyPath());
}

// Loads the example or fails the test.
inline std::shared_ptr<const PolicySet> LoadExample() {
  auto result = PolicyLoader().LoadFile(ExamplePolicyPath());
  if (!result.ok()) {
    ADD_FAILURE() << result.error().message();
    return nullptr;
  }
  return std::move(result).value();
}

// The ijazat-policy binary, quoted for a shell.
inline std::string CliPath() { return "'" + ijazat::testing::BinaryPath("ijazat-policy") + "'"; }

inline std::string Quoted(const std::filesystem::path& path) { return "'" + path.string() + "'"; }

// `text` with the first occurrence of `from` replaced by `to`; fails the test if absent.
inline std::string ReplaceOnce(std::string text, std::string_view from, std::string_view to) {
  const auto at = text.find(from);
  if (at == std::string::npos) {
    ADD_FAILURE() << "text to replace not found: " << from;
    return text;
  }
  return text.replace(at, from.size(), to);
}

// A manually advanced steady clock, safe to read from many threads.
class FakeClock : public Clock {
 public:
  std::chrono::steady_clock::time_point Now() const override {
    return std::chrono::steady_clock::time_point(
        std::chrono::nanoseconds(now_ns_.load(std::memory_order_relaxed)));
  }
  void Advance(std::chrono::nanoseconds by) { now_ns_.fetch_add(by.count()); }

 private:
  std::atomic<std::chrono::nanoseconds::rep> now_ns_{1'000'000'000'000};
};

// A minimal valid policy with one provider, for tests that need a small document.
inline constexpr std::string_view kMinimalPolicy = R"(version: 1
providers:
  - id: demo-bank
    display_name: Demo Bank
    status: active
    credentials:
      - type: api_key
        sha256: 54bd67e14abb2c86b58570285af9d2210ad3e0c0b7eaabc2acacc220e93eca24
    purposes:
      - id: account-opening
        sms_text: opening a bank account
        scopes: [name, father_name, date_of_birth]
)";

}  // namespace ijazat::policy::testing
