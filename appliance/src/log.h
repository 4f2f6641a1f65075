// Structured logs: one JSON object per line, with a timestamp, a level and an event name.
// Callers pass only non-secret fields: ids, provider ids, outcomes, masked or keyed-hashed
// identifiers; never an OTP, a PIN, a key, a CNIC or a phone number in clear. Thread safe.
#pragma once

#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

namespace ijazat::appliance {

class Logger {
 public:
  // Empty path: standard error.
  explicit Logger(const std::string& path = "");
  ~Logger();
  Logger(const Logger&) = delete;
  Logger& operator=(const Logger&) = delete;

  void Info(const std::string& event, nlohmann::json fields = nlohmann::json::object());
  void Warn(const std::string& event, nlohmann::json fields = nlohmann::json::object());
  void Error(const std::string& event, nlohmann::json fields = nlohmann::json::object());

 private:
  void Write(const char* level, const std::string& event, nlohmann::json fields);
  std::FILE* out_;
  bool owned_;
  std::mutex mutex_;
};

}  // namespace ijazat::appliance
