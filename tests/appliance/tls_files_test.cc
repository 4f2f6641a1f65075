// The TLS files as the start and --check-config check them: certificates made by openssl in a
// temporary directory, the time injected.
#include "tls_files.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <string>

#include "support/result_matchers.h"
#include "support/temp_dir.h"

namespace ijazat::appliance {
namespace {

using std::filesystem::perms;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr std::int64_t kDay = 86400;

class TlsFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A certificate valid for 90 days from a few seconds after now_, and its key.
    now_ = std::time(nullptr) - 5;
    const auto made = testing::RunCommand(
        "cd " + dir_.path().string() +
        " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 90 "
        "-subj /CN=localhost -keyout server.key -out server.crt 2>&1");
    ASSERT_EQ(made.exit_code, 0) << made.output;
  }
  std::string Path(const char* name) const { return (dir_.path() / name).string(); }
  TlsFiles Files() const { return {Path("server.crt"), Path("server.key"), ""}; }

  testing::TempDir dir_;
  std::int64_t now_ = 0;
};

TEST_F(TlsFilesTest, AMatchingPair_PassesWithoutWarnings) {
  const auto checked = CheckTlsFiles(Files(), now_);
  ASSERT_THAT(checked, IsOk());
  EXPECT_THAT(*checked, IsEmpty());
}

TEST_F(TlsFilesTest, ACertificateNearItsEnd_OrPastIt_OrNotYetValid_IsNamed) {
  auto soon = CheckTlsFiles(Files(), now_ + 80 * kDay);
  ASSERT_THAT(soon, IsOk());
  EXPECT_THAT(*soon, ElementsAre(HasSubstr("expires in 10 days")));
  auto past = CheckTlsFiles(Files(), now_ + 100 * kDay);
  ASSERT_THAT(past, IsOk());
  EXPECT_THAT(*past, ElementsAre(HasSubstr("expired 10 days ago")));
  auto early = CheckTlsFiles(Files(), now_ - 2 * kDay);
  ASSERT_THAT(early, IsOk());
  EXPECT_THAT(*early, ElementsAre(HasSubstr("is not valid yet")));
}

TEST_F(TlsFilesTest, EveryBrokenFile_IsRefusedNamingIt) {
  const auto run = [&](const std::string& command) {
    const auto result = testing::RunCommand("cd " + dir_.path().string() + " && " + command);
    ASSERT_EQ(result.exit_code, 0) << result.output;
  };
  run("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other.key");
  run("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -aes-256-cbc -pass "
      "pass:x -out encrypted.key");
  run("chmod 600 other.key encrypted.key && echo nothing > empty.pem && mkdir dir.key");
  const std::pair<TlsFiles, const char*> cases[] = {
      {{Path("none.crt"), Path("server.key"), ""}, "cannot read the TLS certificate file"},
      {{Path("empty.pem"), Path("server.key"), ""}, "holds no PEM certificate"},
      {{Path("server.crt"), Path("none.key"), ""}, "cannot read the TLS key file"},
      {{Path("server.crt"), Path("other.key"), ""}, "is not the key of the certificate"},
      {{Path("server.crt"), Path("encrypted.key"), ""}, "holds no unencrypted PEM private key"},
      {{Path("server.crt"), Path("server.key"), Path("empty.pem")}, "client CA file"},
  };
  for (const auto& [files, message] : cases) {
    const auto checked = CheckTlsFiles(files, now_);
    EXPECT_THAT(checked, HasReason("tls_invalid")) << message;
    if (!checked.ok()) {
      EXPECT_THAT(checked.error().message(), HasSubstr(message));
    }
  }
  EXPECT_THAT(CheckTlsFiles({Path("server.crt"), Path("dir.key"), ""}, now_),
              HasReason("tls_key_unsafe"));
}

// Root may hand the key to a group only if this process is in it, never let the group write
// it, and never give it to another user.
TEST_F(TlsFilesTest, AKeyOfAnotherUserOrGroup_OrWritableByItsGroup_IsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give the file away";
  const std::string key = Path("server.key");
  ASSERT_EQ(::chmod(key.c_str(), 0620), 0);
  EXPECT_THAT(CheckTlsFiles(Files(), now_), HasReason("tls_key_unsafe"));
  ASSERT_EQ(::chmod(key.c_str(), 0640), 0);
  ASSERT_EQ(::chown(key.c_str(), 0, 65534), 0);  // nogroup: not this process's
  const auto foreign_group = CheckTlsFiles(Files(), now_);
  ASSERT_THAT(foreign_group, HasReason("tls_key_unsafe"));
  EXPECT_THAT(foreign_group.error().message(), HasSubstr("readable by a group this process"));
  ASSERT_EQ(::chown(key.c_str(), 0, ::getegid()), 0);
  EXPECT_THAT(CheckTlsFiles(Files(), now_), IsOk());
  ASSERT_EQ(::chmod(key.c_str(), 0600), 0);
  ASSERT_EQ(::chown(key.c_str(), 65534, 0), 0);
  const auto other_user = CheckTlsFiles(Files(), now_);
  ASSERT_THAT(other_user, HasReason("tls_key_unsafe"));
  EXPECT_THAT(other_user.error().message(), HasSubstr("belongs to another user"));
}

TEST_F(TlsFilesTest, AKeyOthersCanRead_IsRefused_ItsGroupMayRead) {
  std::filesystem::permissions(Path("server.key"),
                               perms::owner_read | perms::owner_write | perms::group_read);
  EXPECT_THAT(CheckTlsFiles(Files(), now_), IsOk());
  std::filesystem::permissions(Path("server.key"), perms::others_read,
                               std::filesystem::perm_options::add);
  const auto checked = CheckTlsFiles(Files(), now_);
  ASSERT_THAT(checked, HasReason("tls_key_unsafe"));
  EXPECT_THAT(checked.error().message(), HasSubstr("(mode 0644,"));
}

}  // namespace
}  // namespace ijazat::appliance
