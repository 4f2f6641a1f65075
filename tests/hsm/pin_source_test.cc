#include "ijazat/hsm/pin_source.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

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
  EXPECT_THAT(pin, HasReason("pin_source"));
  EXPECT_THAT(pin.error().message(), HasSubstr("accessible to other users"));
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
