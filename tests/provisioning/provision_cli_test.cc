// ijazat-provision end to end: the real binary against a fresh SoftHSM token per test, checking
// output and the documented exit codes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "ijazat/provisioning/cli.h"
#include "support/softhsm_token.h"
#include "support/temp_dir.h"

namespace ijazat::provisioning {
namespace {

using ::testing::AllOf;
using testing::CommandResult;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::RunCommand;

std::string Binary() { return testing::BinaryPath("ijazat-provision"); }

class ProvisionCliTest : public ::testing::Test {
 protected:
  // Runs the tool on the test token with the user PIN file.
  CommandResult Provision(const std::string& arguments) {
    return RunCommand(Binary() + " --token " + token_.label() + " --pin-file " +
                      token_.user_pin_file().string() + " " + arguments);
  }
  // Runs the tool with exactly the given arguments.
  CommandResult Raw(const std::string& arguments) { return RunCommand(Binary() + " " + arguments); }

  void KeygenAll() {
    const auto result = Provision("keygen --all");
    ASSERT_EQ(result.exit_code, kExitOk) << result.output;
  }

  // Evaluates a Python expression over the JSON in `json` (as `d`) with Debian's python3.
  std::string PythonOnJson(const std::string& json, const std::string& expression) {
    const auto file = token_.dir().WriteFile("out.json", json);
    const auto result =
        RunCommand("/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(" +
                   expression + ")' " + file.string());
    EXPECT_EQ(result.exit_code, 0) << result.output;
    return result.output;
  }

  testing::SoftHsmToken token_;
};

TEST_F(ProvisionCliTest, Help_PrintsEveryCommandAndExitCode) {
  const auto result = Raw("--help");
  EXPECT_EQ(result.exit_code, kExitOk);
  for (const char* text :
       {"init-token", "keygen", "rotate", "retire", "list", "check", "jwks", "Exit codes"}) {
    EXPECT_THAT(result.output, HasSubstr(text));
  }
}

TEST_F(ProvisionCliTest, UsageErrors_ExitTwoWithASpecificMessage) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "no command given"},
      {"frobnicate", "unknown command \"frobnicate\""},
      {"list --verbose", "unknown option --verbose"},
      {"keygen", "keygen needs --name NAME"},
      {"keygen --name rsa", "unknown key name \"rsa\""},
      {"keygen --name otp --all", "either --name or --all"},
      {"retire --name receipt", "retire needs --version V"},
      {"retire --name receipt --version 0", "positive whole number"},
      {"retire --name receipt --version abc", "positive whole number"},
      {"list --module", "--module needs a value"},
      {"list extra", "unexpected argument \"extra\""},
      {"keygen --name otp --name data", "--name is given twice"},
  };
  for (const auto& [arguments, message] : cases) {
    const auto result = Provision(arguments);
    EXPECT_EQ(result.exit_code, kExitUsage) << arguments << ": " << result.output;
    EXPECT_THAT(result.output, HasSubstr(message)) << arguments;
  }
}

TEST_F(ProvisionCliTest, PinOnTheCommandLine_IsRefused) {
  for (const char* arguments :
       {"--pin 1234-user list", "list --pin=1234-user", "--so-pin x list"}) {
    const auto result = Raw(std::string("--token ijazat-test ") + arguments);
    EXPECT_EQ(result.exit_code, kExitUsage) << arguments;
    EXPECT_THAT(result.output, HasSubstr("never taken from the command line"));
  }
}

TEST_F(ProvisionCliTest, KeygenAll_CreatesEveryKey_AndListShowsThem) {
  KeygenAll();
  const auto list = Provision("list");
  ASSERT_EQ(list.exit_code, kExitOk) << list.output;
  for (const char* label : {"otp/v1  active  CKM_SHA256_HMAC",
                            "receipt/v1  active  CKM_ECDSA  kid=", "index/v1  active",
                            "data/v1  active  CKM_AES_GCM", "log/v1  active  CKM_EDDSA  kid="}) {
    EXPECT_THAT(list.output, HasSubstr(label));
  }
  EXPECT_THAT(list.output, HasSubstr("CKA_SENSITIVE=true CKA_EXTRACTABLE=false"));

  const auto json = Provision("list --json");
  ASSERT_EQ(json.exit_code, kExitOk) << json.output;
  EXPECT_EQ(PythonOnJson(json.output, "sorted((k[\"label\"], k[\"state\"]) for k in d)"),
            "[('data/v1', 'active'), ('index/v1', 'active'), ('log/v1', 'active'), "
            "('otp/v1', 'active'), ('receipt/v1', 'active')]\n");
  EXPECT_EQ(PythonOnJson(json.output,
                         "[o[\"attributes\"][\"CKA_EXTRACTABLE\"] for k in d for o in "
                         "k[\"objects\"] if o[\"class\"] != \"public key\"]"),
            "[False, False, False, False, False]\n");
}

TEST_F(ProvisionCliTest, Keygen_RefusesAnExistingKey) {
  ASSERT_EQ(Provision("keygen --name receipt").exit_code, kExitOk);
  const auto again = Provision("keygen --name receipt");
  EXPECT_EQ(again.exit_code, kExitExists);
  EXPECT_THAT(again.output, HasSubstr("use rotate"));
}

TEST_F(ProvisionCliTest, KeygenAll_IsIdempotent) {
  KeygenAll();
  const auto again = Provision("keygen --all");
  EXPECT_EQ(again.exit_code, kExitOk);
  EXPECT_THAT(again.output, Not(HasSubstr("created")));
}

TEST_F(ProvisionCliTest, RotateAndRetire_FollowTheKeyLifecycle) {
  EXPECT_EQ(Provision("rotate --name receipt").exit_code, kExitUnknownKey);
  KeygenAll();
  const auto rotated = Provision("rotate --name receipt");
  ASSERT_EQ(rotated.exit_code, kExitOk) << rotated.output;
  EXPECT_THAT(rotated.output, HasSubstr("created receipt/v2 (active) kid="));

  const auto both = Provision("jwks");
  ASSERT_EQ(both.exit_code, kExitOk);
  EXPECT_EQ(PythonOnJson(both.output, "len(d[\"keys\"])"), "2\n");

  const auto active = Provision("retire --name receipt --version 2");
  EXPECT_EQ(active.exit_code, kExitKeyState);
  EXPECT_THAT(active.output, HasSubstr("active version"));
  EXPECT_EQ(Provision("retire --name receipt --version 9").exit_code, kExitUnknownKey);
  EXPECT_EQ(Provision("retire --name receipt --version 1").exit_code, kExitOk);
  EXPECT_EQ(Provision("retire --name receipt --version 1").exit_code, kExitKeyState);

  const auto one = Provision("jwks");
  EXPECT_EQ(PythonOnJson(one.output, "[(k[\"alg\"], k[\"crv\"]) for k in d[\"keys\"]]"),
            "[('ES256', 'P-256')]\n");
  const auto list = Provision("list");
  EXPECT_THAT(list.output,
              AllOf(HasSubstr("receipt/v2  active"), HasSubstr("receipt/v1  retired")));
  // The retired version keeps its kid in the list: an old receipt's kid still maps to it.
  EXPECT_THAT(list.output,
              ::testing::ContainsRegex("receipt/v1  retired  CKM_ECDSA  kid=[A-Za-z0-9_-]{43}"));
}

TEST_F(ProvisionCliTest, Check_PassesOnKeysFromKeygen) {
  KeygenAll();
  const auto check = Provision("check");
  EXPECT_EQ(check.exit_code, kExitOk) << check.output;
  EXPECT_THAT(check.output, HasSubstr("ok: 5 key versions match their templates"));
}

// After a compromise: rotate, retire, destroy. The retirement cannot be undone by deleting its
// record, and `check` finds any key objects and records that disagree.
TEST_F(ProvisionCliTest, Destroy_RemovesARetiredVersionForGood_AndCheckFindsInconsistencies) {
  KeygenAll();
  ASSERT_EQ(Provision("rotate --name receipt").exit_code, kExitOk);
  const auto unconfirmed = Provision("destroy --name receipt --version 1");
  EXPECT_EQ(unconfirmed.exit_code, kExitUsage);
  EXPECT_THAT(unconfirmed.output, HasSubstr("cannot be undone"));
  const auto not_retired = Provision("destroy --name receipt --version 1 --confirm");
  EXPECT_EQ(not_retired.exit_code, kExitKeyState) << not_retired.output;
  EXPECT_THAT(not_retired.output, HasSubstr("retire it first"));

  ASSERT_EQ(Provision("retire --name receipt --version 1").exit_code, kExitOk);
  // The retirement record can be neither changed nor deleted with the user PIN.
  const auto undo = RunCommand(token_.Pkcs11Tool(
      "--delete-object --type data --label retired:receipt/v1 --application-label ijazat"));
  EXPECT_NE(undo.exit_code, 0) << undo.output;
  const std::string retired_list = Provision("list").output;
  const auto at = retired_list.find("receipt/v1  retired  CKM_ECDSA  kid=");
  ASSERT_NE(at, std::string::npos) << retired_list;
  const std::string line = retired_list.substr(at, retired_list.find('\n', at) - at);
  const std::string kid = line.substr(line.find("kid=") + 4);

  const auto destroyed = Provision("destroy --name receipt --version 1 --confirm");
  ASSERT_EQ(destroyed.exit_code, kExitOk) << destroyed.output;
  EXPECT_THAT(destroyed.output, HasSubstr("destroyed receipt/v1"));
  const auto list = Provision("list");
  // Gone from the token, still listed with the kid it had: an auditor maps the receipts it
  // signed to the version, and knows their key was destroyed.
  EXPECT_THAT(list.output, HasSubstr("receipt/v1  destroyed  CKM_ECDSA  kid=" + kid + "\n"));
  EXPECT_THAT(list.output, HasSubstr("receipt/v2  active"));
  EXPECT_EQ(Provision("check").exit_code, kExitOk) << Provision("check").output;
  EXPECT_EQ(PythonOnJson(Provision("jwks").output, "len(d[\"keys\"])"), "1\n");

  // A key deleted behind the tool's back (here index/v1's secret key, after a rotation) is an
  // inconsistency.
  ASSERT_EQ(Provision("rotate --name index").exit_code, kExitOk);
  const auto deleted =
      RunCommand(token_.Pkcs11Tool("--delete-object --type secrkey --label index/v1"));
  ASSERT_EQ(deleted.exit_code, 0) << deleted.output;
  const auto check = Provision("check");
  EXPECT_EQ(check.exit_code, kExitDeviations) << check.output;
  EXPECT_THAT(check.output, HasSubstr("index/v1: key objects is missing (deleted outside "
                                      "ijazat-provision)"));
}

TEST_F(ProvisionCliTest, Check_FailsNamingEachDeviation_OnAWeakKeyFromPkcs11Tool) {
  KeygenAll();
  const auto weak =
      RunCommand(token_.Pkcs11Tool("--keygen --key-type GENERIC:32 --label index/v2"));
  ASSERT_EQ(weak.exit_code, 0) << weak.output;
  const auto check = Provision("check");
  EXPECT_EQ(check.exit_code, kExitDeviations) << check.output;
  EXPECT_THAT(check.output,
              HasSubstr("index/v2 (secret key): CKA_MODIFIABLE is true, expected false"));
  EXPECT_THAT(
      check.output,
      HasSubstr("index/v2 (secret key): CKA_ALLOWED_MECHANISMS is none, expected CKM_SHA256_HMAC"));
  EXPECT_THAT(check.output, Not(HasSubstr("index/v1")));

  const auto json = Provision("check --json");
  EXPECT_EQ(json.exit_code, kExitDeviations);
  EXPECT_EQ(PythonOnJson(json.output, "sorted({x[\"key\"] for x in d[\"deviations\"]})"),
            "['index/v2 (secret key)']\n");
}

TEST_F(ProvisionCliTest, WrongPin_ExitsFive_WithoutEchoingIt) {
  const auto pin = token_.dir().WriteFile("bad.pin", "not-the-pin\n");
  const auto result =
      RunCommand(Binary() + " --token " + token_.label() + " --pin-file " + pin.string() + " list");
  EXPECT_EQ(result.exit_code, kExitPin);
  EXPECT_THAT(result.output, HasSubstr("rejected the PIN"));
  EXPECT_THAT(result.output, Not(HasSubstr("not-the-pin")));
}

// SoftHSM says only CKR_GENERAL_ERROR when its configuration is missing: the message names the
// file it looked for and the variable that sets it.
TEST_F(ProvisionCliTest, MissingSoftHsmConfiguration_NamesSoftHsm2Conf) {
  const std::string missing = (token_.dir().path() / "no-such.conf").string();
  const auto unset =
      RunCommand("env SOFTHSM2_CONF=" + missing + " " + Binary() + " --token " + token_.label() +
                 " --pin-file " + token_.user_pin_file().string() + " list");
  EXPECT_NE(unset.exit_code, 0);
  EXPECT_THAT(unset.output, HasSubstr("SoftHSM reads its configuration from " + missing +
                                      " (SOFTHSM2_CONF), which does not exist"));
}

TEST_F(ProvisionCliTest, PinFileReadableByOthers_ExitsFive) {
  std::filesystem::permissions(token_.user_pin_file(), std::filesystem::perms::others_read,
                               std::filesystem::perm_options::add);
  const auto result = Provision("list");
  EXPECT_EQ(result.exit_code, kExitPin);
  EXPECT_THAT(result.output, HasSubstr("accessible to other users"));
}

TEST_F(ProvisionCliTest, PinFromEnvironment_IsUsed) {
  const auto result = RunCommand("IJAZAT_HSM_PIN='" + token_.user_pin() + "' " + Binary() +
                                 " --token " + token_.label() + " list");
  EXPECT_EQ(result.exit_code, kExitOk) << result.output;
  EXPECT_THAT(result.output, HasSubstr("no keys on token"));
}

TEST_F(ProvisionCliTest, UnknownToken_ExitsFour_ListingTheLabels) {
  const auto result = RunCommand(Binary() + " --token missing --pin-file " +
                                 token_.user_pin_file().string() + " list");
  EXPECT_EQ(result.exit_code, kExitToken);
  EXPECT_THAT(result.output, HasSubstr("tokens there: \"ijazat-test\""));
}

TEST_F(ProvisionCliTest, MissingModule_ExitsThree) {
  const auto result = Provision("--module /nonexistent/module.so list");
  EXPECT_EQ(result.exit_code, kExitModule);
  EXPECT_THAT(result.output, HasSubstr("cannot load the PKCS#11 module /nonexistent/module.so"));
}

TEST_F(ProvisionCliTest, Tokens_ListsTheInitialisedToken) {
  const auto result = Raw("tokens");
  EXPECT_EQ(result.exit_code, kExitOk);
  EXPECT_THAT(result.output, HasSubstr("ijazat-test  SoftHSM project"));
}

TEST(ProvisionInitToken, InitialisesOnce_ThenRefuses) {
  testing::SoftHsmToken blank("unused", /*initialize=*/false);
  const auto so = blank.so_pin_file().string();
  const auto user = blank.user_pin_file().string();
  const std::string base = Binary() + " --pin-file " + user + " init-token --label lab";
  const auto first = RunCommand(base + " --so-pin-file " + so);
  EXPECT_EQ(first.exit_code, kExitOk) << first.output;
  EXPECT_THAT(first.output, HasSubstr("initialised token \"lab\""));
  EXPECT_EQ(RunCommand(base + " --so-pin-file " + so).exit_code, kExitExists);
  const auto no_so_pin = RunCommand("env -u IJAZAT_HSM_SO_PIN " + base + "2");
  EXPECT_EQ(no_so_pin.exit_code, kExitPin);
  EXPECT_THAT(no_so_pin.output, HasSubstr("IJAZAT_HSM_SO_PIN is not set"));
  EXPECT_THAT(no_so_pin.output, HasSubstr("--so-pin-file FILE"));
  // --token and --label naming two tokens: which one was meant?
  const auto both = RunCommand(Binary() + " --token foo --pin-file " + user +
                               " init-token --label bar --so-pin-file " + so);
  EXPECT_EQ(both.exit_code, kExitUsage) << both.output;
  EXPECT_THAT(both.output, HasSubstr("name different tokens"));
  EXPECT_THAT(RunCommand(Binary() + " tokens").output, Not(HasSubstr("bar ")))
      << "nothing was created";
  const auto keys = RunCommand(Binary() + " --token lab --pin-file " + user + " keygen --all");
  EXPECT_EQ(keys.exit_code, kExitOk) << keys.output;
}

// The local development token of `make run` (./var/hsm) in a working directory.
class ProvisionLocalToken : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(hsm_dir_);
    std::filesystem::copy_file(token_.config_file(), hsm_dir_ / "softhsm2.conf");
    std::filesystem::copy_file(token_.user_pin_file(), hsm_dir_ / "user.pin");
  }
  // Runs the tool in the working directory with no token configuration or PIN from outside.
  CommandResult RunHere(const std::string& arguments) {
    return RunCommand("cd " + work_.path().string() +
                      " && env -u SOFTHSM2_CONF -u IJAZAT_HSM_PIN -u IJAZAT_HSM_PIN_FILE -u "
                      "IJAZAT_HSM_TOKEN " +
                      Binary() + " " + arguments);
  }
  testing::SoftHsmToken token_{"ijazat-dev"};
  testing::TempDir work_;
  std::filesystem::path hsm_dir_ = work_.path() / "var" / "hsm";
};

TEST_F(ProvisionLocalToken, WithDev_UsesVarHsmInTheWorkingDirectory) {
  const auto result = RunHere("--dev keygen --name otp");
  EXPECT_EQ(result.exit_code, kExitOk) << result.output;
  EXPECT_THAT(result.output, HasSubstr("created otp/v1"));
}

// Run as root from a directory someone else controls, the tool must not take that directory's
// token configuration and PIN unasked.
TEST_F(ProvisionLocalToken, WithoutDev_TheWorkingDirectoryIsNeverUsed) {
  const auto result = RunHere("keygen --name otp");
  EXPECT_EQ(result.exit_code, kExitPin) << result.output;
  EXPECT_THAT(result.output, HasSubstr("no user PIN source"));
  EXPECT_THAT(result.output, HasSubstr("add --dev"));
  // Nothing was created on the token.
  const auto list = RunHere("--dev list");
  EXPECT_EQ(list.exit_code, kExitOk) << list.output;
  EXPECT_THAT(list.output, HasSubstr("no keys on token"));
  // With a PIN from elsewhere but no SOFTHSM2_CONF, the working directory's configuration is
  // not read either: the module's own default configuration has no such token.
  const auto pin_only = RunHere("--pin-file " + token_.user_pin_file().string() + " list");
  EXPECT_NE(pin_only.exit_code, kExitOk) << pin_only.output;
}

TEST_F(ProvisionLocalToken, WithDev_RefusesAConfigurationOthersCanWrite) {
  std::filesystem::permissions(hsm_dir_ / "softhsm2.conf", std::filesystem::perms::others_write,
                               std::filesystem::perm_options::add);
  const auto result = RunHere("--dev list");
  EXPECT_EQ(result.exit_code, kExitPin) << result.output;
  EXPECT_THAT(result.output, HasSubstr("writable by nobody else"));
}

// Root in a directory another user controls: that user could swap var/hsm (a symbolic link
// flipped between the check and SoftHSM's reading of the file), so --dev refuses the directory.
TEST_F(ProvisionLocalToken, WithDev_RefusesADirectoryAnotherUserControls) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to hand the directory to another user";
  ASSERT_EQ(::chown(hsm_dir_.parent_path().c_str(), 65534, 65534), 0);  // var/, as nobody's
  const auto result = RunHere("--dev list");
  EXPECT_EQ(result.exit_code, kExitPin) << result.output;
  EXPECT_THAT(result.output, HasSubstr("belongs to another user"));
  // A symbolic link to the token's real directory is resolved, and the real one checked.
  ASSERT_EQ(::chown(hsm_dir_.parent_path().c_str(), 0, 0), 0);
  std::filesystem::rename(hsm_dir_, work_.path() / "real-hsm");
  std::filesystem::create_directory_symlink(work_.path() / "real-hsm", hsm_dir_);
  const auto linked = RunHere("--dev list");
  EXPECT_EQ(linked.exit_code, kExitOk) << linked.output;
}

TEST_F(ProvisionLocalToken, WithDev_NamesWhatIsMissing) {
  std::filesystem::remove_all(work_.path() / "var");
  const auto result = RunHere("--dev list");
  EXPECT_EQ(result.exit_code, kExitPin) << result.output;
  EXPECT_THAT(result.output, HasSubstr("there is no var/hsm/"));
}

}  // namespace
}  // namespace ijazat::provisioning
