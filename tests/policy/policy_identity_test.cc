// The policy hash: the same policy always has the same hash, and any change of meaning
// changes it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <string>

#include "ijazat/common/bytes.h"
#include "ijazat/policy/policy_loader.h"
#include "policy/policy_test_util.h"
#include "support/result_matchers.h"

namespace ijazat::policy {
namespace {

using ::testing::HasSubstr;
using testing::kMinimalPolicy;
using testing::ReplaceOnce;
using ::testing::StartsWith;

std::string HashOf(std::string_view text) {
  auto result = PolicyLoader().LoadString(text, "test.yaml");
  if (!result.ok()) {
    ADD_FAILURE() << result.error().message();
    return {};
  }
  return (*result)->identity().sha256_hex;
}

std::string Sha256Hex(std::string_view text) {
  Bytes digest(32);
  unsigned int length = 0;
  EXPECT_EQ(EVP_Digest(text.data(), text.size(), digest.data(), &length, EVP_sha256(), nullptr), 1);
  return HexEncode(digest);
}

TEST(PolicyIdentity, SameHashWhateverTheOrderCommentsAndFormatting) {
  const auto example = testing::LoadExample();
  ASSERT_NE(example, nullptr);
  const auto reordered =
      PolicyLoader().LoadFile(ijazat::testing::TestDataPath("policy/valid/example_reordered.yaml"));
  ASSERT_THAT(reordered, IsOk());
  EXPECT_EQ((*reordered)->identity(), example->identity());
  EXPECT_EQ((*reordered)->canonical_form(), example->canonical_form());
}

TEST(PolicyIdentity, WritingADefaultExplicitlyKeepsTheHash) {
  const std::string explicit_defaults =
      "version: 1\ndefaults:\n  otp: {digits: 6, ttl: 300s, max_attempts: 3}\n" +
      std::string(kMinimalPolicy).substr(11);
  EXPECT_EQ(HashOf(explicit_defaults), HashOf(kMinimalPolicy));
}

TEST(PolicyIdentity, EveryChangeOfMeaningChangesTheHash) {
  const std::string base = HashOf(kMinimalPolicy);
  const std::string policy(kMinimalPolicy);
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"version: 1", "version: 2"},
           {"Demo Bank", "Demo Bank Ltd"},
           {"status: active", "status: suspended"},
           {"date_of_birth]", "date_of_birth, photo]"},
           {"opening a bank account", "opening an account"},
           {"id: account-opening", "id: account-open"},
           {"eca24", "eca25"},
           {"type: api_key", "type: client_certificate"},
       }) {
    EXPECT_NE(HashOf(ReplaceOnce(policy, from, to)), base) << from << " -> " << to;
  }
  EXPECT_NE(HashOf(policy + "    reveal_enrolment_status: true\n"), base);
  EXPECT_NE(HashOf(policy + "    rate_limit: {requests_per_minute: 60, burst: 9}\n"), base);
  EXPECT_NE(HashOf(policy + "    overrides: {otp: {ttl: 4m}}\n"), base);
  EXPECT_NE(HashOf(policy + "    valid_until: 2030-01-01T00:00:00Z\n"), base);
  // The controller details are in every receipt: each of them is part of the policy's meaning.
  const std::string controller =
      "    controller: {legal_name: Demo Bank Limited, country: PK, contact: DPO, "
      "address: 1 Demo Road, email: dpo@demo.example, phone: +92 21 111 000 000, "
      "privacy_policy_url: \"https://demo.example/p\"}\n";
  const std::string with_controller = HashOf(policy + controller);
  EXPECT_NE(with_controller, base);
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"Demo Bank Limited", "Demo Bank Ltd"},
           {"country: PK", "country: AE"},
           {"contact: DPO", "contact: Privacy Office"},
           {"1 Demo Road", "2 Demo Road"},
           {"dpo@demo.example", "dp@demo.example"},
           {"111 000 000", "111 000 001"},
           {"demo.example/p", "demo.example/q"},
       }) {
    EXPECT_NE(HashOf(policy + ReplaceOnce(controller, from, to)), with_controller)
        << from << " -> " << to;
  }
}

TEST(PolicyIdentity, HashIsSha256OfTheCanonicalForm) {
  const auto example = testing::LoadExample();
  ASSERT_NE(example, nullptr);
  EXPECT_EQ(example->identity().sha256_hex, Sha256Hex(example->canonical_form()));
  EXPECT_THAT(example->canonical_form(), StartsWith("{\"defaults\":"));
  EXPECT_THAT(example->canonical_form(), HasSubstr("\"format\":\"ijazat-policy-canonical/1\""));
  EXPECT_EQ(example->identity().ToString(), "2025.06.1 sha256:" + example->identity().sha256_hex);
}

// If this test has to change, hashes recorded in existing receipts no longer match their
// policies: change the canonical "format" name instead of silently changing the layout.
TEST(PolicyIdentity, CanonicalFormIsStable) {
  const auto result =
      PolicyLoader().LoadFile(ijazat::testing::TestDataPath("policy/valid/golden.yaml"));
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ(
      (*result)->canonical_form(),
      R"({"defaults":{"limits":{"failures_per_cnic_per_day":10,"number_change_cooling_off":86400,)"
      R"("sms_per_cnic_per_hour":5},"otp":{"digits":7,"max_attempts":2,"ttl":120},"token":)"
      R"({"max_uses":1,"ttl":900}},"format":"ijazat-policy-canonical/1","providers":[{"credentials":)"
      R"([{"label":"","sha256":"0000000000000000000000000000000000000000000000000000000000000001",)"
      R"("type":"api_key"}],"display_name":"Golden \"Bank\"","id":"golden-bank","limits":{"limits":)"
      R"({"failures_per_cnic_per_day":10,"number_change_cooling_off":86400,"sms_per_cnic_per_hour":5},)"
      R"("otp":{"digits":7,"max_attempts":2,"ttl":120},"token":{"max_uses":1,"ttl":900}},"purposes":)"
      R"([{"id":"kyc","scopes":["name","photo"],"sms_text":"KYC"}],"rate_limit":{"burst":10,)"
      R"("requests_per_minute":60},"reveal_enrolment_status":false,"status":"active","valid_from":)"
      R"(null,"valid_until":"2031-02-03T04:05:06Z"}],"version":"golden-1"})");
  EXPECT_EQ((*result)->identity().sha256_hex,
            "6dad642cec695458d24cab9135f82926d93d368d49366f8a24500155c9541287");
}

TEST(PolicyIdentity, CliHashMatchesLibrary) {
  const auto example = testing::LoadExample();
  ASSERT_NE(example, nullptr);
  const auto result = ijazat::testing::RunCommand(testing::CliPath() + " hash " +
                                                  testing::Quoted(testing::ExamplePolicyPath()));
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.output, example->identity().sha256_hex + "\n");
}

}  // namespace
}  // namespace ijazat::policy
