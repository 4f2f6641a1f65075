#include "ijazat/hsm/pin_source.h"

#include <gmock/gmock.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <vector>

#include "support/posix_acl.h"
#include "support/result_matchers.h"
#include "support/temp_dir.h"

namespace ijazat::hsm {
namespace {

using std::filesystem::perms;
using ::testing::HasSubstr;

TEST(PinSource, ReadsFile_DroppingOneTrailingNewline) {
  testing::TempDir dir;
  const auto pin = PinSource::File(dir.WriteFile("pin", "s3cret\n").string()).Read();
  ASSERT_THAT(pin, IsOk());
  EXPECT_EQ(pin->UnsafeView(), "s3cret");
}

TEST(PinSource, RefusesFileThatOthersCanRead) {
  testing::TempDir dir;
  const auto path = dir.WriteFile("pin", "s3cret", perms::owner_read | perms::others_read);
  const auto pin = PinSource::File(path.string()).Read();
  EXPECT_THAT(pin, HasReason("pin_file_unsafe"));
  EXPECT_THAT(pin.error().message(),
              HasSubstr("the PIN file " + path.string() +
                        " is accessible to other users (mode 0404); restrict it to its owner"));
}

TEST(PinSource, RefusesAnyGroupOrOthersAccess) {
  testing::TempDir dir;
  for (const auto mode : {perms::group_read, perms::group_write, perms::group_exec,
                          perms::others_write, perms::others_exec}) {
    const auto path = dir.WriteFile("pin", "s3cret", perms::owner_read | perms::owner_write | mode);
    const auto pin = PinSource::File(path.string()).Read();
    EXPECT_THAT(pin, HasReason("pin_file_unsafe")) << static_cast<int>(mode);
  }
  const auto group = dir.WriteFile("pin", "s3cret", perms::owner_read | perms::group_read);
  EXPECT_THAT(PinSource::File(group.string()).Read().error().message(),
              HasSubstr("is accessible to its group (mode 0440)"));
}

TEST(PinSource, AcceptsOwnerOnlyModes_AsLoadCredentialMakesThem) {
  testing::TempDir dir;
  for (const auto mode : {perms::owner_read, perms::owner_read | perms::owner_write}) {
    const auto pin = PinSource::File(dir.WriteFile("pin", "s3cret\n", mode).string()).Read();
    ASSERT_THAT(pin, IsOk());
    EXPECT_EQ(pin->UnsafeView(), "s3cret");
  }
}

TEST(PinSource, RefusesFileOwnedByAnotherUser) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (to give the file away)";
  testing::TempDir dir;
  const auto path = dir.WriteFile("pin", "s3cret");
  ASSERT_EQ(chown(path.c_str(), 65534, 65534), 0);
  const auto pin = PinSource::File(path.string()).Read();
  EXPECT_THAT(pin, HasReason("pin_file_unsafe"));
  EXPECT_THAT(pin.error().message(),
              HasSubstr("the PIN file " + path.string() +
                        " is owned by uid 65534, not by uid 0 that this process runs as"));
}

// Reads `source` as `uid` (effective uid and gid, no supplementary groups), as a service
// would; then becomes root again.
Result<SecretString> ReadAs(uid_t uid, const PinSource& source) {
  std::vector<gid_t> groups(static_cast<std::size_t>(getgroups(0, nullptr)));
  if (getgroups(static_cast<int>(groups.size()), groups.data()) < 0 || setgroups(0, nullptr) != 0 ||
      setegid(uid) != 0 || seteuid(uid) != 0) {
    std::abort();
  }
  auto result = source.Read();
  if (seteuid(0) != 0 || setegid(0) != 0 || setgroups(groups.size(), groups.data()) != 0) {
    std::abort();
  }
  return result;
}

constexpr uid_t kServiceUid = 65534;

TEST(PinSource, AcceptsRootsFileThatAnAclLetsThisUserRead_AsLoadCredentialOnTmpfs) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  testing::TempDir dir;
  std::filesystem::permissions(dir.path(), perms::owner_all | perms::others_exec);
  const auto path = dir.WriteFile("hsm-pin", "s3cret\n", perms::owner_read);
  testing::SetReadAcl(path, kServiceUid, std::nullopt);
  ASSERT_EQ(std::filesystem::status(path).permissions(), perms::owner_read | perms::group_read)
      << "the ACL's mask shows as the group bits";
  const auto pin = ReadAs(kServiceUid, PinSource::File(path.string()));
  ASSERT_THAT(pin, IsOk());
  EXPECT_EQ(pin->UnsafeView(), "s3cret");
}

TEST(PinSource, RefusesAclThatLetsAnotherUserOrAGroupRead) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  testing::TempDir dir;
  std::filesystem::permissions(dir.path(), perms::owner_all | perms::others_exec);
  const auto for_service = dir.WriteFile("for-service", "s3cret", perms::owner_read);
  testing::SetReadAcl(for_service, kServiceUid, std::nullopt);
  const auto not_for_root = PinSource::File(for_service.string()).Read();
  EXPECT_THAT(not_for_root, HasReason("pin_file_unsafe"));
  EXPECT_THAT(not_for_root.error().message(),
              HasSubstr("is accessible to other users or groups through its ACL"));

  const auto with_group = dir.WriteFile("with-group", "s3cret", perms::owner_read);
  testing::SetReadAcl(with_group, kServiceUid, gid_t{1000});
  EXPECT_THAT(ReadAs(kServiceUid, PinSource::File(with_group.string())),
              HasReason("pin_file_unsafe"));
}

TEST(PinSource, RefusesRootsFileWithoutAnAcl_EvenIfReadable) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  testing::TempDir dir;
  std::filesystem::permissions(dir.path(), perms::owner_all | perms::others_exec);
  const auto path = dir.WriteFile("pin", "s3cret", perms::owner_read | perms::others_read);
  EXPECT_THAT(ReadAs(kServiceUid, PinSource::File(path.string())).error().message(),
              HasSubstr("accessible to other users (mode 0404)"));
}

TEST(PinSource, RefusesSymbolicLinks) {
  testing::TempDir dir;
  const auto target = dir.WriteFile("pin", "s3cret");
  std::filesystem::create_symlink(target, dir.path() / "link");
  const auto pin = PinSource::File((dir.path() / "link").string()).Read();
  EXPECT_THAT(pin, HasReason("pin_source"));
  // Says what is wrong and what to do, not "Too many levels of symbolic links".
  EXPECT_THAT(pin.error().message(), HasSubstr("is a symbolic link to " + target.string()));
  EXPECT_THAT(pin.error().message(), HasSubstr("name the file itself"));
  EXPECT_THAT(pin.error().message(), ::testing::Not(HasSubstr("Too many levels")));
}

TEST(PinSource, NamesTheSecretInMessages) {
  testing::TempDir dir;
  const auto path = dir.WriteFile("secret", "s3cret", perms::owner_read | perms::group_read);
  const auto secret = PinSource::File(path.string(), "SMS gateway secret").Read();
  EXPECT_THAT(secret.error().message(), HasSubstr("the SMS gateway secret file " + path.string()));
  const auto empty = PinSource::File(dir.WriteFile("empty", "").string(), "Kannel password").Read();
  EXPECT_THAT(empty.error().message(), HasSubstr("the Kannel password file " +
                                                 (dir.path() / "empty").string() + " is empty"));
}

TEST(PinSource, RefusesMissingEmptyAndMultilineFiles) {
  testing::TempDir dir;
  EXPECT_THAT(PinSource::File((dir.path() / "absent").string()).Read(), HasReason("pin_source"));
  EXPECT_THAT(PinSource::File(dir.WriteFile("empty", "").string()).Read(), HasReason("pin_source"));
  EXPECT_THAT(PinSource::File(dir.WriteFile("lines", "a\nb\n").string()).Read(),
              HasReason("pin_source"));
  EXPECT_THAT(PinSource::File(dir.WriteFile("huge", std::string(4096, '1')).string()).Read(),
              HasReason("pin_source"));
  EXPECT_THAT(PinSource::File(dir.path().string()).Read(), HasReason("pin_source"));
}

TEST(PinSource, ReadsEnvironment_AndNamesAMissingVariable) {
  setenv("IJAZAT_PIN_SOURCE_TEST", "1234", 1);
  const auto pin = PinSource::Environment("IJAZAT_PIN_SOURCE_TEST").Read();
  ASSERT_THAT(pin, IsOk());
  EXPECT_EQ(pin->UnsafeView(), "1234");
  const auto missing = PinSource::Environment("IJAZAT_PIN_SOURCE_TEST_UNSET").Read();
  EXPECT_THAT(missing, HasReason("pin_source"));
  EXPECT_THAT(missing.error().message(), HasSubstr("IJAZAT_PIN_SOURCE_TEST_UNSET"));
}

TEST(PinSource, ErrorsNeverContainThePin) {
  testing::TempDir dir;
  const auto path = dir.WriteFile("pin", "topsecretpin", perms::owner_read | perms::others_read);
  const auto pin = PinSource::File(path.string()).Read();
  ASSERT_FALSE(pin.ok());
  EXPECT_THAT(pin.error().message(), ::testing::Not(HasSubstr("topsecretpin")));
}

}  // namespace
}  // namespace ijazat::hsm
