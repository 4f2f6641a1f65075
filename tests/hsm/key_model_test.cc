#include "ijazat/hsm/key_model.h"

#include <gtest/gtest.h>

namespace ijazat::hsm {
namespace {

TEST(KeyModel, LabelRoundTrips_ForEveryKind) {
  for (const KeyKind kind : kAllKeyKinds) {
    const KeyRef key{kind, 12};
    const auto parsed = ParseKeyLabel(key.Label());
    ASSERT_TRUE(parsed.has_value()) << key.Label();
    EXPECT_EQ(*parsed, key);
  }
  EXPECT_EQ((KeyRef{KeyKind::kReceipt, 3}).Label(), "receipt/v3");
}

TEST(KeyModel, ParseKeyLabel_RejectsAnythingElse) {
  for (const char* label : {"", "otp", "otp/", "otp/v", "otp/v0", "otp/v01", "otp/v1x", "otp/1",
                            "OTP/v1", "rsa/v1", "otp/v-1", "otp/v1234567890", " otp/v1"}) {
    EXPECT_FALSE(ParseKeyLabel(label).has_value()) << label;
  }
}

TEST(KeyModel, KindNamesAndMechanisms_MatchTheDesign) {
  EXPECT_EQ(KeyKindMechanism(KeyKind::kOtp), "CKM_SHA256_HMAC");
  EXPECT_EQ(KeyKindMechanism(KeyKind::kIndex), "CKM_SHA256_HMAC");
  EXPECT_EQ(KeyKindMechanism(KeyKind::kReceipt), "CKM_ECDSA");
  EXPECT_EQ(KeyKindMechanism(KeyKind::kData), "CKM_AES_GCM");
  EXPECT_EQ(KeyKindMechanism(KeyKind::kLog), "CKM_EDDSA");
  EXPECT_EQ(ParseKeyKind("index"), KeyKind::kIndex);
  EXPECT_FALSE(ParseKeyKind("indexes").has_value());
}

}  // namespace
}  // namespace ijazat::hsm
