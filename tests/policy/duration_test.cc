#include "ijazat/policy/duration.h"

#include <gtest/gtest.h>

namespace ijazat::policy {
namespace {

using namespace std::chrono_literals;

TEST(PolicyDuration, ParsesUnitsPeopleWrite) {
  EXPECT_EQ(ParseDuration("90s"), 90s);
  EXPECT_EQ(ParseDuration("5m"), 5min);
  EXPECT_EQ(ParseDuration("24h"), 24h);
  EXPECT_EQ(ParseDuration("7d"), 7 * 24h);
  EXPECT_EQ(ParseDuration("1h30m"), 90min);
  EXPECT_EQ(ParseDuration("1d2h3m4s"), 26h + 3min + 4s);
  EXPECT_EQ(ParseDuration("0s"), 0s);
}

TEST(PolicyDuration, RejectsAmbiguousOrMalformedText) {
  for (const char* text : {"", "300", "5", "m", "5 m", " 5m", "5m ", "5M", "5min", "1.5h", "-5m",
                           "+5m", "5m1h", "5m5m", "1h1h", "5ms", "1w", "h5", "5mm"}) {
    EXPECT_EQ(ParseDuration(text), std::nullopt) << text;
  }
}

TEST(PolicyDuration, RejectsValuesThatWouldOverflow) {
  EXPECT_EQ(ParseDuration("99999999999999999999s"), std::nullopt);
  EXPECT_EQ(ParseDuration("9999999999d"), std::nullopt);
  EXPECT_EQ(ParseDuration("4000d"), std::nullopt);  // above the ten-year ceiling
  EXPECT_EQ(ParseDuration("3650d"), 3650 * 24h);
}

TEST(PolicyDuration, FormatsShortestSpellingThatRoundTrips) {
  EXPECT_EQ(FormatDuration(300s), "5m");
  EXPECT_EQ(FormatDuration(90s), "1m30s");
  EXPECT_EQ(FormatDuration(5400s), "1h30m");
  EXPECT_EQ(FormatDuration(72h), "3d");
  EXPECT_EQ(FormatDuration(0s), "0s");
  for (const auto value : {1s, 59s, 61s, 3601s, 86399s, 90061s}) {
    EXPECT_EQ(ParseDuration(FormatDuration(value)), value) << value.count();
  }
}

}  // namespace
}  // namespace ijazat::policy
