#include "config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

#include "support/result_matchers.h"
#include "support/temp_dir.h"

namespace ijazat::appliance {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kMinimal[] = R"(issuer: https://ijazat.example
server:
  listen: 127.0.0.1:8443
  threads: 16
  keep_alive_timeout: 5s
tls:
  certificate: tls/server.crt
  key: tls/server.key
hsm:
  token: ijazat-dev
  pin_file: hsm/user.pin
store: {path: ijazat.db}
registry: {path: registry.db}
policy: policy.yaml
sms:
  short_code: "8009"
  inbound_secret_file: gateway.secret
  sender: file
  file: sms.jsonl
)";

Result<Config> Load(const std::string& text) {
  testing::TempDir dir;
  return LoadConfig(dir.WriteFile("ijazatd.yaml", text).string());
}

TEST(LoadConfig, ReadsAValidFile) {
  const auto config = Load(kMinimal);
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->server.threads, 16);
  EXPECT_EQ(config->hsm.token, "ijazat-dev");
  EXPECT_EQ(config->sms.short_code, "8009");
  EXPECT_EQ(config->receipt.policy_url, "https://ijazat.example/policy");
}

TEST(LoadConfig, ReportsEveryProblemWithItsLocation) {
  std::string text = kMinimal;
  text.replace(text.find("threads: 16"), 11, "threadz: 16");
  text.replace(text.find("keep_alive_timeout: 5s"), 22, "keep_alive_timeout: 5 minutes");
  const auto config = Load(text);
  ASSERT_THAT(config, HasReason("config_invalid"));
  EXPECT_THAT(config.error().message(), HasSubstr(":4:3: server.threadz: unknown key"));
  EXPECT_THAT(config.error().message(),
              HasSubstr(":5:23: server.keep_alive_timeout: must be a duration"));
}

TEST(LoadConfig, ReadsSmsNumbersCapsEnrolmentAndNumberChanges) {
  const auto config = Load(std::string(kMinimal) + R"(  numbers:
    country_code: "92"
    national_digits: 10
    ranges: ["+92300", "+92333"]
  caps: {per_number_per_hour: 3, per_number_per_day: 9, per_cnic_per_day: 7}
  enrolment: open-for-development
  number_changes: {max: 2, window: 7d}
)");
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->sms.numbers.ranges, (std::vector<std::string>{"+92300", "+92333"}));
  EXPECT_EQ(config->sms.caps.per_number_per_hour, 3);
  EXPECT_EQ(config->sms.caps.per_number_per_day, 9);
  EXPECT_EQ(config->sms.caps.per_cnic_per_day, 7);
  EXPECT_EQ(config->sms.enrolment, SmsConfig::Enrolment::kOpen);
  EXPECT_EQ(config->sms.number_changes.max, 2);
  EXPECT_EQ(config->sms.number_changes.window, std::chrono::hours(7 * 24));
  const auto defaults = Load(kMinimal);
  EXPECT_EQ(defaults->sms.enrolment, SmsConfig::Enrolment::kAuthority)
      << "only numbers an authority binds to the CNIC enrol, unless told otherwise";
  EXPECT_EQ(defaults->sms.number_changes.max, 3);
  EXPECT_EQ(defaults->sms.number_changes.window, std::chrono::hours(30 * 24));
}

TEST(LoadConfig, EnrolmentModes_OnlyAuthorityOrAnExplicitDevelopmentSetting) {
  auto config = Load(std::string(kMinimal) + "  enrolment: open\n");
  ASSERT_THAT(config, HasReason("config_invalid"));
  EXPECT_THAT(config.error().message(),
              HasSubstr("sms.enrolment: must be authority (a number enrols only where the "
                        "registry binds it to the CNIC) or open-for-development"));
  config = Load(std::string(kMinimal) + "  require_subscriber_match: false\n");
  ASSERT_THAT(config, HasReason("config_invalid"));
  EXPECT_THAT(config.error().message(),
              HasSubstr("sms.require_subscriber_match: was replaced by sms.enrolment"))
      << "a setting whose meaning changed is refused, not read silently";
  config = Load(std::string(kMinimal) + "  number_changes: {max: 0, window: 1d}\n");
  ASSERT_THAT(config, HasReason("config_invalid"));
  EXPECT_THAT(config.error().message(), HasSubstr("sms.number_changes.max"));
}

TEST(LoadConfig, RefusesBadNumberPlansCapsAndFlags) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"  numbers: {ranges: [\"+443\"]}\n", "sms.numbers: range \"+443\""},
      {"  numbers: {ranges: []}\n", "sms.numbers.ranges: must be a list"},
      {"  numbers: {national_digits: 30}\n", "sms.numbers.national_digits: must be"},
      {"  caps: {per_number_per_hour: 0}\n", "sms.caps.per_number_per_hour: must be"},
      {"  caps: {per_day: 3}\n", "sms.caps.per_day: unknown key"},
      {"  number_changes: {window: 10m}\n", "sms.number_changes.window: must be a duration"},
  };
  for (const auto& [extra, message] : cases) {
    const auto config = Load(std::string(kMinimal) + extra);
    ASSERT_THAT(config, HasReason("config_invalid")) << extra;
    EXPECT_THAT(config.error().message(), HasSubstr(message)) << extra;
  }
}

TEST(LoadConfig, RefusesACredentialInTheDeliveryReportUrl) {
  std::string text = kMinimal;
  text += R"(  dlr_secret_file: dlr.secret
  kannel:
    url: http://127.0.0.1:13013/cgi-bin/sendsms
    username: ijazat
    password_file: kannel.password
    dlr_url: https://ijazat.example/v1/sms/dlr?secret=s3cr3t
)";
  const auto config = Load(text);
  ASSERT_THAT(config, HasReason("config_invalid"));
  EXPECT_THAT(config.error().message(), HasSubstr("dlr_url must carry no credential"));
  EXPECT_THAT(config.error().message(), Not(HasSubstr("s3cr3t"))) << "never echoes a secret";
}

TEST(LoadConfig, ReadsTheOperatorAsProcessor_AndNamesTheRenamedKeys) {
  const auto config =
      Load(std::string(kMinimal) +
           "receipt: {operator_name: NADRA, operator_contact: dpo@nadra.example}\n");
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->receipt.operator_name, "NADRA");
  EXPECT_EQ(config->receipt.operator_contact, "dpo@nadra.example");
  // The keys of the release that named the operator as controller say what replaced them.
  const auto old = Load(std::string(kMinimal) +
                        "receipt:\n  controller_name: NADRA\n  controller_contact: dpo@x\n");
  ASSERT_THAT(old, HasReason("config_invalid"));
  EXPECT_THAT(old.error().message(),
              HasSubstr(":21:20: receipt.controller_name: was renamed operator_name"));
  EXPECT_THAT(old.error().message(),
              HasSubstr(":22:23: receipt.controller_contact: was renamed operator_contact"));
}

// The issuer is every token's iss, compared byte for byte: one spelling of an https URL.
TEST(LoadConfig, RefusesAnIssuerThatIsNotOneHttpsUrl) {
  for (const char* issuer :
       {"localhost", "http://ijazat.example", "https://", "https://ijazat.example/",
        "https://ijazat.example?x=1", "https://ijazat.example#a", "https://user@ijazat.example",
        "ijazat.example/https://x"}) {
    std::string text = kMinimal;
    text.replace(text.find("https://ijazat.example"), 22, issuer);
    const auto config = Load(text);
    ASSERT_THAT(config, HasReason("config_invalid")) << issuer;
    EXPECT_THAT(config.error().message(),
                HasSubstr("issuer must be the appliance's public https URL"))
        << issuer;
  }
  for (const char* issuer : {"https://ijazat.nadra.gov.pk", "https://ijazat.example:8443",
                             "https://example.pk/ijazat"}) {
    std::string text = kMinimal;
    text.replace(text.find("https://ijazat.example"), 22, issuer);
    EXPECT_THAT(Load(text), IsOk()) << issuer;
  }
}

// YAML::Load would keep the last of two `listen:` lines silently; the shared reader refuses
// the second, with its place, at any depth, in block and flow style alike.
TEST(LoadConfig, RefusesADuplicatedKey_NamingBothLines) {
  std::string text = kMinimal;
  text.replace(text.find("  threads: 16\n"), 13, "  threads: 16\n  listen: 0.0.0.0:8443\n");
  const auto config = Load(text);
  ASSERT_THAT(config, HasReason("config_invalid"));
  EXPECT_THAT(config.error().message(),
              HasSubstr(":5:3: server.listen: appears twice in this mapping (first at line 3)"));
  const auto top = Load(std::string(kMinimal) + "issuer: https://other.example\n");
  ASSERT_THAT(top, HasReason("config_invalid"));
  EXPECT_THAT(top.error().message(),
              HasSubstr(":20:1: issuer: appears twice in this mapping (first at line 1)"));
  const auto flow = Load(std::string(kMinimal) + "log: {file: a.log, file: b.log}\n");
  ASSERT_THAT(flow, HasReason("config_invalid"));
  EXPECT_THAT(flow.error().message(), HasSubstr("log.file: appears twice in this mapping"));
  // What a repeated section holds is judged all the same: a PIN in it is named, not echoed.
  const auto pin = Load(std::string(kMinimal) + "hsm: {pin: \"1234\"}\n");
  ASSERT_THAT(pin, HasReason("config_invalid"));
  EXPECT_THAT(pin.error().message(), HasSubstr("hsm: appears twice in this mapping"));
  EXPECT_THAT(pin.error().message(), HasSubstr("a PIN never goes in the configuration"));
  EXPECT_THAT(pin.error().message(), Not(HasSubstr("1234")));
}

TEST(LoadConfig, RefusesAPinInTheFile) {
  std::string text = kMinimal;
  text.replace(text.find("pin_file: hsm/user.pin"), 22, "pin: \"1234\"");
  const auto config = Load(text);
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.error().message(), HasSubstr("a PIN never goes in the configuration"));
  EXPECT_THAT(config.error().message(), ::testing::Not(HasSubstr("1234")));
}

TEST(LoadConfig, RefusesEmptyTabsBadYamlAndMissingKeys) {
  EXPECT_THAT(Load(""), HasReason("config_invalid"));
  EXPECT_THAT(Load("issuer:\tx\n"), HasReason("config_invalid"));
  EXPECT_THAT(Load("issuer: [\n"), HasReason("config_invalid"));
  const auto missing = Load("issuer: x\n");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.error().message(), HasSubstr("tls.certificate is required"));
  EXPECT_THAT(missing.error().message(), HasSubstr("give exactly one of pin_file and pin_env"));
  std::string bad_listen = kMinimal;
  bad_listen.replace(bad_listen.find("127.0.0.1:8443"), 14, "127.0.0.1:99999");
  EXPECT_THAT(Load(bad_listen), HasReason("config_invalid"));
}

TEST(ParseConfig, ReadsTextAsLoadConfigReadsTheFile) {
  const auto parsed = ParseConfig(kMinimal, "inline.yaml");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message();
  const auto loaded = Load(kMinimal);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(parsed->source, "inline.yaml");
  EXPECT_EQ(parsed->server.listen, loaded->server.listen);
  EXPECT_EQ(parsed->hsm.pin_file, loaded->hsm.pin_file);
  EXPECT_EQ(parsed->sms.file, loaded->sms.file);
}

TEST(ParseConfig, RefusesMoreThanTheSizeCap) {
  std::string text = kMinimal;
  text += "#" + std::string(kMaxConfigBytes - text.size() - 2, 'x') + "\n";
  ASSERT_EQ(text.size(), kMaxConfigBytes);
  EXPECT_TRUE(ParseConfig(text, "big.yaml").ok());
  text += "\n";
  const auto big = ParseConfig(text, "big.yaml");
  ASSERT_THAT(big, HasReason("config_invalid"));
  EXPECT_THAT(big.error().message(), HasSubstr("larger than 256 KiB"));
}

// Each problem is one line, even for a quoted key holding a line break (found by the config
// fuzzer's invariant: every line of the message names the file).
TEST(ParseConfig, KeepsEachProblemOnOneLine) {
  const auto bad = ParseConfig("\"a\\nb\": 1\n\"c\\u007f\": 2\n", "keys.yaml");
  ASSERT_FALSE(bad.ok());
  std::istringstream lines(bad.error().message());
  std::string line;
  while (std::getline(lines, line)) EXPECT_EQ(line.rfind("keys.yaml", 0), 0u) << line;
  EXPECT_THAT(bad.error().message(), HasSubstr("a\\x0ab: unknown key"));
  EXPECT_THAT(bad.error().message(), HasSubstr("c\\x7f: unknown key"));
}

TEST(LoadConfig, RefusesAMissingFile) {
  EXPECT_THAT(LoadConfig("/nonexistent/ijazatd.yaml"), HasReason("config_invalid"));
}

}  // namespace
}  // namespace ijazat::appliance
