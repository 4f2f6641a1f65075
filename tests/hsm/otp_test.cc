// RFC 4226 (HOTP) and RFC 6238 (TOTP) test vectors, computed with the keys inside SoftHSM
// through the HSM layer's HMAC. The vectors are in tests/data/otp.json.
#include "ijazat/hsm/otp.h"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <gtest/gtest.h>

#include "hsm_fixture.h"
#include "raw_pkcs11.h"
#include "support/temp_dir.h"

namespace ijazat::hsm {
namespace {

Poco::JSON::Object::Ptr LoadVectors() {
  Poco::JSON::Parser parser;
  return parser.parse(testing::ReadFileOrDie(testing::TestDataPath("otp.json")))
      .extract<Poco::JSON::Object::Ptr>();
}

class OtpVectorsTest : public HsmTest {
 protected:
  // otp/v1, v2, v3 hold the RFC keys for SHA-1, SHA-256 and SHA-512.
  void SetUp() override {
    testing::RawPkcs11 raw(testing::kSoftHsmModule);
    raw.ImportHmacKey(token_.label(), token_.user_pin(), "otp/v1", ToBytes("12345678901234567890"));
    raw.ImportHmacKey(token_.label(), token_.user_pin(), "otp/v2",
                      ToBytes("12345678901234567890123456789012"));
    raw.ImportHmacKey(token_.label(), token_.user_pin(), "otp/v3",
                      ToBytes("1234567890123456789012345678901234567890123456789012345678901234"));
    HsmOptions options = Options();
    options.require_conforming_keys = false;  // imported with known values, so not "local"
    hsm_ = OpenOrDie(options);
    ASSERT_NE(hsm_, nullptr);
  }

  static KeyRef KeyFor(const std::string& algorithm) {
    if (algorithm == "SHA1") return {KeyKind::kOtp, 1};
    if (algorithm == "SHA256") return {KeyKind::kOtp, 2};
    return {KeyKind::kOtp, 3};
  }
  static HmacHash HashFor(const std::string& algorithm) {
    if (algorithm == "SHA1") return HmacHash::kSha1;
    if (algorithm == "SHA256") return HmacHash::kSha256;
    return HmacHash::kSha512;
  }

  std::unique_ptr<Pkcs11Hsm> hsm_;
};

TEST_F(OtpVectorsTest, Hotp_MatchesRfc4226AppendixD) {
  const auto hotp = LoadVectors()->getObject("hotp_rfc4226");
  ASSERT_EQ(hotp->getValue<std::string>("key_ascii"), "12345678901234567890");
  const auto values = hotp->getArray("values");
  ASSERT_EQ(values->size(), 10u);
  for (std::size_t i = 0; i < values->size(); ++i) {
    const auto vector = values->getObject(static_cast<unsigned>(i));
    const auto counter = vector->getValue<std::uint64_t>("counter");
    EXPECT_THAT(Hotp(*hsm_, KeyFor("SHA1"), counter, 6, HmacHash::kSha1),
                IsOkAndHolds(vector->getValue<std::string>("hotp")))
        << "counter " << counter;
  }
}

TEST_F(OtpVectorsTest, Totp_MatchesRfc6238AppendixB) {
  const auto totp = LoadVectors()->getArray("totp_rfc6238");
  ASSERT_EQ(totp->size(), 18u);
  for (std::size_t i = 0; i < totp->size(); ++i) {
    const auto vector = totp->getObject(static_cast<unsigned>(i));
    const auto algorithm = vector->getValue<std::string>("algorithm");
    const auto step = vector->getValue<std::uint64_t>("step");
    const auto time = vector->getValue<std::uint64_t>("time");
    EXPECT_THAT(Hotp(*hsm_, KeyFor(algorithm), time / step, vector->getValue<int>("digits"),
                     HashFor(algorithm)),
                IsOkAndHolds(vector->getValue<std::string>("totp")))
        << algorithm << " at " << time;
  }
}

TEST_F(OtpVectorsTest, Hotp_RejectsDigitCountsOutsideSixToNine) {
  EXPECT_THAT(Hotp(*hsm_, KeyFor("SHA1"), 0, 5), StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_THAT(Hotp(*hsm_, KeyFor("SHA1"), 0, 10), StatusIs(ErrorCode::kInvalidArgument));
}

TEST(TruncateToDigits, KeepsLeadingZeros) {
  // RFC 4226 §5.4 example MAC: offset 0xa, binary 0x50ef7f19 = 1357872921.
  const auto mac = HexDecode("1f8698690e02ca16618550ef7f19da8e945b555a");
  ASSERT_TRUE(mac.has_value());
  EXPECT_EQ(TruncateToDigits(*mac, 6), "872921");
  Bytes zeros(20, 0);
  EXPECT_EQ(TruncateToDigits(zeros, 6), "000000");
}

}  // namespace
}  // namespace ijazat::hsm
