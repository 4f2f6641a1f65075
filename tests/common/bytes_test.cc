#include "ijazat/common/bytes.h"

#include <gtest/gtest.h>

namespace ijazat {
namespace {

TEST(Base64Url, EncodesRfc4648Vectors_WithoutPadding) {
  EXPECT_EQ(Base64UrlEncode(AsBytes("")), "");
  EXPECT_EQ(Base64UrlEncode(AsBytes("f")), "Zg");
  EXPECT_EQ(Base64UrlEncode(AsBytes("fo")), "Zm8");
  EXPECT_EQ(Base64UrlEncode(AsBytes("foo")), "Zm9v");
  EXPECT_EQ(Base64UrlEncode(AsBytes("foobar")), "Zm9vYmFy");
  const Bytes high = {0xfb, 0xff, 0xbf};
  EXPECT_EQ(Base64UrlEncode(high), "-_-_");
}

TEST(Base64Url, DecodeRoundTripsEveryLength) {
  Bytes data;
  for (int i = 0; i < 70; ++i) {
    EXPECT_EQ(Base64UrlDecode(Base64UrlEncode(data)), data) << i;
    data.push_back(static_cast<std::uint8_t>(i * 37));
  }
}

TEST(Base64Url, DecodeRejectsPaddingForeignAlphabetAndNonCanonicalBits) {
  for (const char* bad : {"Zg==", "Zm9v+", "Zm9v/", "Z", "Zh", "Zm9v YmFy", "Zm\n9v"}) {
    EXPECT_FALSE(Base64UrlDecode(bad).has_value()) << bad;
  }
}

TEST(Hex, RoundTripsAndRejectsOddOrForeignInput) {
  const Bytes data = {0x00, 0x7f, 0x80, 0xff};
  EXPECT_EQ(HexEncode(data), "007f80ff");
  EXPECT_EQ(HexDecode("007F80ff"), data);
  EXPECT_FALSE(HexDecode("abc").has_value());
  EXPECT_FALSE(HexDecode("zz").has_value());
}

TEST(ConstantTimeEquals, ComparesContentAndLength) {
  EXPECT_TRUE(ConstantTimeEquals(AsBytes("123456"), AsBytes("123456")));
  EXPECT_FALSE(ConstantTimeEquals(AsBytes("123456"), AsBytes("123457")));
  EXPECT_FALSE(ConstantTimeEquals(AsBytes("123456"), AsBytes("12345")));
  EXPECT_TRUE(ConstantTimeEquals(AsBytes(""), AsBytes("")));
}

TEST(SecretString, MovesLeaveTheSourceEmpty) {
  SecretString a(std::string("pin"));
  SecretString b(std::move(a));
  EXPECT_EQ(b.UnsafeView(), "pin");
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): checking the moved-from state
}

}  // namespace
}  // namespace ijazat
