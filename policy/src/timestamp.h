// RFC 3339 timestamps in UTC, the only form a policy file accepts: 2025-01-31T00:00:00Z.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace ijazat::policy::internal {

// Exactly YYYY-MM-DDTHH:MM:SSZ with a real calendar date, years 2000-2999. No offsets and no
// fractions: a policy's validity window should be read the same way by everyone.
std::optional<std::chrono::sys_seconds> ParseTimestamp(std::string_view text);

std::string FormatTimestamp(std::chrono::sys_seconds time);

}  // namespace ijazat::policy::internal
