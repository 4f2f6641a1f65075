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

// True when the `size` bytes at `buffer` are all zero.
bool AllZero(const char* buffer, std::size_t size) {
  for (std::size_t i = 0; i < size; ++i) {
    if (buffer[i] != '\0') return false;
  }
  return true;
}

TEST(SecretString, WipesTheShortStringItWasMadeFrom) {
  // A short PIN lives inside the std::string object; moving it copies the bytes.
  std::string pin = "1234-user";
  const char* buffer = pin.data();
  const std::size_t capacity = pin.capacity();
  ASSERT_LT(capacity, 32U) << "expected the small-string buffer";
  const SecretString secret(std::move(pin));
  EXPECT_EQ(secret.UnsafeView(), "1234-user");
  EXPECT_TRUE(AllZero(buffer, capacity)) << "the PIN is still in the moved-from string";
}

TEST(SecureWipe, ZeroesAStringUpToItsCapacity) {
  std::string text = "a passphrase long enough to live on the heap\n";
  text.pop_back();  // what PinSource does with the trailing newline
  const char* buffer = text.data();
  const std::size_t capacity = text.capacity();
  SecureWipe(text);
  EXPECT_TRUE(text.empty());
  EXPECT_EQ(text.data(), buffer) << "wiped in place, not reallocated";
  EXPECT_TRUE(AllZero(buffer, capacity));
}

}  // namespace
}  // namespace ijazat
