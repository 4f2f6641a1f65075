#include "log.h"

#include <chrono>
#include <ctime>

namespace ijazat::appliance {

Logger::Logger(const std::string& path) : out_(stderr), owned_(false) {
  if (!path.empty()) {
    if (std::FILE* file = std::fopen(path.c_str(), "ae"); file != nullptr) {
      out_ = file;
      owned_ = true;
    }
  }
}

Logger::~Logger() {
  if (owned_) std::fclose(out_);
}

void Logger::Info(const std::string& event, nlohmann::json fields) {
  Write("info", event, std::move(fields));
}
void Logger::Warn(const std::string& event, nlohmann::json fields) {
  Write("warn", event, std::move(fields));
}
void Logger::Error(const std::string& event, nlohmann::json fields) {
  Write("error", event, std::move(fields));
}

void Logger::Write(const char* level, const std::string& event, nlohmann::json fields) {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char stamp[64];
  std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(millis));
  nlohmann::json line = {{"ts", stamp}, {"level", level}, {"event", event}};
  if (fields.is_object()) {
    for (auto& [key, value] : fields.items()) line[key] = std::move(value);
  }
  const std::string text =
      line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  const std::lock_guard lock(mutex_);
  std::fwrite(text.data(), 1, text.size(), out_);
  std::fflush(out_);
}

}  // namespace ijazat::appliance
