#include "ijazat/policy/policy_diff.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "policy/policy_test_util.h"
#include "support/result_matchers.h"

namespace ijazat::policy {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using testing::ExamplePolicyText;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::ReplaceOnce;

std::shared_ptr<const PolicySet> Load(std::string_view text) {
  auto result = PolicyLoader().LoadString(text, "diff.yaml");
  if (!result.ok()) {
    ADD_FAILURE() << result.error().message();
    return nullptr;
  }
  return std::move(result).value();
}

// Diff of the example against the example with one edit (and a new version).
std::vector<PolicyChange> DiffExample(std::string_view from, std::string_view to) {
  const std::string before = ExamplePolicyText();
  const auto old_policy = Load(before);
  const auto new_policy =
      Load(ReplaceOnce(ReplaceOnce(before, from, to), "version: 2025.06.1", "version: 2025.06.2"));
  if (!old_policy || !new_policy) return {};
  return DiffPolicies(*old_policy, *new_policy);
}

auto Change(ChangeImpact impact, const std::string& path, const std::string& summary) {
  return AllOf(Field(&PolicyChange::impact, impact), Field(&PolicyChange::path, path),
               Field(&PolicyChange::summary, HasSubstr(summary)));
}

TEST(PolicyDiff, IdenticalPoliciesHaveNoChanges) {
  const auto policy = testing::LoadExample();
  ASSERT_NE(policy, nullptr);
  EXPECT_THAT(DiffPolicies(*policy, *policy), IsEmpty());
}

TEST(PolicyDiff, ReportsVersionChangeAsNeutral) {
  EXPECT_THAT(DiffExample("", ""),
              ElementsAre(Change(ChangeImpact::kNeutral, "version", "2025.06.1 -> 2025.06.2")));
}

// Each changed field in full, non-ASCII escaped, so that a reviewer sees a lookalike letter.
TEST(PolicyDiff, ControllerDetailsChange_ShowsEachFieldBeforeAndAfter) {
  EXPECT_THAT(DiffExample("legal_name: Demo Bank Limited", "legal_name: Demo B\u0430nk Limited"),
              Contains(Change(ChangeImpact::kNeutral, "providers[demo-bank].controller.legal_name",
                              "'Demo Bank Limited' -> 'Demo B\\u{430}nk Limited'")));
  EXPECT_THAT(DiffExample("email: dpo@demo-bank.example", "email: dpo@evil.example"),
              Contains(Change(ChangeImpact::kNeutral, "providers[demo-bank].controller.email",
                              "'dpo@demo-bank.example' -> 'dpo@evil.example'")));
}

TEST(PolicyDiff, LongerOtpTtlIsLoosened) {
  EXPECT_THAT(DiffExample("ttl: 5m ", "ttl: 8m "),
              Contains(Change(ChangeImpact::kLoosened, "defaults.otp.ttl", "5m -> 8m")));
}

TEST(PolicyDiff, FewerAttemptsIsTightened) {
  EXPECT_THAT(DiffExample("max_attempts: 3", "max_attempts: 2"),
              Contains(Change(ChangeImpact::kTightened, "defaults.otp.max_attempts", "3 -> 2")));
}

TEST(PolicyDiff, ShorterCoolingOffIsLoosened) {
  EXPECT_THAT(DiffExample("number_change_cooling_off: 24h ", "number_change_cooling_off: 12h "),
              Contains(Change(ChangeImpact::kLoosened, "defaults.limits.number_change_cooling_off",
                              "1d -> 12h")));
}

TEST(PolicyDiff, DefaultChangeShowsInProvidersEffectiveLimits) {
  const auto changes = DiffExample("digits: 6 ", "digits: 7 ");
  EXPECT_THAT(changes, Contains(Change(ChangeImpact::kTightened, "defaults.otp.digits", "6 -> 7")));
  EXPECT_THAT(changes, Contains(Change(ChangeImpact::kTightened,
                                       "providers[demo-bank].limits.otp.digits", "6 -> 7")));
  // demo-telco already requires 8 digits: its effective limit did not change.
  for (const auto& change : changes) EXPECT_THAT(change.path, ::testing::Not(HasSubstr("telco")));
}

TEST(PolicyDiff, SuspensionIsTightenedAndReinstatementLoosened) {
  EXPECT_THAT(
      DiffExample("status: active                    # active or suspended", "status: suspended"),
      Contains(Change(ChangeImpact::kTightened, "providers[demo-bank].status", "suspended")));
  EXPECT_THAT(
      DiffExample("status: suspended", "status: active"),
      Contains(Change(ChangeImpact::kLoosened, "providers[old-housing].status", "reinstated")));
}

TEST(PolicyDiff, ScopesGainedAndLost) {
  const auto changes = DiffExample("scopes: [name, father_name, date_of_birth]",
                                   "scopes: [name, date_of_birth, photo]");
  EXPECT_THAT(changes, Contains(Change(ChangeImpact::kLoosened,
                                       "providers[demo-bank].purposes[account-opening].scopes",
                                       "scope photo added")));
  EXPECT_THAT(changes, Contains(Change(ChangeImpact::kTightened,
                                       "providers[demo-bank].purposes[account-opening].scopes",
                                       "scope father_name removed")));
}

TEST(PolicyDiff, ProvidersAndPurposesAddedAndRemoved) {
  const std::string before = ExamplePolicyText();
  // Drop the suspended provider and rename a purpose.
  std::string after = before.substr(0, before.find("  # A suspended provider"));
  after = ReplaceOnce(after, "id: sim-issuance", "id: sim-replacement");
  after += R"(  - id: new-bank
    display_name: New Bank
    status: active
    credentials: [{type: api_key, sha256: 1111111111111111111111111111111111111111111111111111111111111111}]
    purposes: [{id: kyc, sms_text: KYC, scopes: [name]}]
)";
  const auto changes = DiffPolicies(*Load(before), *Load(after));
  EXPECT_THAT(changes, Contains(Change(ChangeImpact::kTightened, "providers[old-housing]",
                                       "provider removed")));
  EXPECT_THAT(changes, Contains(Change(ChangeImpact::kLoosened, "providers[new-bank]",
                                       "provider added (active, purposes: kyc)")));
  EXPECT_THAT(changes,
              Contains(Change(ChangeImpact::kTightened,
                              "providers[demo-telco].purposes[sim-issuance]", "purpose removed")));
  EXPECT_THAT(changes, Contains(Change(ChangeImpact::kLoosened,
                                       "providers[demo-telco].purposes[sim-replacement]",
                                       "purpose added with scopes name, father_name")));
  // The version did not change although the content did: say so.
  EXPECT_THAT(changes, Contains(Change(ChangeImpact::kNeutral, "version", "unchanged")));
}

TEST(PolicyDiff, CredentialsRateLimitsWindowsAndEnrolmentDisclosure) {
  auto changes =
      DiffExample("sha256: 54bd67e14abb2c86b58570285af9d2210ad3e0c0b7eaabc2acacc220e93eca24",
                  "sha256: 2222222222222222222222222222222222222222222222222222222222222222");
  EXPECT_THAT(changes, Contains(Change(ChangeImpact::kLoosened, "providers[demo-bank].credentials",
                                       "added api_key 2222222222222222")));
  EXPECT_THAT(changes, Contains(Change(ChangeImpact::kTightened, "providers[demo-bank].credentials",
                                       "removed api_key 54bd67e14abb2c86...")));
  EXPECT_THAT(
      DiffExample("requests_per_minute: 120", "requests_per_minute: 240"),
      Contains(Change(ChangeImpact::kLoosened,
                      "providers[demo-bank].rate_limit.requests_per_minute", "120 -> 240")));
  EXPECT_THAT(DiffExample("valid_until: 2030-01-01T00:00:00Z", "valid_until: 2027-01-01T00:00:00Z"),
              Contains(Change(ChangeImpact::kTightened, "providers[demo-telco].valid_until",
                              "2030-01-01T00:00:00Z -> 2027-01-01T00:00:00Z")));
  EXPECT_THAT(DiffExample("valid_from: 2025-01-01T00:00:00Z  # inclusive, UTC", ""),
              Contains(Change(ChangeImpact::kLoosened, "providers[demo-telco].valid_from",
                              "2025-01-01T00:00:00Z -> unset")));
  EXPECT_THAT(DiffExample("reveal_enrolment_status: false", "reveal_enrolment_status: true"),
              Contains(Change(ChangeImpact::kLoosened,
                              "providers[demo-bank].reveal_enrolment_status", "false -> true")));
}

TEST(PolicyDiff, SmsTextAndDisplayNameChangesAreShown) {
  EXPECT_THAT(DiffExample("display_name: Demo Bank ", "display_name: Demo Bank Ltd "),
              Contains(Change(ChangeImpact::kNeutral, "providers[demo-bank].display_name",
                              "'Demo Bank' -> 'Demo Bank Ltd'")));
  EXPECT_THAT(DiffExample("sms_text: a loan application", "sms_text: a car loan"),
              Contains(Change(ChangeImpact::kNeutral,
                              "providers[demo-bank].purposes[loan-application].sms_text",
                              "'a loan application' -> 'a car loan'")));
}

}  // namespace
}  // namespace ijazat::policy
