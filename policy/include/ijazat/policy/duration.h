// Durations as people write them in policy files: "90s", "5m", "24h", "1h30m", "7d".
//
// Pure functions, thread safe.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace ijazat::policy {

// Accepts one or more <digits><unit> groups with units d, h, m, s, each unit at most once and
// in that order ("1h30m", not "30m1h"). A bare number is rejected on purpose: "300" could mean
// seconds or minutes, and a policy must not be ambiguous. Returns nullopt on anything else,
// including values above 10 years.
std::optional<std::chrono::seconds> ParseDuration(std::string_view text);

// The shortest spelling that ParseDuration reads back to the same value: 300s -> "5m",
// 5400s -> "1h30m", 0s -> "0s".
std::string FormatDuration(std::chrono::seconds duration);

}  // namespace ijazat::policy
