// The shipped example policy loads, and the decisions it leads to are right.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "ijazat/common/bytes.h"
#include "ijazat/policy/policy_set.h"
#include "policy/policy_test_util.h"
#include "support/result_matchers.h"

namespace ijazat::policy {
namespace {

using std::chrono::hours;
using std::chrono::seconds;
using std::chrono::sys_days;
using ::testing::HasSubstr;
using testing::LoadExample;
using namespace std::chrono_literals;

constexpr std::chrono::system_clock::time_point At(std::chrono::year_month_day day,
                                                   seconds time_of_day = 0s) {
  return sys_days(day) + time_of_day;
}

constexpr auto kMidWindow = At(std::chrono::year{2025} / 7 / 1);

struct DecisionCase {
  std::string name;
  std::string provider;
  std::string purpose;
  std::vector<std::string> scopes;
  std::chrono::system_clock::time_point now;
  std::optional<DenyReason> expected;  // nullopt: allowed
  std::string message_contains;
};

void PrintTo(const DecisionCase& c, std::ostream* os) { *os << c.name; }

class ExamplePolicyDecision : public ::testing::TestWithParam<DecisionCase> {};

TEST_P(ExamplePolicyDecision, MatchesTable) {
  const auto policy = LoadExample();
  ASSERT_NE(policy, nullptr);
  const DecisionCase& c = GetParam();
  const Decision decision = policy->Decide(c.provider, c.purpose, c.scopes, c.now);
  if (!c.expected) {
    EXPECT_TRUE(decision.allowed()) << decision.message();
    return;
  }
  ASSERT_FALSE(decision.allowed());
  EXPECT_EQ(decision.reason(), *c.expected) << ToString(decision.reason());
  EXPECT_THAT(decision.message(), HasSubstr(c.message_contains));
}

// A function-local static: building it cannot throw before main().
const std::vector<DecisionCase>& DecisionTable() {
  static const std::vector<DecisionCase> table = {
      {"BankAllowsOneScope", "demo-bank", "account-opening", {"name"}, kMidWindow, {}, ""},
      {"BankAllowsAllPurposeScopes",
       "demo-bank",
       "account-opening",
       {"name", "father_name", "date_of_birth"},
       kMidWindow,
       {},
       ""},
      {"BankAllowsDuplicateScopes",
       "demo-bank",
       "account-opening",
       {"name", "name"},
       kMidWindow,
       {},
       ""},
      {"BankAllowsSecondPurpose",
       "demo-bank",
       "loan-application",
       {"address", "cnic_status"},
       kMidWindow,
       {},
       ""},
      {"BankDeniesScopeOutsidePurpose",
       "demo-bank",
       "account-opening",
       {"photo"},
       kMidWindow,
       DenyReason::kScopeNotAllowed,
       "allowed: name, father_name, date_of_birth"},
      {"BankDeniesWhenOneScopeOfManyIsOutside",
       "demo-bank",
       "account-opening",
       {"name", "address"},
       kMidWindow,
       DenyReason::kScopeNotAllowed,
       "scope address is not allowed for purpose account-opening"},
      {"BankDeniesEmptyScopes",
       "demo-bank",
       "account-opening",
       {},
       kMidWindow,
       DenyReason::kNoScopes,
       "at least one"},
      {"BankDeniesUnknownScope",
       "demo-bank",
       "account-opening",
       {"dob"},
       kMidWindow,
       DenyReason::kUnknownScope,
       "catalogue"},
      {"ScopeNamesAreCaseSensitive",
       "demo-bank",
       "account-opening",
       {"Name"},
       kMidWindow,
       DenyReason::kUnknownScope,
       "catalogue"},
      {"BankDeniesAnotherProvidersPurpose",
       "demo-bank",
       "sim-issuance",
       {"name"},
       kMidWindow,
       DenyReason::kUnknownPurpose,
       "account-opening, loan-application"},
      {"PurposeIdsAreCaseSensitive",
       "demo-bank",
       "Account-Opening",
       {"name"},
       kMidWindow,
       DenyReason::kUnknownPurpose,
       "no such purpose"},
      {"TelcoAllowsPhotoInsideWindow",
       "demo-telco",
       "sim-issuance",
       {"photo", "cnic_status"},
       kMidWindow,
       {},
       ""},
      {"TelcoDeniesBeforeValidFrom",
       "demo-telco",
       "sim-issuance",
       {"name"},
       At(std::chrono::year{2024} / 12 / 31, 23h + 59min + 59s),
       DenyReason::kNotYetValid,
       "not valid before 2025-01-01T00:00:00Z"},
      {"TelcoAllowsAtValidFrom",
       "demo-telco",
       "sim-issuance",
       {"name"},
       At(std::chrono::year{2025} / 1 / 1),
       {},
       ""},
      {"TelcoAllowsLastSecondOfWindow",
       "demo-telco",
       "sim-issuance",
       {"name"},
       At(std::chrono::year{2029} / 12 / 31, 23h + 59min + 59s),
       {},
       ""},
      {"TelcoDeniesAtValidUntil",
       "demo-telco",
       "sim-issuance",
       {"name"},
       At(std::chrono::year{2030} / 1 / 1),
       DenyReason::kExpired,
       "valid until 2030-01-01T00:00:00Z"},
      {"SuspendedProviderIsDenied",
       "old-housing",
       "allotment-verification",
       {"name"},
       kMidWindow,
       DenyReason::kProviderSuspended,
       "old-housing is suspended"},
      {"UnknownProviderIsDenied",
       "nobody",
       "account-opening",
       {"name"},
       kMidWindow,
       DenyReason::kUnknownProvider,
       "not in the policy"},
      {"ProviderIdsAreCaseSensitive",
       "Demo-Bank",
       "account-opening",
       {"name"},
       kMidWindow,
       DenyReason::kUnknownProvider,
       "not in the policy"},
  };
  return table;
}

INSTANTIATE_TEST_SUITE_P(PolicyExample, ExamplePolicyDecision, ::testing::ValuesIn(DecisionTable()),
                         [](const auto& param_info) { return param_info.param.name; });

TEST(PolicyExample, LoadsWithExpectedShape) {
  const auto policy = LoadExample();
  ASSERT_NE(policy, nullptr);
  EXPECT_EQ(policy->version(), "2025.06.1");
  EXPECT_EQ(policy->identity().version, "2025.06.1");
  EXPECT_EQ(policy->identity().sha256_hex.size(), 64u);
  ASSERT_EQ(policy->providers().size(), 3u);
  EXPECT_EQ(policy->providers()[0].id, "demo-bank");
  EXPECT_EQ(policy->providers()[1].id, "demo-telco");
  EXPECT_EQ(policy->providers()[2].id, "old-housing");
  EXPECT_EQ(policy->providers()[2].status, ProviderStatus::kSuspended);
}

TEST(PolicyExample, DemoBankHasDocumentedPurposeAndScopes) {
  const auto policy = LoadExample();
  ASSERT_NE(policy, nullptr);
  const Provider* bank = policy->FindProvider("demo-bank");
  ASSERT_NE(bank, nullptr);
  EXPECT_EQ(bank->display_name, "Demo Bank");
  const Purpose* purpose = bank->FindPurpose("account-opening");
  ASSERT_NE(purpose, nullptr);
  EXPECT_THAT(purpose->scopes,
              ::testing::ElementsAre(Scope::kName, Scope::kFatherName, Scope::kDateOfBirth));
  EXPECT_FALSE(bank->reveal_enrolment_status);
}

TEST(PolicyExample, FindsDemoBankByThePublicDemoKey) {
  const auto policy = LoadExample();
  ASSERT_NE(policy, nullptr);
  const Provider* found = policy->FindProviderByApiKey("ijz_demo_0123456789abcdef0123456789abcdef");
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->id, "demo-bank");
  EXPECT_EQ(policy->FindProviderByApiKey("ijz_demo_0123456789abcdef0123456789abcdee"), nullptr);
  EXPECT_EQ(policy->FindProviderByApiKey(""), nullptr);
}

TEST(PolicyExample, FindsProvidersByDigest) {
  const auto policy = LoadExample();
  ASSERT_NE(policy, nullptr);
  const Bytes api_key_hash =
      *HexDecode("54bd67e14abb2c86b58570285af9d2210ad3e0c0b7eaabc2acacc220e93eca24");
  const Bytes cert_fingerprint =
      *HexDecode("44930a063d53dfa05b8cb39572d6cf2810dfdd384edb4d2c5f400da04e7bcb92");
  ASSERT_NE(policy->FindProviderByApiKeyHash(api_key_hash), nullptr);
  EXPECT_EQ(policy->FindProviderByApiKeyHash(api_key_hash)->id, "demo-bank");
  ASSERT_NE(policy->FindProviderByCertFingerprint(cert_fingerprint), nullptr);
  EXPECT_EQ(policy->FindProviderByCertFingerprint(cert_fingerprint)->id, "demo-telco");
  // Credential types are separate namespaces.
  EXPECT_EQ(policy->FindProviderByCertFingerprint(api_key_hash), nullptr);
  EXPECT_EQ(policy->FindProviderByApiKeyHash(cert_fingerprint), nullptr);
  // Anything that is not a 32-byte digest finds nothing.
  EXPECT_EQ(policy->FindProviderByApiKeyHash(ByteView(api_key_hash).first(31)), nullptr);
  EXPECT_EQ(policy->FindProviderByApiKeyHash({}), nullptr);
}

TEST(PolicyExample, SuspendedProviderStillAuthenticates) {
  const auto policy = LoadExample();
  ASSERT_NE(policy, nullptr);
  const Bytes retired_key_hash =
      *HexDecode("d81cf052618b5e587794b618e6cb82fa5a843368cf6eaf58c55f2546f97e9504");
  const Provider* found = policy->FindProviderByApiKeyHash(retired_key_hash);
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->status, ProviderStatus::kSuspended);
}

TEST(PolicyExample, EffectiveLimitsAreDefaultsTightenedByOverrides) {
  const auto policy = LoadExample();
  ASSERT_NE(policy, nullptr);
  const Limits& defaults = policy->defaults();
  EXPECT_EQ(defaults.otp.digits, 6);
  EXPECT_EQ(defaults.otp.ttl, std::chrono::minutes(5));
  EXPECT_EQ(defaults.otp.max_attempts, 3);
  EXPECT_EQ(defaults.cnic.failures_per_day, 10);

  const Provider* bank = policy->FindProvider("demo-bank");
  ASSERT_NE(bank, nullptr);
  EXPECT_EQ(bank->limits.otp.ttl, std::chrono::minutes(3));
  EXPECT_EQ(bank->limits.otp.digits, 6);
  EXPECT_EQ(bank->limits.token, defaults.token);
  EXPECT_EQ(bank->rate_limit, (RateLimit{120, 20}));

  const Provider* telco = policy->FindProvider("demo-telco");
  ASSERT_NE(telco, nullptr);
  EXPECT_EQ(telco->limits.otp.digits, 8);
  EXPECT_EQ(telco->limits.otp.ttl, defaults.otp.ttl);
  EXPECT_EQ(telco->limits.cnic.number_change_cooling_off, hours(72));

  const Provider* housing = policy->FindProvider("old-housing");
  ASSERT_NE(housing, nullptr);
  EXPECT_EQ(housing->limits, defaults);
  EXPECT_EQ(housing->rate_limit, RateLimit{});
}

TEST(PolicyExample, CliCheckAcceptsIt) {
  const auto result = ijazat::testing::RunCommand(testing::CliPath() + " check " +
                                                  testing::Quoted(testing::ExamplePolicyPath()));
  EXPECT_EQ(result.exit_code, 0) << result.output;
  const auto policy = LoadExample();
  ASSERT_NE(policy, nullptr);
  EXPECT_THAT(result.output, HasSubstr("version 2025.06.1, 3 providers (2 active, 1 suspended), "
                                       "4 purposes, sha256 " +
                                       policy->identity().sha256_hex));
}

// The public demo key opens the example to anyone; a loader told to refuse it names the very
// credential, and the policy is not loaded.
TEST(PolicyExample, RefusedWhereThePublishedDemoKeyIsRefused) {
  LoaderRules rules;
  rules.refuse_published_demo_credentials = true;
  std::vector<Diagnostic> diagnostics;
  const auto refused = PolicyLoader({}, rules).LoadFile(testing::ExamplePolicyPath(), &diagnostics);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().reason(), "policy_invalid");
  ASSERT_EQ(diagnostics.size(), 1u) << refused.error().message();
  EXPECT_EQ(diagnostics[0].path, "providers[0].credentials[0].sha256");
  EXPECT_EQ(diagnostics[0].line, 43);
  EXPECT_THAT(diagnostics[0].message, HasSubstr("public demo API key"));
  EXPECT_THAT(diagnostics[0].message, HasSubstr("development.allow_demo_credentials"));
  // The same key in colon-separated form is still the same key.
  std::string text = testing::ExamplePolicyText();
  const std::string hex = "54bd67e14abb2c86b58570285af9d2210ad3e0c0b7eaabc2acacc220e93eca24";
  std::string colons;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    colons += (i == 0 ? "" : ":") + hex.substr(i, 2);
  }
  text.replace(text.find(hex), hex.size(), colons);
  EXPECT_FALSE(PolicyLoader({}, rules).LoadString(text, "colons.yaml").ok());
  // By default (ijazat-policy, development) the example loads.
  EXPECT_TRUE(PolicyLoader().LoadFile(testing::ExamplePolicyPath()).ok());
}

// What the package installs as /etc/ijazat/policy.yaml: valid, and no one is admitted.
TEST(PackagedPolicy, IsValid_AndAdmitsNoProvider) {
  LoaderRules rules;
  rules.refuse_published_demo_credentials = true;
  const auto packaged = PolicyLoader({}, rules).LoadFile(
      ijazat::testing::TestDataPath("../../image/etc/policy.yaml"));
  ASSERT_TRUE(packaged.ok()) << packaged.error().message();
  EXPECT_TRUE((*packaged)->providers().empty());
}

}  // namespace
}  // namespace ijazat::policy
