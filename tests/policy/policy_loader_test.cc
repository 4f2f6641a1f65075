// PolicyLoader behaviour not covered by the malformed corpus: how it treats valid input, how
// it reports, and how it survives hostile input.
#include "ijazat/policy/policy_loader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <string>
#include <vector>

#include "policy/policy_test_util.h"
#include "support/result_matchers.h"

namespace ijazat::policy {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
using ::testing::Field;
using ::testing::HasSubstr;
using testing::kMinimalPolicy;
using testing::ReplaceOnce;
using ::testing::SizeIs;

Result<std::shared_ptr<const PolicySet>> Load(std::string_view text,
                                              std::vector<Diagnostic>* diagnostics = nullptr) {
  return PolicyLoader().LoadString(text, "test.yaml", diagnostics);
}

auto DiagnosticAt(int line, int column, const std::string& path, const std::string& message) {
  return AllOf(Field(&Diagnostic::line, line), Field(&Diagnostic::column, column),
               Field(&Diagnostic::path, path), Field(&Diagnostic::message, HasSubstr(message)));
}

TEST(PolicyLoader, AcceptsMinimalPolicyAndFillsSafeDefaults) {
  const auto result = Load(kMinimalPolicy);
  ASSERT_THAT(result, IsOk());
  const PolicySet& policy = **result;
  EXPECT_EQ(policy.defaults(), Limits{});
  EXPECT_EQ(policy.defaults().otp.digits, 6);
  EXPECT_EQ(policy.defaults().otp.ttl, std::chrono::minutes(5));
  EXPECT_EQ(policy.defaults().otp.max_attempts, 3);
  EXPECT_EQ(policy.defaults().cnic.failures_per_day, 10);
  const Provider* provider = policy.FindProvider("demo-bank");
  ASSERT_NE(provider, nullptr);
  EXPECT_FALSE(provider->reveal_enrolment_status);
  EXPECT_EQ(provider->rate_limit, RateLimit{});
  EXPECT_EQ(provider->limits, Limits{});
}

TEST(PolicyLoader, ReadsControllerDetails_AnyScriptInNames) {
  const std::string text = std::string(kMinimalPolicy) +
                           "    controller:\n"
                           "      legal_name: \"Demo Bank Limited \u0688\u06CC\u0645\u0648\"\n"
                           "      address: 1 Demo Road, Karachi\n"
                           "      country: PK\n"
                           "      contact: Data Protection Officer\n"
                           "      email: dpo@demo-bank.example\n"
                           "      phone: +92-21-111-000-000\n"
                           "      privacy_policy_url: https://demo-bank.example/privacy\n";
  const auto result = Load(text);
  ASSERT_THAT(result, IsOk());
  const Provider* provider = (*result)->FindProvider("demo-bank");
  ASSERT_NE(provider, nullptr);
  ASSERT_TRUE(provider->controller.has_value());
  EXPECT_EQ(provider->controller->legal_name, "Demo Bank Limited \u0688\u06CC\u0645\u0648");
  EXPECT_EQ(provider->controller->address, "1 Demo Road, Karachi");
  EXPECT_EQ(provider->controller->country, "PK");
  EXPECT_EQ(provider->controller->contact, "Data Protection Officer");
  EXPECT_EQ(provider->controller->email, "dpo@demo-bank.example");
  EXPECT_EQ(provider->controller->phone, "+92-21-111-000-000");
  EXPECT_EQ(provider->controller->privacy_policy_url, "https://demo-bank.example/privacy");
  // Without the section there are no details, and nothing is made up.
  const auto plain = Load(kMinimalPolicy);
  ASSERT_THAT(plain, IsOk());
  EXPECT_FALSE((*plain)->FindProvider("demo-bank")->controller.has_value());
}

TEST(PolicyLoader, RejectsEveryMalformedControllerField_NamingIt) {
  const std::string base = std::string(kMinimalPolicy) +
                           "    controller: {legal_name: Demo Bank Limited, country: PK, "
                           "contact: DPO}\n";
  ASSERT_THAT(Load(base), IsOk());
  const std::pair<std::string, std::string> cases[] = {
      {"country: PK", "country: PAK"},
      {"country: PK", "country: \"\""},
      {"contact: DPO", "contact: \" DPO\""},
      {"contact: DPO", "contact: \"D  PO\""},
      {"contact: DPO", "contact: DPO, email: a@b"},
      {"contact: DPO", "contact: DPO, email: a b@c.d"},
      {"contact: DPO", "contact: DPO, email: a@b@c.d"},
      {"contact: DPO", "contact: DPO, email: a@.b.c"},
      {"contact: DPO", "contact: DPO, phone: 92211110000"},
      {"contact: DPO", "contact: DPO, phone: +92 21"},
      {"contact: DPO", "contact: DPO, phone: +92  21 111 000 000"},
      {"contact: DPO", "contact: DPO, phone: +1234567890123456"},
      {"contact: DPO", "contact: DPO, privacy_policy_url: http://demo.example/p"},
      {"contact: DPO", "contact: DPO, privacy_policy_url: https:///p"},
      {"contact: DPO", "contact: DPO, privacy_policy_url: \"https://demo.example/a b\""},
      {"contact: DPO", "contact: DPO, website: https://demo.example"},
      {"Demo Bank Limited", std::string(141, 'x')},
      {"contact: DPO}", "contact: [DPO]}"},
      // Invisible, space-like and private-use characters (the file screen passes these).
      {"Demo Bank Limited", "Demo\u00A0Bank Limited"},
      {"Demo Bank Limited", "Demo Bank Limited\u3000"},
      {"Demo Bank Limited", "Demo Bank\u2060 Limited"},
      {"Demo Bank Limited", "Demo Ba\u00ADnk Limited"},
      {"Demo Bank Limited", "Demo Bank Limited\U000E0041"},
      {"Demo Bank Limited", "Demo Bank Limited\uFE0F"},
      {"Demo Bank Limited", "Demo\u180EBank"},
      {"Demo Bank Limited", "Demo \u3164 Bank"},
      {"Demo Bank Limited", "Demo\u034FBank"},
      {"Demo Bank Limited", "Demo\uE000Bank"},
      {"country: PK", "country: ZZ"},
      {"country: PK", "country: XK"},
      {"contact: DPO", "contact: DPO, privacy_policy_url: \"https://bank.example@evil.example/\""},
      {"contact: DPO", "contact: DPO, privacy_policy_url: \"https://bank.example/\\\"><x>\""},
      {"contact: DPO", "contact: DPO, privacy_policy_url: \"https://bank.example:/p\""},
      {"contact: DPO", "contact: DPO, privacy_policy_url: \"https://bank..example/p\""},
      {"contact: DPO", "contact: DPO, privacy_policy_url: \"https://bank.example/%zz\""},
  };
  for (const auto& [from, to] : cases) {
    std::vector<Diagnostic> diagnostics;
    const auto result = Load(ReplaceOnce(base, from, to), &diagnostics);
    EXPECT_FALSE(result.ok()) << to;
    ASSERT_THAT(diagnostics, SizeIs(1)) << to;
    EXPECT_THAT(diagnostics[0].path, HasSubstr("providers[0].controller")) << to;
    EXPECT_EQ(diagnostics[0].line, 13) << to;
  }
}

TEST(PolicyLoader, RefusesALegalNameTwoProvidersShare) {
  const std::string text = std::string(kMinimalPolicy) +
                           "    controller: {legal_name: Demo Bank Limited, country: PK, "
                           "contact: DPO}\n" +
                           "  - id: other-bank\n"
                           "    display_name: Other Bank\n"
                           "    status: suspended\n"
                           "    purposes: [{id: kyc, sms_text: KYC, scopes: [name]}]\n"
                           "    controller: {legal_name: DEMO BANK LIMITED, country: PK, "
                           "contact: DPO}\n";
  std::vector<Diagnostic> diagnostics;
  EXPECT_FALSE(Load(text, &diagnostics).ok());
  EXPECT_THAT(diagnostics, Contains(DiagnosticAt(18, 30, "providers[1].controller.legal_name",
                                                 "is already used by providers[0] (line 13)")));
}

TEST(PolicyLoader, AcceptsEmptyProviderList) {
  const auto result = Load("version: 1\nproviders: []\n");
  ASSERT_THAT(result, IsOk());
  EXPECT_THAT((*result)->providers(), SizeIs(0));
}

TEST(PolicyLoader, RejectsUnknownKeyWithLocation) {
  std::vector<Diagnostic> diagnostics;
  const auto result =
      Load("version: 1\ndefaults:\n  otp:\n    max_atempts: 5\nproviders: []\n", &diagnostics);
  EXPECT_THAT(result, HasReason("policy_invalid"));
  EXPECT_THAT(diagnostics, Contains(DiagnosticAt(4, 5, "defaults.otp.max_atempts",
                                                 "did you mean 'max_attempts'?")));
  EXPECT_THAT(result.error().message(),
              HasSubstr("test.yaml:4:5: defaults.otp.max_atempts: unknown key 'max_atempts'"));
}

TEST(PolicyLoader, ReportsEveryProblemInOneRun) {
  const std::string text = R"(version: 1
defaults:
  otp:
    digits: 9
    ttl: 20m
providers:
  - id: Bad_Id
    display_name: Demo Bank
    status: enabled
    credentials:
      - type: api_key
        sha256: nothex
    purposes:
      - id: account-opening
        sms_text: opening a bank account
        scopes: [name, dob]
)";
  std::vector<Diagnostic> diagnostics;
  ASSERT_THAT(Load(text, &diagnostics), HasReason("policy_invalid"));
  EXPECT_THAT(diagnostics, Contains(DiagnosticAt(4, 13, "defaults.otp.digits", "6 to 8")));
  EXPECT_THAT(diagnostics, Contains(DiagnosticAt(5, 10, "defaults.otp.ttl", "30s to 10m")));
  EXPECT_THAT(diagnostics, Contains(DiagnosticAt(7, 9, "providers[0].id", "slug")));
  EXPECT_THAT(diagnostics, Contains(DiagnosticAt(9, 13, "providers[0].status", "'enabled'")));
  EXPECT_THAT(diagnostics,
              Contains(DiagnosticAt(12, 17, "providers[0].credentials[0].sha256", "64 hex")));
  EXPECT_THAT(diagnostics,
              Contains(DiagnosticAt(16, 24, "providers[0].purposes[0].scopes[1]", "'dob'")));
  EXPECT_THAT(diagnostics, SizeIs(6));
}

TEST(PolicyLoader, OrdersDiagnosticsByPosition) {
  std::vector<Diagnostic> diagnostics;
  const std::string text =
      ReplaceOnce(ReplaceOnce(std::string(kMinimalPolicy), "scopes: [name,", "scopes: [nam,"),
                  "status: active", "status: on");
  ASSERT_THAT(Load(text, &diagnostics), HasReason("policy_invalid"));
  ASSERT_THAT(diagnostics, SizeIs(2));
  EXPECT_LT(diagnostics[0].line, diagnostics[1].line);
}

TEST(PolicyLoader, CapsTheNumberOfDiagnostics) {
  std::string text = "version: 1\nproviders: []\n";
  for (int i = 0; i < 300; ++i) text += "unknown" + std::to_string(i) + ": 1\n";
  std::vector<Diagnostic> diagnostics;
  ASSERT_THAT(Load(text, &diagnostics), HasReason("policy_invalid"));
  ASSERT_THAT(diagnostics, SizeIs(101));
  EXPECT_THAT(diagnostics.back().message, HasSubstr("and 200 more problems not shown"));
}

TEST(PolicyLoader, AcceptsColonSeparatedFingerprintAndNormalisesIt) {
  const std::string text = ReplaceOnce(
      ReplaceOnce(std::string(kMinimalPolicy), "type: api_key", "type: client_certificate"),
      "54bd67e14abb2c86b58570285af9d2210ad3e0c0b7eaabc2acacc220e93eca24",
      "54:BD:67:E1:4A:BB:2C:86:B5:85:70:28:5A:F9:D2:21:0A:D3:E0:C0:B7:EA:AB:C2:AC:AC:C2:20:E9:3E:"
      "CA:24");
  const auto result = Load(text);
  ASSERT_THAT(result, IsOk());
  const Provider* provider = (*result)->FindProvider("demo-bank");
  ASSERT_NE(provider, nullptr);
  ASSERT_THAT(provider->credentials, SizeIs(1));
  EXPECT_EQ(provider->credentials[0].sha256_hex,
            "54bd67e14abb2c86b58570285af9d2210ad3e0c0b7eaabc2acacc220e93eca24");
  EXPECT_EQ(provider->credentials[0].type, CredentialType::kClientCertificate);
}

TEST(PolicyLoader, NeverEchoesAPlaintextKey) {
  const std::string text =
      ReplaceOnce(std::string(kMinimalPolicy),
                  "54bd67e14abb2c86b58570285af9d2210ad3e0c0b7eaabc2acacc220e93eca24",
                  "ijz_live_supersecretvalue_0123456789abcdef");
  const auto result = Load(text);
  ASSERT_THAT(result, HasReason("policy_invalid"));
  EXPECT_THAT(result.error().message(), HasSubstr("plaintext API key"));
  EXPECT_THAT(result.error().message(), ::testing::Not(HasSubstr("supersecret")));
}

TEST(PolicyLoader, ProviderMayTightenEveryLimit) {
  const std::string text = std::string(kMinimalPolicy) + R"(    overrides:
      otp: {digits: 8, ttl: 2m, max_attempts: 1}
      token: {ttl: 5m, max_uses: 1}
      limits:
        failures_per_cnic_per_day: 3
        sms_per_cnic_per_hour: 2
        number_change_cooling_off: 7d
)";
  const auto result = Load(text);
  ASSERT_THAT(result, IsOk());
  const Limits& limits = (*result)->FindProvider("demo-bank")->limits;
  EXPECT_EQ(limits.otp.digits, 8);
  EXPECT_EQ(limits.otp.ttl, std::chrono::minutes(2));
  EXPECT_EQ(limits.otp.max_attempts, 1);
  EXPECT_EQ(limits.token.ttl, std::chrono::minutes(5));
  EXPECT_EQ(limits.cnic.failures_per_day, 3);
  EXPECT_EQ(limits.cnic.sms_per_hour, 2);
  EXPECT_EQ(limits.cnic.number_change_cooling_off, std::chrono::hours(7 * 24));
  EXPECT_EQ((*result)->defaults(), Limits{});
}

TEST(PolicyLoader, RejectsEveryLoosenedOverride) {
  const std::string text = "version: 1\ndefaults:\n  otp: {digits: 7, ttl: 2m, max_attempts: 2}\n" +
                           std::string(kMinimalPolicy).substr(11) + R"(    overrides:
      otp: {digits: 6, ttl: 3m, max_attempts: 3}
      token: {ttl: 1h, max_uses: 2}
      limits: {failures_per_cnic_per_day: 11, sms_per_cnic_per_hour: 6, number_change_cooling_off: 12h}
)";
  std::vector<Diagnostic> diagnostics;
  ASSERT_THAT(Load(text, &diagnostics), HasReason("policy_invalid"));
  EXPECT_THAT(diagnostics, SizeIs(8));
  for (const auto& diagnostic : diagnostics) {
    EXPECT_THAT(diagnostic.message, HasSubstr("a provider may only tighten it"));
    EXPECT_THAT(diagnostic.path, HasSubstr("providers[0].overrides."));
  }
}

TEST(PolicyLoader, AcceptsBoundaryValues) {
  const auto result = Load(
      "version: 1\ndefaults:\n  otp: {digits: 8, ttl: 10m, max_attempts: 5}\n"
      "  token: {ttl: 24h, max_uses: 10}\n"
      "  limits: {failures_per_cnic_per_day: 100, sms_per_cnic_per_hour: 20, "
      "number_change_cooling_off: 30d}\nproviders: []\n");
  EXPECT_THAT(result, IsOk());
  const auto low = Load(
      "version: 1\ndefaults:\n  otp: {digits: 6, ttl: 30s, max_attempts: 1}\n"
      "  token: {ttl: 1m, max_uses: 1}\n"
      "  limits: {failures_per_cnic_per_day: 1, sms_per_cnic_per_hour: 1, "
      "number_change_cooling_off: 1h}\nproviders: []\n");
  EXPECT_THAT(low, IsOk());
}

TEST(PolicyLoader, AcceptsAnchorsAndAliasesWithinTheCap) {
  const auto result = Load(R"(version: 1
providers:
  - id: a
    display_name: A
    status: suspended
    purposes:
      - {id: p, sms_text: p, scopes: &basic [name, father_name]}
      - {id: q, sms_text: q, scopes: *basic}
)");
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ((*result)->FindProvider("a")->FindPurpose("q")->scopes,
            (std::vector<Scope>{Scope::kName, Scope::kFatherName}));
}

TEST(PolicyLoader, StopsAliasExpansionBombQuickly) {
  // Ten levels of ten-fold aliases: 10^10 nodes if expanded.
  std::string text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 10; ++i) {
    text += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int j = 0; j < 10; ++j) text += (j ? ", *a" : "*a") + std::to_string(i - 1);
    text += "]\n";
  }
  const auto started = std::chrono::steady_clock::now();
  const auto result = Load(text);
  EXPECT_THAT(result, HasReason("policy_invalid"));
  EXPECT_THAT(result.error().message(), HasSubstr("anchors and aliases are expanded"));
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
}

TEST(PolicyLoader, RejectsDeepNestingWithoutExhaustingTheStack) {
  for (const std::string& text : {"a: " + std::string(100'000, '['),
                                  "a: " + std::string(100'000, '{'), std::string("a:\n") + [] {
                                    std::string nested;
                                    for (int i = 0; i < 200; ++i)
                                      nested += std::string(2 * i + 2, ' ') + "- \n";
                                    return nested;
                                  }()}) {
    const auto result = Load(text);
    ASSERT_THAT(result, HasReason("policy_invalid"));
  }
  EXPECT_THAT(Load("a: " + std::string(100, '[')).error().message(),
              HasSubstr("nested more than 16 levels deep"));
}

TEST(PolicyLoader, RejectsFilesAboveTheSizeCap) {
  std::string text =
      std::string(kMinimalPolicy) + "# " + std::string(std::size_t{1024} * 1024, 'x') + "\n";
  const auto result = Load(text);
  ASSERT_THAT(result, HasReason("policy_invalid"));
  EXPECT_THAT(result.error().message(), HasSubstr("larger than the 1048576-byte limit"));
}

TEST(PolicyLoader, SizeCapIsConfigurable) {
  LoaderLimits limits;
  limits.max_file_bytes = 64;
  EXPECT_THAT(PolicyLoader(limits).LoadString(kMinimalPolicy, "small.yaml"),
              HasReason("policy_invalid"));
}

TEST(PolicyLoader, ReportsEveryTabWithItsColumn) {
  std::vector<Diagnostic> diagnostics;
  ASSERT_THAT(Load("version:\t1\nproviders:\n\t- a\n", &diagnostics), HasReason("policy_invalid"));
  EXPECT_THAT(diagnostics, ::testing::ElementsAre(DiagnosticAt(1, 9, "", "tab character"),
                                                  DiagnosticAt(3, 1, "", "tab character")));
}

TEST(PolicyLoader, CountsColumnsInCharactersNotBytes) {
  std::vector<Diagnostic> diagnostics;
  ASSERT_THAT(Load("# \xc3\xa9\xc3\xa9\t\n", &diagnostics), HasReason("policy_invalid"));
  EXPECT_THAT(diagnostics, ::testing::ElementsAre(DiagnosticAt(1, 5, "", "tab")));
}

TEST(PolicyLoader, RejectsInvalidUtf8Sequences) {
  for (const char* text : {"version: \xc0\xaf\n",          // overlong '/'
                           "version: \xed\xa0\x80\n",      // UTF-16 surrogate
                           "version: \xf4\x90\x80\x80\n",  // above U+10FFFF
                           "version: \xe2\x82\n",          // truncated
                           "version: 1\nproviders: []\n\x80"}) {
    const auto result = Load(text);
    ASSERT_THAT(result, HasReason("policy_invalid")) << text;
    EXPECT_THAT(result.error().message(), HasSubstr("not valid UTF-8"));
  }
}

TEST(PolicyLoader, AcceptsByteOrderMarkAndCrlfLineEnds) {
  std::string text = "\xef\xbb\xbf";
  for (char c : std::string(kMinimalPolicy)) {
    if (c == '\n') text += '\r';
    text += c;
  }
  EXPECT_THAT(Load(text), IsOk());
}

TEST(PolicyLoader, RejectsNulAndZeroWidthCharacters) {
  EXPECT_THAT(Load(std::string("version: 1\0\nproviders: []\n", 26)).error().message(),
              HasSubstr("control character U+0000"));
  EXPECT_THAT(Load("version: 1\nproviders: [] # \xe2\x80\x8b\n").error().message(),
              HasSubstr("invisible formatting character U+200B"));
}

TEST(PolicyLoader, ExplainsNullRootAndScalarRoot) {
  EXPECT_THAT(Load("---\n").error().message(), HasSubstr("the policy file is empty"));
  EXPECT_THAT(Load("~\n").error().message(), HasSubstr("the policy file is empty"));
  EXPECT_THAT(Load("just text\n").error().message(), HasSubstr("a policy must be a mapping"));
}

TEST(PolicyLoader, QuotesHostileValuesSafely) {
  const auto result = Load("version: \"\\e[31mred\"\nproviders: []\n");
  ASSERT_THAT(result, HasReason("policy_invalid"));
  EXPECT_THAT(result.error().message(), HasSubstr("'\\u{1b}[31mred'"));
  EXPECT_EQ(result.error().message().find('\x1b'), std::string::npos);
}

TEST(PolicyLoader, AcceptsGsm7AccentedDisplayName) {
  const auto result =
      Load(ReplaceOnce(std::string(kMinimalPolicy), "Demo Bank", "\"Banque R\xc3\xa9gionale\""));
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ((*result)->FindProvider("demo-bank")->display_name, "Banque R\xc3\xa9gionale");
}

TEST(PolicyLoader, RejectsNonGsm7Letters) {
  const auto result =
      Load(ReplaceOnce(std::string(kMinimalPolicy), "Demo Bank", "\"\xd8\xa8\xd9\x86\xda\xa9\""));
  ASSERT_THAT(result, HasReason("policy_invalid"));
  EXPECT_THAT(result.error().message(), HasSubstr("U+0628"));
}

TEST(PolicyLoader, LoadFileReportsMissingFileAsUnreadable) {
  std::vector<Diagnostic> diagnostics;
  const auto result = PolicyLoader().LoadFile("/nonexistent/policy.yaml", &diagnostics);
  EXPECT_THAT(result, HasReason("policy_unreadable"));
  EXPECT_THAT(result, StatusIs(ErrorCode::kNotFound));
  EXPECT_THAT(diagnostics, SizeIs(1));
}

TEST(PolicyLoader, LoadFileRejectsDirectoriesAndFifosWithoutBlocking) {
  const ijazat::testing::TempDir dir;
  EXPECT_THAT(PolicyLoader().LoadFile(dir.path()), HasReason("policy_unreadable"));
  const auto fifo = dir.path() / "policy.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const auto result = PolicyLoader().LoadFile(fifo);
  EXPECT_THAT(result, HasReason("policy_unreadable"));
  EXPECT_THAT(result.error().message(), HasSubstr("not a regular file"));
}

TEST(PolicyLoader, LoadFileUsesThePathInDiagnostics) {
  const ijazat::testing::TempDir dir;
  const auto path = dir.WriteFile("bad.yaml", "version: 1\nproviders: 3\n");
  const auto result = PolicyLoader().LoadFile(path);
  ASSERT_THAT(result, HasReason("policy_invalid"));
  EXPECT_THAT(result.error().message(), HasSubstr(path.string() + ":2:12: providers: "));
}

TEST(PolicyLoader, LoadFileRejectsUnreadablePermissions) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads any file";
  const ijazat::testing::TempDir dir;
  const auto path = dir.WriteFile("locked.yaml", kMinimalPolicy, std::filesystem::perms::none);
  EXPECT_THAT(PolicyLoader().LoadFile(path), StatusIs(ErrorCode::kPermissionDenied));
}

TEST(PolicyLoader, LoadFileRejectsOversizedFileBeforeParsing) {
  const ijazat::testing::TempDir dir;
  const auto path = dir.WriteFile("big.yaml", std::string(std::size_t{2} * 1024 * 1024, '#'));
  const auto result = PolicyLoader().LoadFile(path);
  ASSERT_THAT(result, HasReason("policy_invalid"));
  EXPECT_THAT(result.error().message(), HasSubstr("1048576-byte limit"));
}

}  // namespace
}  // namespace ijazat::policy
