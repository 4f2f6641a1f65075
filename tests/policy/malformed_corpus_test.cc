// Every file in tests/data/policy/malformed/ is rejected, with the location, path and message
// listed here, by the library and by `ijazat-policy check`.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "ijazat/policy/policy_loader.h"
#include "policy/policy_test_util.h"
#include "support/result_matchers.h"

namespace ijazat::policy {
namespace {

using ::testing::HasSubstr;

struct MalformedCase {
  std::string file;  // in tests/data/policy/malformed/, without ".yaml"
  int line;
  int column;
  std::string path;
  std::string message;  // a substring of the diagnostic's message
};

// One row per file. The expected diagnostic must be among those reported (some files have
// more than one problem, and all of them are reported).
// A function-local static: building it cannot throw before main().
const std::vector<MalformedCase>& Corpus() {
  static const std::vector<MalformedCase> corpus = {
      {"active_without_credentials", 4, 5, "providers[0]", "needs at least one credential"},
      {"alias_bomb", 7, 45, "", "more than 100000 values once anchors and aliases are expanded"},
      {"bad_timestamp", 14, 17, "providers[0].valid_from", "is not a UTC time"},
      {"bare_carriage_return", 1, 32, "", "carriage return without a line feed"},
      {"bidi_override", 3, 17, "", "invisible formatting character U+202E"},
      {"burst_zero", 16, 14, "providers[0].rate_limit.burst", "from 1 to 1000; got 0"},
      {"comments_only", 1, 1, "", "the policy file is empty"},
      {"control_character", 2, 11, "", "control character U+0007"},
      {"controller_country_lowercase", 16, 16, "providers[0].controller.country",
       "'pk' must be an ISO 3166-1 alpha-2 country code"},
      {"controller_email_invalid", 18, 14, "providers[0].controller.email",
       "'dpo@localhost' must be an e-mail address"},
      {"controller_missing_legal_name", 15, 7, "providers[0].controller",
       "missing required key 'legal_name'"},
      {"controller_name_multiline", 15, 19, "providers[0].controller.legal_name",
       "contains a line break; it must be one line"},
      {"controller_phone_invalid", 18, 14, "providers[0].controller.phone",
       "must be an international number"},
      {"controller_url_not_https", 18, 27, "providers[0].controller.privacy_policy_url",
       "must be an absolute https URL"},
      {"cooling_off_too_short", 5, 32, "defaults.limits.number_change_cooling_off",
       "30m is outside the allowed range from 1h to 30d"},
      {"deep_nesting", 3, 27, "", "nested more than 16 levels deep"},
      {"display_name_is_another_id", 16, 19, "providers[1].display_name",
       "'DEMO-BANK' is the id of providers[0] (line 5); a citizen's BLOCK DEMO-BANK would be "
       "ambiguous"},
      {"display_name_not_gsm7", 5, 19, "providers[0].display_name",
       "outside the GSM-7 basic character set"},
      {"display_name_too_long", 5, 19, "providers[0].display_name",
       "is 48 characters long; it goes into the citizen's SMS, so use at most 30"},
      {"duplicate_credential", 19, 17, "providers[1].credentials[0].sha256",
       "already listed at providers[0].credentials[0] (line 8)"},
      {"duplicate_display_name", 15, 19, "providers[1].display_name",
       "'DEMO BANK' is already used by providers[0]"},
      {"duplicate_key", 6, 5, "defaults.otp.ttl",
       "appears twice in this mapping (first at line 5)"},
      {"duplicate_provider_id", 14, 9, "providers[1].id",
       "'demo-bank' is already used by providers[0] (line 4)"},
      {"duplicate_purpose_id", 14, 13, "providers[0].purposes[1].id",
       "'account-opening' is already used by providers[0].purposes[0]"},
      {"duplicate_scope", 13, 31, "providers[0].purposes[0].scopes[2]", "'name' is listed twice"},
      {"duration_unknown_unit", 5, 10, "defaults.token.ttl", "'5 minutes' is not a duration"},
      {"duration_without_unit", 5, 10, "defaults.otp.ttl", "'300' has no unit"},
      {"empty", 1, 1, "", "the policy file is empty"},
      {"empty_scopes", 13, 17, "providers[0].purposes[0].scopes", "needs at least one scope"},
      {"failures_per_day_too_high", 5, 32, "defaults.limits.failures_per_cnic_per_day",
       "from 1 to 100; got 1000"},
      {"hash_wrong_length", 9, 17, "providers[0].credentials[0].sha256", "got 40 characters"},
      {"missing_provider_id", 4, 5, "providers[0]", "missing required key 'id'"},
      {"missing_value", 5, 5, "defaults.otp.digits", "has no value"},
      {"missing_version", 2, 1, "", "missing required key 'version'"},
      {"id_is_another_display_name", 15, 9, "providers[1].id",
       "'bank' is the display name of providers[0] (line 5); a citizen's BLOCK bank would be "
       "ambiguous"},
      {"misspelled_max_attempts", 5, 5, "defaults.otp.max_atempts",
       "unknown key 'max_atempts' (did you mean 'max_attempts'?)"},
      {"misspelled_scopes_key", 13, 9, "providers[0].purposes[0].scope",
       "unknown key 'scope' (did you mean 'scopes'?)"},
      {"non_scalar_key", 3, 3, "", "a mapping key must be a plain name; got a list"},
      {"not_utf8", 4, 6, "", "not valid UTF-8 (byte 0xE9)"},
      {"number_with_leading_zero", 5, 19, "defaults.otp.max_attempts", "got '03'"},
      {"otp_attempts_above_cap", 5, 19, "defaults.otp.max_attempts", "from 1 to 5; got 6"},
      {"otp_digits_out_of_range", 5, 13, "defaults.otp.digits", "from 6 to 8; got 9"},
      {"otp_ttl_too_long", 5, 10, "defaults.otp.ttl",
       "15m is outside the allowed range from 30s to 10m"},
      {"override_loosens_cooling_off", 19, 36,
       "providers[0].overrides.limits.number_change_cooling_off",
       "1d loosens the policy default of 2d"},
      {"override_loosens_digits", 19, 17, "providers[0].overrides.otp.digits",
       "6 loosens the policy default of 8"},
      {"override_loosens_otp_ttl", 16, 14, "providers[0].overrides.otp.ttl",
       "8m loosens the policy default of 5m; a provider may only tighten it"},
      {"plaintext_api_key", 9, 17, "providers[0].credentials[0].sha256",
       "looks like a plaintext API key"},
      {"provider_id_not_slug", 4, 9, "providers[0].id", "'Demo Bank' must be a slug"},
      {"providers_not_a_list", 4, 3, "providers", "must be a list of providers; got a mapping"},
      {"recursive_alias", 3, 19, "", "an alias refers to a mapping or list that contains it"},
      {"root_is_a_list", 2, 1, "", "a policy must be a mapping"},
      {"sms_text_with_newline", 12, 19, "providers[0].purposes[0].sms_text",
       "contains a line break"},
      {"syntax_error", 4, 1, "", "YAML syntax error"},
      {"tab_indentation", 4, 1, "", "tab character"},
      {"token_max_uses_zero", 5, 15, "defaults.token.max_uses", "from 1 to 10; got 0"},
      {"two_documents", 4, 1, "", "a second YAML document starts here"},
      {"unknown_credential_type", 8, 15, "providers[0].credentials[0].type",
       "must be 'api_key' or 'client_certificate'; got 'password'"},
      {"unknown_scope", 13, 24, "providers[0].purposes[0].scopes[1]", "unknown scope 'dob'"},
      {"unknown_status", 6, 13, "providers[0].status", "must be 'active' or 'suspended'"},
      {"unknown_top_level_key", 3, 1, "provders",
       "unknown key 'provders' (did you mean 'providers'?)"},
      {"validity_window_inverted", 15, 18, "providers[0].valid_until",
       "must be later than valid_from"},
      {"version_not_text", 2, 10, "version", "got a list"},
      {"yaml11_boolean", 14, 30, "providers[0].reveal_enrolment_status",
       "must be true or false; got 'yes'"},
      {"yaml_tag", 2, 10, "", "YAML tags"},
  };
  return corpus;
}

// Keeps test listings readable (gtest would otherwise print the struct's bytes).
void PrintTo(const MalformedCase& c, std::ostream* os) { *os << c.file; }

std::filesystem::path CorpusPath(const std::string& name) {
  return ijazat::testing::TestDataPath("policy/malformed/" + name + ".yaml");
}

std::string Describe(const std::vector<Diagnostic>& diagnostics) {
  std::string out;
  for (const auto& diagnostic : diagnostics) out += "\n  " + diagnostic.ToString();
  return out;
}

class PolicyMalformedCorpus : public ::testing::TestWithParam<MalformedCase> {};

TEST_P(PolicyMalformedCorpus, LoaderReportsLocationPathAndMessage) {
  const MalformedCase& c = GetParam();
  std::vector<Diagnostic> diagnostics;
  const auto result = PolicyLoader().LoadFile(CorpusPath(c.file), &diagnostics);
  ASSERT_THAT(result, HasReason("policy_invalid"));
  EXPECT_EQ(result.error().code(), ErrorCode::kInvalidArgument);
  const bool found = std::any_of(diagnostics.begin(), diagnostics.end(), [&](const Diagnostic& d) {
    return d.line == c.line && d.column == c.column && d.path == c.path &&
           d.message.find(c.message) != std::string::npos;
  });
  EXPECT_TRUE(found) << "expected " << c.line << ":" << c.column << ": " << c.path << ": "
                     << c.message << "\ngot:" << Describe(diagnostics);
}

TEST_P(PolicyMalformedCorpus, CliRejectsWithLocation) {
  const MalformedCase& c = GetParam();
  const auto path = CorpusPath(c.file);
  const auto result =
      ijazat::testing::RunCommand(testing::CliPath() + " check " + testing::Quoted(path));
  EXPECT_EQ(result.exit_code, 1) << result.output;
  std::string location =
      path.string() + ":" + std::to_string(c.line) + ":" + std::to_string(c.column) + ": ";
  if (!c.path.empty()) location += c.path + ": ";
  EXPECT_THAT(result.output, HasSubstr(location));
  EXPECT_THAT(result.output, HasSubstr(c.message));
}

INSTANTIATE_TEST_SUITE_P(Policy, PolicyMalformedCorpus, ::testing::ValuesIn(Corpus()),
                         [](const auto& param_info) { return param_info.param.file; });

TEST(PolicyMalformedCorpus, EveryFileHasAnExpectation) {
  std::set<std::string> expected;
  for (const auto& c : Corpus()) expected.insert(c.file);
  std::set<std::string> present;
  for (const auto& entry :
       std::filesystem::directory_iterator(ijazat::testing::TestDataPath("policy/malformed"))) {
    present.insert(entry.path().stem().string());
  }
  EXPECT_EQ(present, expected);
  EXPECT_GE(present.size(), 30u);
}

}  // namespace
}  // namespace ijazat::policy
