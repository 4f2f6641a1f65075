// JwksCache: the provider-side refresh rules, with an injected fetcher and clock.
#include "ijazat/verifier/jwks_cache.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/result_matchers.h"
#include "verifier_test_util.h"

namespace ijazat::verifier {
namespace {

using testing::kIssuedAt;
using testing::SampleConsentClaims;
using testing::SoftwareSigner;

class JwksCacheTest : public ::testing::Test {
 protected:
  JwksCache MakeCache() {
    return JwksCache(
        [this]() -> Result<std::string> {
          ++fetches_;
          if (fail_) return Error(ErrorCode::kUnavailable, "appliance down", "jwks_unavailable");
          return document_;
        },
        JwksCacheOptions{3600, 30}, [this] { return now_; });
  }
  VerifyOptions Options() const {
    VerifyOptions options;
    options.audience = testing::kProvider;
    return options;
  }

  SoftwareSigner old_key_;
  SoftwareSigner new_key_;
  std::string document_ = old_key_.JwksJson();
  std::int64_t now_ = kIssuedAt + 10;
  bool fail_ = false;
  int fetches_ = 0;
};

TEST_F(JwksCacheTest, Get_FetchesOnceThenServesFromTheCache) {
  JwksCache cache = MakeCache();
  EXPECT_THAT(cache.Get(), IsOk());
  now_ += 100;
  EXPECT_THAT(cache.Get(), IsOk());
  EXPECT_EQ(fetches_, 1);
  EXPECT_EQ(cache.fetch_count(), 1);
}

TEST_F(JwksCacheTest, Get_RefreshesAfterMaxAge_AndKeepsTheOldSetWhenTheRefreshFails) {
  JwksCache cache = MakeCache();
  ASSERT_THAT(cache.Get(), IsOk());
  now_ += 3600;
  fail_ = true;
  const auto stale = cache.Get();
  ASSERT_THAT(stale, IsOk());
  EXPECT_TRUE(stale->Contains(old_key_.Kid()));
  EXPECT_EQ(fetches_, 2);
  now_ += 10;  // within the refetch interval: no new attempt
  EXPECT_THAT(cache.Get(), IsOk());
  EXPECT_EQ(fetches_, 2);
}

TEST_F(JwksCacheTest, Get_FailsWhenThereIsNoSet_AndRetriesAtMostOncePerInterval) {
  fail_ = true;
  JwksCache cache = MakeCache();
  EXPECT_THAT(cache.Get(), HasReason("jwks_unavailable"));
  EXPECT_THAT(cache.Get(), HasReason("jwks_unavailable"));
  EXPECT_EQ(fetches_, 1);
  now_ += 30;
  fail_ = false;
  EXPECT_THAT(cache.Get(), IsOk());
  EXPECT_EQ(fetches_, 2);
}

TEST_F(JwksCacheTest, Get_ReportsAnInvalidDocument) {
  document_ = R"({"keys":[{"kty":"RSA"}]})";
  JwksCache cache = MakeCache();
  EXPECT_THAT(cache.Get(), HasReason("jwks_invalid"));
}

TEST_F(JwksCacheTest, UnknownKid_RefetchesOnceAndVerifiesWithTheNewKey) {
  JwksCache cache = MakeCache();
  ASSERT_THAT(cache.Get(), IsOk());
  // The appliance rotates: the new JWKS has both keys; the token is signed by the new one.
  document_ = R"({"keys":[)" + old_key_.Jwk() + "," + new_key_.Jwk() + "]}";
  now_ += 60;
  const std::string token = testing::SignedConsentToken(new_key_, SampleConsentClaims());
  const auto verified = cache.Verify(token, Options());
  ASSERT_THAT(verified, IsOk());
  EXPECT_EQ(verified->kid, new_key_.Kid());
  EXPECT_EQ(fetches_, 2);
  EXPECT_THAT(cache.Verify(token, Options()), IsOk());
  EXPECT_EQ(fetches_, 2);
}

TEST_F(JwksCacheTest, UnknownKid_RefetchesAtMostOncePerInterval) {
  JwksCache cache = MakeCache();
  const SoftwareSigner stranger;
  const std::string token = testing::SignedConsentToken(stranger, SampleConsentClaims());
  now_ += 60;
  EXPECT_THAT(cache.Verify(token, Options()), HasReason("unknown_kid"));  // first fetch only
  now_ += 31;
  EXPECT_THAT(cache.Verify(token, Options()), HasReason("unknown_kid"));  // one refetch
  for (int i = 0; i < 10; ++i) {
    now_ += 1;
    EXPECT_THAT(cache.Verify(token, Options()), HasReason("unknown_kid"));
  }
  EXPECT_EQ(fetches_, 2);
}

TEST_F(JwksCacheTest, OtherRejections_DoNotRefetch) {
  JwksCache cache = MakeCache();
  ConsentTokenClaims claims = SampleConsentClaims();
  claims.audience = "other-provider";
  now_ += 100;
  EXPECT_THAT(cache.Verify(testing::SignedConsentToken(old_key_, claims), Options()),
              HasReason("wrong_audience"));
  now_ += 100;
  EXPECT_THAT(cache.Verify(testing::SignedConsentToken(old_key_, claims), Options()),
              HasReason("wrong_audience"));
  EXPECT_EQ(fetches_, 1);
}

}  // namespace
}  // namespace ijazat::verifier
