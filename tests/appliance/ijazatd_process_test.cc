// The real ijazatd binary: configuration from a file, --port-file, SIGHUP reloads (a bad policy
// keeps the old one and the log says why), SIGTERM drains and exits 0, and it refuses to start
// with a clear message when a part is missing, when run as root, or when a secret file is not
// the process's own or is open to its group or to others. As an unprivileged user with a PIN
// file like systemd's credentials it serves, and cannot dump core.
#include <gmock/gmock.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "appliance_fixture.h"
#include "support/posix_acl.h"
#include "support/temp_dir.h"

namespace ijazat::appliance::testing {
namespace {

using std::filesystem::perms;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr uid_t kServiceUid = 65534;  // nobody: any unprivileged uid will do

class IjazatdProcessTest : public ApplianceTest {
 protected:
  void SetUp() override {
    ApplianceTest::SetUp();
    StopAppliance();  // the in-process one; the binary takes over the same files
    config_file_ = dir_ / "ijazatd.yaml";
    std::ofstream(config_file_) << "issuer: https://ijazat.test\n"
                                << "server: {listen: \"127.0.0.1:0\", threads: 4}\n"
                                << "tls: {certificate: " << config_.tls.certificate
                                << ", key: " << config_.tls.key << "}\n"
                                << "hsm: {module: " << config_.hsm.module
                                << ", token: " << config_.hsm.token
                                << ", pin_file: " << config_.hsm.pin_file << "}\n"
                                << "store: {path: " << config_.store_path << "}\n"
                                << "registry: {path: " << config_.registry_path << "}\n"
                                << "policy: " << config_.policy_path << "\n"
                                << "sms: {short_code: \"8009\", inbound_secret_file: "
                                << config_.sms.inbound_secret_file
                                << ", sender: file, file: " << config_.sms.file << "}\n"
                                << "log: {file: " << config_.log_file << "}\n";
  }

  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    service_bin_.reset();
  }

  // Starts the binary (as root with --allow-root, or as `uid` without it); returns its port,
  // or 0 if it did not come up within 20 s.
  int Spawn(uid_t uid = 0) {
    std::string binary = ijazat::testing::BinaryPath("ijazatd");
    if (uid != 0) {
      // The build tree may sit where the service user cannot go (a clone under /root, 0700):
      // it runs a copy of the binary from a directory of its own, as an installed one would.
      service_bin_ = std::make_unique<ijazat::testing::TempDir>();
      namespace fs = std::filesystem;
      const fs::perms open_dir = fs::perms::owner_all | fs::perms::group_read |
                                 fs::perms::group_exec | fs::perms::others_read |
                                 fs::perms::others_exec;
      fs::permissions(service_bin_->path(), open_dir);
      const fs::path copy = service_bin_->path() / "ijazatd";
      fs::copy_file(binary, copy);
      fs::permissions(copy, open_dir);
      binary = copy.string();
      // So must the sanitizers' suppression files the options name (a sanitizer build).
      for (const char* variable : {"ASAN_OPTIONS", "LSAN_OPTIONS", "UBSAN_OPTIONS"}) {
        const char* value = std::getenv(variable);
        if (value == nullptr) continue;
        std::string options = value;
        const std::string key = "suppressions=";
        const auto at = options.find(key);
        if (at == std::string::npos) continue;
        const auto start = at + key.size();
        const auto end = options.find(':', start);
        const fs::path file = options.substr(start, end == std::string::npos ? end : end - start);
        const fs::path readable = service_bin_->path() / (std::string(variable) + ".supp");
        fs::copy_file(file, readable, fs::copy_options::overwrite_existing);
        fs::permissions(readable, fs::perms::owner_read | fs::perms::owner_write |
                                      fs::perms::group_read | fs::perms::others_read);
        options.replace(start, file.string().size(), readable.string());
        child_env_.emplace_back(variable, options);
      }
    }
    const std::string port_file = (dir_ / "port").string();
    std::filesystem::remove(port_file);
    // The service user's environment, built before fork (the child only calls exec).
    std::vector<std::string> env_strings;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string entry = *e;
      bool replaced = false;
      for (const auto& [variable, value] : child_env_) {
        if (entry.rfind(variable + "=", 0) == 0) replaced = true;
      }
      if (!replaced) env_strings.push_back(entry);
    }
    for (const auto& [variable, value] : child_env_) env_strings.push_back(variable + "=" + value);
    std::vector<char*> envp;
    for (std::string& entry : env_strings) envp.push_back(entry.data());
    envp.push_back(nullptr);
    const std::string config = config_file_.string();
    std::vector<char*> argv = {binary.data(),
                               const_cast<char*>("--config"),
                               const_cast<char*>(config.c_str()),
                               const_cast<char*>("--port-file"),
                               const_cast<char*>(port_file.c_str()),
                               nullptr};
    pid_ = fork();
    if (pid_ == 0) {
      if (uid != 0) {
        if (setgroups(0, nullptr) != 0 || setgid(uid) != 0 || setuid(uid) != 0) _exit(126);
        execve(binary.c_str(), argv.data(), envp.data());
      } else {
        execl(binary.c_str(), binary.c_str(), "--config", config_file_.c_str(), "--port-file",
              port_file.c_str(), "--allow-root", static_cast<char*>(nullptr));
      }
      _exit(127);
    }
    for (int i = 0; i < 200; ++i) {
      std::ifstream in(port_file);
      int port = 0;
      if (in >> port && port > 0) return port;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return 0;
  }

  std::string Curl(int port, const std::string& path) {
    return ijazat::testing::RunCommand("curl -s --cacert " + config_.tls.certificate +
                                       " https://127.0.0.1:" + std::to_string(port) + path)
        .output;
  }

  // Runs the binary to completion (as root: with --allow-root unless `allow_root` is false).
  // One that starts serving when it should have refused is stopped after 20 s (status 124).
  ijazat::testing::CommandResult Run(bool allow_root = true) {
    return ijazat::testing::RunCommand("timeout 20 " + ijazat::testing::BinaryPath("ijazatd") +
                                       " --config " + config_file_.string() +
                                       (allow_root ? " --allow-root" : ""));
  }

  // Makes every file of the fixture (token, store, configuration...) `uid`'s.
  void GiveFilesTo(uid_t uid) {
    const auto chown = ijazat::testing::RunCommand("chown -R " + std::to_string(uid) + ":" +
                                                   std::to_string(uid) + " " + dir_.string());
    ASSERT_EQ(chown.exit_code, 0) << chown.output;
  }

  // Replaces `from` with `to` in the configuration file.
  void ReplaceInConfig(const std::string& from, const std::string& to) {
    std::string text = ijazat::testing::ReadFileOrDie(config_file_);
    text.replace(text.find(from), from.size(), to);
    std::ofstream(config_file_, std::ios::trunc) << text;
  }

  // Runs ijazatd as kServiceUid (the files must be ready for it) and checks that it serves, is
  // not dumpable and has no core size; then stops it.
  void ServeAsServiceUser() {
    const int port = Spawn(kServiceUid);
    ASSERT_GT(port, 0) << ijazat::testing::ReadFileOrDie(config_.log_file);
    EXPECT_THAT(Curl(port, "/readyz"), HasSubstr(R"("ready":true)"));

    const std::string proc = "/proc/" + std::to_string(pid_);
    EXPECT_THAT(ijazat::testing::ReadFileOrDie(proc + "/status"),
                HasSubstr("Uid:\t65534\t65534\t65534\t65534"));
    // The kernel gives the /proc files of a process that is not dumpable (PR_SET_DUMPABLE 0)
    // to root: no core dump, and no ptrace, /proc/PID/mem or environ for the service user.
    struct stat info {};
    ASSERT_EQ(stat((proc + "/environ").c_str(), &info), 0);
    EXPECT_EQ(info.st_uid, 0U) << "ijazatd is still dumpable";
    EXPECT_THAT(ijazat::testing::ReadFileOrDie(proc + "/limits"),
                ::testing::ContainsRegex("Max core file size +0 +0 "));

    kill(pid_, SIGTERM);
    EXPECT_EQ(WaitForExit(), 0);
  }

  int WaitForExit() {
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  std::filesystem::path config_file_;
  pid_t pid_ = -1;
  std::unique_ptr<ijazat::testing::TempDir> service_bin_;  // the copy a service user runs
  // Set in the service user's child (the sanitizers' options, naming readable copies).
  std::vector<std::pair<std::string, std::string>> child_env_;
};

TEST_F(IjazatdProcessTest, ServesReloadsOnSighupAndDrainsOnSigterm) {
  const int port = Spawn();
  ASSERT_GT(port, 0);
  EXPECT_EQ(Curl(port, "/healthz"), R"({"status":"ok"})");

  WritePolicy("version: broken\nproviders: [\n");
  kill(pid_, SIGHUP);
  std::string log;
  for (int i = 0; i < 50 && log.find("policy.reload_failed") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    log = ijazat::testing::ReadFileOrDie(config_.log_file);
  }
  EXPECT_THAT(log, HasSubstr("policy.reload_failed"));
  EXPECT_THAT(log, HasSubstr("\"kept\":\"test-1 sha256:"));
  EXPECT_EQ(Curl(port, "/healthz"), R"({"status":"ok"})") << "still serving";

  kill(pid_, SIGTERM);
  EXPECT_EQ(WaitForExit(), 0);
  EXPECT_THAT(ijazat::testing::ReadFileOrDie(config_.log_file), HasSubstr("appliance.stopped"));
}

TEST_F(IjazatdProcessTest, RefusesToStart_NamingTheMissingPart) {
  std::filesystem::remove(config_.sms.inbound_secret_file);
  const auto result = Run();
  // A missing file is the configuration's fault: not retried.
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_THAT(result.output, HasSubstr("reading the SMS gateway secret"));
}

// --check-config runs what the start runs, but binds nothing: for every broken configuration
// it fails as the start fails, with the same status, naming the part; a sound one passes and
// says what it checked.
TEST_F(IjazatdProcessTest, CheckConfig_FailsAsTheStartWould_ForEachBrokenPart) {
  const std::string binary = "timeout 30 " + ijazat::testing::BinaryPath("ijazatd");
  const auto check = [&] {
    return ijazat::testing::RunCommand(binary + " --check-config " + config_file_.string() +
                                       " --allow-root");
  };
  const std::string good = ijazat::testing::ReadFileOrDie(config_file_);
  const auto sound = check();
  ASSERT_EQ(sound.exit_code, 0) << sound.output;
  EXPECT_THAT(sound.output, HasSubstr("is valid; the start would serve on 127.0.0.1:0"));
  for (const char* part : {"TLS: ", "policy: ", "HSM: ", "active keys otp/v1",
                           "store: ", "audit chain: agrees", "SMS: "}) {
    EXPECT_THAT(sound.output, HasSubstr(part));
  }

  // A second key, not the certificate's.
  const auto other_key = dir_ / "other.key";
  ASSERT_EQ(ijazat::testing::RunCommand("openssl genpkey -algorithm EC -pkeyopt "
                                        "ec_paramgen_curve:P-256 -out " +
                                        other_key.string())
                .exit_code,
            0);
  std::filesystem::permissions(other_key, perms::owner_read | perms::owner_write);
  const auto open_key = dir_ / "open.key";
  std::filesystem::copy_file(config_.tls.key, open_key);
  std::filesystem::permissions(
      open_key, perms::owner_read | perms::owner_write | perms::group_read | perms::others_read);
  const auto wrong_pin = dir_ / "wrong.pin";
  std::ofstream(wrong_pin) << "not-the-pin\n";
  std::filesystem::permissions(wrong_pin, perms::owner_read);
  const std::string policy = ijazat::testing::ReadFileOrDie(config_.policy_path);

  struct Case {
    const char* what;
    std::string from, to;  // in the configuration
    int status;
    const char* message;
  };
  const Case cases[] = {
      {"missing certificate", config_.tls.certificate, (dir_ / "none.crt").string(), 2,
       "cannot read the TLS certificate file"},
      {"key of another certificate", config_.tls.key, other_key.string(), 2,
       "is not the key of the certificate"},
      {"key others can read", config_.tls.key, open_key.string(), 4,
       "is accessible to other users (mode 0644"},
      {"missing PIN file", config_.hsm.pin_file, (dir_ / "none.pin").string(), 2,
       "cannot open the PIN file"},
      {"wrong token label", "token: " + config_.hsm.token, "token: no-such-token", 2,
       "no-such-token"},
      {"missing PKCS#11 module", config_.hsm.module, (dir_ / "none.so").string(), 2,
       "cannot load the PKCS#11 module"},
      {"issuer not a URL", "issuer: https://ijazat.test", "issuer: localhost", 2,
       "issuer must be the appliance's public https URL"},
      {"issuer with a trailing slash", "issuer: https://ijazat.test",
       "issuer: https://ijazat.test/", 2, "issuer must be the appliance's public https URL"},
      {"wrong PIN", config_.hsm.pin_file, wrong_pin.string(), 3, "rejected the PIN"},
      {"missing gateway secret", config_.sms.inbound_secret_file, (dir_ / "none.secret").string(),
       2, "reading the SMS gateway secret"},
      {"invalid policy", "", "", 2, "loading the policy"},
      {"an address this machine lacks", "127.0.0.1:0", "192.0.2.1:8443", 2,
       "no interface of this machine has that address"},
      {"a host that does not resolve", "127.0.0.1:0", "no-such-host.invalid:8443", 2,
       "the host does not resolve"},
      {"missing registry", config_.registry_path, (dir_ / "none.db").string(), 2,
       "the registry database does not exist"},
      {"store in a missing directory", config_.store_path, (dir_ / "none" / "ijazat.db").string(),
       2, "none/ijazat.db"},
  };
  for (const Case& c : cases) {
    if (c.from.empty()) {
      std::ofstream(config_.policy_path, std::ios::trunc) << "version: 1\nproviders: [{id: X}]\n";
    } else {
      ReplaceInConfig(c.from, c.to);
    }
    const auto checked = check();
    EXPECT_EQ(checked.exit_code, c.status) << c.what << ": " << checked.output;
    EXPECT_THAT(checked.output, HasSubstr(c.message)) << c.what;
    EXPECT_THAT(checked.output, Not(HasSubstr("not-the-pin"))) << c.what;
    const auto started = Run();
    EXPECT_EQ(started.exit_code, c.status) << c.what << ": " << started.output;
    EXPECT_THAT(started.output, HasSubstr(c.message)) << c.what;
    std::ofstream(config_file_, std::ios::trunc) << good;
    std::ofstream(config_.policy_path, std::ios::trunc) << policy;
  }
  // A store the start would create is left uncreated by the check; a store that held a chain
  // the HSM signed, then vanished, fails the check as it fails the start.
  const auto fresh = dir_ / "fresh.db";
  ReplaceInConfig(config_.store_path, fresh.string());
  const auto would_create = check();
  EXPECT_EQ(would_create.exit_code, 0) << would_create.output;
  EXPECT_THAT(would_create.output, HasSubstr("does not exist: the start would create it"));
  EXPECT_FALSE(std::filesystem::exists(fresh)) << "the check created the store";
  std::ofstream(config_file_, std::ios::trunc) << good;
  StartAppliance();  // an enrolment is an audit event; the stop signs the chain's head
  ASSERT_EQ(InboundSms("03001234567", "35202-1234567-1").status, 200);
  StopAppliance();
  std::filesystem::rename(config_.store_path, dir_ / "moved.db");
  const auto lost = check();
  EXPECT_EQ(lost.exit_code, 2) << lost.output;
  EXPECT_THAT(lost.output, HasSubstr("does not exist, but the HSM last signed its audit chain"));
  EXPECT_EQ(Run().exit_code, 2);
  std::filesystem::rename(dir_ / "moved.db", config_.store_path);
  for (const char* suffix : {"-wal", "-shm"}) {
    std::filesystem::remove(config_.store_path + suffix);
  }

  // Nothing was bound and nothing served: the sound configuration still checks and starts.
  EXPECT_EQ(check().exit_code, 0);
  ASSERT_GT(Spawn(), 0);
  kill(pid_, SIGTERM);
  EXPECT_EQ(WaitForExit(), 0);
}

// As root the check refuses as the start does (it would create files the service cannot
// use); --syntax-only reads the one file and touches nothing else.
TEST_F(IjazatdProcessTest, CheckConfig_AsRootRefuses_SyntaxOnlyTouchesNothing) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  const std::string binary = "timeout 30 " + ijazat::testing::BinaryPath("ijazatd");
  const auto as_root =
      ijazat::testing::RunCommand(binary + " --check-config " + config_file_.string());
  EXPECT_EQ(as_root.exit_code, 4) << as_root.output;
  EXPECT_THAT(as_root.output, HasSubstr("refusing to check as root"));
  std::filesystem::remove(config_.sms.inbound_secret_file);
  std::filesystem::remove(config_.tls.key);
  const auto syntax = ijazat::testing::RunCommand(binary + " --check-config " +
                                                  config_file_.string() + " --syntax-only");
  EXPECT_EQ(syntax.exit_code, 0) << syntax.output;
  EXPECT_THAT(syntax.output,
              HasSubstr("syntax and values valid (files, HSM and keys not checked)"));
}

TEST_F(IjazatdProcessTest, ShortGatewaySecret_RefusedWithStatusTwo) {
  std::ofstream(config_.sms.inbound_secret_file, std::ios::trunc) << "short-secret";
  const auto result = Run();
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_THAT(result.output, HasSubstr("shorter than 32 characters"));
  EXPECT_THAT(result.output, ::testing::Not(HasSubstr("short-secret"))) << "never echoed";
}

// The policy of the repository's demo gives demo-bank the API key printed in the README: an
// appliance in service refuses it (exit 2, not retried), a development one says it allows it.
TEST_F(IjazatdProcessTest, PublishedDemoKey_RefusedWithStatusTwo_UnlessDevelopmentAllowsIt) {
  std::filesystem::copy_file(std::string(IJAZAT_SOURCE_DIR) + "/policy/example/policy.yaml",
                             config_.policy_path,
                             std::filesystem::copy_options::overwrite_existing);
  const auto refused = Run();
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_THAT(refused.output, HasSubstr("policy.yaml:43:17: providers[0].credentials[0].sha256: "
                                        "this is the hash of the public demo API key"));
  std::ofstream(config_file_, std::ios::app) << "development: {allow_demo_credentials: true}\n";
  ASSERT_GT(Spawn(), 0);
  kill(pid_, SIGTERM);
  EXPECT_EQ(WaitForExit(), 0);
  EXPECT_THAT(ijazat::testing::ReadFileOrDie(config_.log_file),
              HasSubstr("policy.demo_credentials_allowed"));
}

TEST_F(IjazatdProcessTest, Version_IsPrinted_AndConflictingArgumentsServeNothing) {
  const std::string binary = "timeout 20 " + ijazat::testing::BinaryPath("ijazatd");
  const auto version = ijazat::testing::RunCommand(binary + " --version");
  EXPECT_EQ(version.exit_code, 0) << version.output;
  EXPECT_THAT(version.output, ::testing::MatchesRegex("ijazatd [0-9]+\\.[0-9]+\\.[0-9]+\n"));
  const std::string config = config_file_.string();
  const std::pair<std::string, std::string> cases[] = {
      {" --check-config " + config + " --config " + config, "give one of --config"},
      {" --config " + config + " --config " + config, "give one of --config"},
      {" --check-config " + config + " --port-file p", "--check-config takes neither"},
      {" --config " + config + " --syntax-only", "--syntax-only goes with --check-config alone"},
      {" --check-config " + config + " --syntax-only --allow-root", "--syntax-only goes with"},
      {" --config", "--config needs a file"},
      {" --allow-root", "--config FILE is required"},
      {" --config " + config + " --port-file a --port-file b --allow-root",
       "--port-file is given twice"},
  };
  for (const auto& [arguments, message] : cases) {
    const auto result = ijazat::testing::RunCommand(binary + arguments);
    EXPECT_EQ(result.exit_code, 2) << arguments << ": " << result.output;
    EXPECT_THAT(result.output, HasSubstr(message)) << arguments;
  }
}

TEST_F(IjazatdProcessTest, CheckConfig_ReportsErrorsWithLocations) {
  std::ofstream(config_file_, std::ios::app) << "unknown_key: 1\n";
  const auto result = ijazat::testing::RunCommand(ijazat::testing::BinaryPath("ijazatd") +
                                                  " --check-config " + config_file_.string());
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_THAT(result.output, HasSubstr("ijazatd.yaml:10:1: unknown_key: unknown key"));
}

}  // namespace
}  // namespace ijazat::appliance::testing

namespace ijazat::appliance::testing {
namespace {

TEST_F(IjazatdProcessTest, WrongPin_ExitsWithStatusThree_SoTheServiceManagerStops) {
  const auto wrong = dir_ / "wrong.pin";
  std::ofstream(wrong) << "not-the-pin\n";
  std::filesystem::permissions(wrong, std::filesystem::perms::owner_read);
  ReplaceInConfig(config_.hsm.pin_file, wrong.string());
  const auto result = Run();
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_THAT(result.output, ::testing::HasSubstr("rejected the PIN"));
  EXPECT_THAT(result.output, ::testing::Not(::testing::HasSubstr("not-the-pin")));
}

}  // namespace
}  // namespace ijazat::appliance::testing

namespace ijazat::appliance::testing {
namespace {

using std::filesystem::perms;
using ::testing::HasSubstr;
using ::testing::Not;

TEST_F(IjazatdProcessTest, AsRootWithoutAllowRoot_RefusesWithStatusFour) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  const auto result = Run(/*allow_root=*/false);
  EXPECT_EQ(result.exit_code, 4);
  EXPECT_THAT(result.output, HasSubstr("refusing to run as root"));
  EXPECT_THAT(result.output, Not(HasSubstr("appliance.started")));
}

TEST_F(IjazatdProcessTest, PinFileReadableByItsGroup_RefusesWithStatusFour_NamingFileAndMode) {
  std::filesystem::permissions(config_.hsm.pin_file, perms::owner_read | perms::group_read);
  const auto result = Run();
  EXPECT_EQ(result.exit_code, 4);
  EXPECT_THAT(result.output, HasSubstr("the PIN file " + config_.hsm.pin_file +
                                       " is accessible to its group (mode 0440); restrict it"));
  EXPECT_THAT(result.output, Not(HasSubstr(token_.user_pin())));
}

TEST_F(IjazatdProcessTest, PinFileReadableByOthers_RefusesWithStatusFour) {
  std::filesystem::permissions(config_.hsm.pin_file, perms::others_read,
                               std::filesystem::perm_options::add);
  const auto result = Run();
  EXPECT_EQ(result.exit_code, 4);
  EXPECT_THAT(result.output, HasSubstr("the PIN file " + config_.hsm.pin_file +
                                       " is accessible to other users (mode 0604)"));
}

TEST_F(IjazatdProcessTest, PinFileOfAnotherUser_RefusesWithStatusFour_NamingTheOwners) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (to give the file away)";
  ASSERT_EQ(chown(config_.hsm.pin_file.c_str(), kServiceUid, kServiceUid), 0);
  const auto result = Run();
  EXPECT_EQ(result.exit_code, 4);
  EXPECT_THAT(result.output, HasSubstr("the PIN file " + config_.hsm.pin_file +
                                       " is owned by uid 65534, not by "
                                       "uid 0 that this process runs as"));
}

TEST_F(IjazatdProcessTest, GatewaySecretReadableByItsGroup_RefusesWithStatusFour) {
  std::filesystem::permissions(config_.sms.inbound_secret_file,
                               perms::owner_read | perms::owner_write | perms::group_read);
  const auto result = Run();
  EXPECT_EQ(result.exit_code, 4);
  EXPECT_THAT(result.output,
              HasSubstr("the SMS gateway secret file " + config_.sms.inbound_secret_file +
                        " is accessible to its group (mode 0640)"));
}

// What the packaged unit does: an unprivileged user, the PIN and the gateway secret as
// LoadCredential= hands them over on ramfs (Debian 12): owned by the service user, mode 0400.
TEST_F(IjazatdProcessTest, AsServiceUser_WithCredentialFilesItOwns_ServesAndCannotDumpCore) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (to switch to the service user)";
  GiveFilesTo(kServiceUid);
  for (const auto& secret : {config_.hsm.pin_file, config_.sms.inbound_secret_file}) {
    std::filesystem::permissions(secret, perms::owner_read);
  }
  ServeAsServiceUser();
}

// LoadCredential= where the credentials file system takes ACLs (tmpfs; newer systemd): the
// files stay root's, mode 0400, and an ACL lets the service user read them.
TEST_F(IjazatdProcessTest, AsServiceUser_WithRootsCredentialFilesAndAnAcl_Serves) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (to switch to the service user)";
  GiveFilesTo(kServiceUid);
  for (const auto& secret : {config_.hsm.pin_file, config_.sms.inbound_secret_file}) {
    ASSERT_EQ(chown(secret.c_str(), 0, 0), 0);
    std::filesystem::permissions(secret, perms::owner_read);
    ijazat::testing::SetReadAcl(secret, kServiceUid);
  }
  ServeAsServiceUser();
}

}  // namespace
}  // namespace ijazat::appliance::testing
