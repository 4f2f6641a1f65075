#include "ijazat/policy/duration.h"

#include <array>
#include <cstdint>

namespace ijazat::policy {
namespace {

struct Unit {
  char symbol;
  std::int64_t seconds;
};

// Largest first: the order in which units must appear.
constexpr std::array<Unit, 4> kUnits = {{{'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}}};
constexpr std::int64_t kMaxSeconds = 10LL * 366 * 86400;

}  // namespace

std::optional<std::chrono::seconds> ParseDuration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  std::int64_t total = 0;
  std::size_t next_unit = 0;  // units must come in kUnits order, each at most once
  std::size_t i = 0;
  while (i < text.size()) {
    std::int64_t value = 0;
    std::size_t digits = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      // Ten digits already exceed kMaxSeconds in any unit; stop before overflow.
      if (++digits > 10) return std::nullopt;
      value = value * 10 + (text[i] - '0');
      ++i;
    }
    if (digits == 0 || i == text.size()) return std::nullopt;
    const char symbol = text[i++];
    bool matched = false;
    for (; next_unit < kUnits.size(); ++next_unit) {
      if (kUnits[next_unit].symbol == symbol) {
        total += value * kUnits[next_unit].seconds;
        ++next_unit;
        matched = true;
        break;
      }
    }
    if (!matched || total > kMaxSeconds) return std::nullopt;
  }
  return std::chrono::seconds(total);
}

std::string FormatDuration(std::chrono::seconds duration) {
  std::int64_t remaining = duration.count();
  if (remaining <= 0) return "0s";
  std::string out;
  for (const Unit& unit : kUnits) {
    const std::int64_t count = remaining / unit.seconds;
    if (count > 0) {
      out += std::to_string(count);
      out += unit.symbol;
      remaining -= count * unit.seconds;
    }
  }
  return out;
}

}  // namespace ijazat::policy
