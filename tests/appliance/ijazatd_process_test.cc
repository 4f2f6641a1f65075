// The real ijazatd binary: configuration from a file, --port-file, SIGHUP reloads (a bad policy
// keeps the old one and the log says why), SIGTERM drains and exits 0, and it refuses to start
// with a clear message when a part is missing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "appliance_fixture.h"
#include "support/temp_dir.h"

namespace ijazat::appliance::testing {
namespace {

using ::testing::HasSubstr;

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
  }

  // Starts the binary; returns its port, or 0 if it did not come up within 20 s.
  int Spawn() {
    const std::string binary = ijazat::testing::BinaryPath("ijazatd");
    const std::string port_file = (dir_ / "port").string();
    std::filesystem::remove(port_file);
    pid_ = fork();
    if (pid_ == 0) {
      execl(binary.c_str(), binary.c_str(), "--config", config_file_.c_str(), "--port-file",
            port_file.c_str(), static_cast<char*>(nullptr));
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

  int WaitForExit() {
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  std::filesystem::path config_file_;
  pid_t pid_ = -1;
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
  const auto result = ijazat::testing::RunCommand(ijazat::testing::BinaryPath("ijazatd") +
                                                  " --config " + config_file_.string());
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.output, HasSubstr("reading the SMS gateway secret"));
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
  std::string text = ijazat::testing::ReadFileOrDie(config_file_);
  text.replace(text.find(config_.hsm.pin_file), config_.hsm.pin_file.size(), wrong.string());
  std::ofstream(config_file_, std::ios::trunc) << text;
  const auto result = ijazat::testing::RunCommand(ijazat::testing::BinaryPath("ijazatd") +
                                                  " --config " + config_file_.string());
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_THAT(result.output, ::testing::HasSubstr("rejected the PIN"));
  EXPECT_THAT(result.output, ::testing::Not(::testing::HasSubstr("not-the-pin")));
}

}  // namespace
}  // namespace ijazat::appliance::testing
