// ijazat-policy: exit codes and output, run as a separate process.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "policy/policy_test_util.h"

namespace ijazat::policy {
namespace {

using ijazat::testing::RunCommand;
using testing::CliPath;
using testing::ExamplePolicyPath;
using testing::ExamplePolicyText;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using testing::Quoted;
using testing::ReplaceOnce;

TEST(PolicyCli, CheckPrintsOneLineSummary) {
  const auto result = RunCommand(CliPath() + " check " + Quoted(ExamplePolicyPath()));
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_THAT(result.output, MatchesRegex("OK .*policy.yaml: version 2025\\.06\\.1, 3 providers "
                                          "\\(2 active, 1 suspended\\), 4 purposes, sha256 "
                                          "[0-9a-f]{64}\n"));
}

TEST(PolicyCli, CheckReportsAllErrorsAndExitsOne) {
  const ijazat::testing::TempDir dir;
  const auto path = dir.WriteFile(
      "bad.yaml", "version: 1\ndefaults:\n  otp: {digits: 9, max_atempts: 2}\nproviders: []\n");
  const auto result = RunCommand(CliPath() + " check " + Quoted(path));
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.output, HasSubstr(path.string() + ":3:17: defaults.otp.digits: "));
  EXPECT_THAT(result.output, HasSubstr(path.string() + ":3:20: defaults.otp.max_atempts: "));
  EXPECT_THAT(result.output, HasSubstr("2 problems found"));
}

TEST(PolicyCli, UnreadableFileExitsThree) {
  for (const std::string command : {"check", "hash"}) {
    const auto result = RunCommand(CliPath() + " " + command + " /nonexistent/policy.yaml");
    EXPECT_EQ(result.exit_code, 3) << result.output;
    EXPECT_THAT(result.output, HasSubstr("/nonexistent/policy.yaml: cannot read"));
  }
}

TEST(PolicyCli, UsageErrorsExitTwo) {
  for (const std::string args : {"", "check", "frobnicate x", "diff one", "check a b"}) {
    const auto result = RunCommand(CliPath() + " " + args);
    EXPECT_EQ(result.exit_code, 2) << args;
    EXPECT_THAT(result.output, HasSubstr("usage:"));
  }
  EXPECT_EQ(RunCommand(CliPath() + " --help").exit_code, 0);
}

TEST(PolicyCli, HashPrintsOnlyTheHash) {
  const auto result = RunCommand(CliPath() + " hash " + Quoted(ExamplePolicyPath()));
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_THAT(result.output, MatchesRegex("[0-9a-f]{64}\n"));
}

TEST(PolicyCli, DiffShowsLoosenedLimitAsLoosened) {
  const ijazat::testing::TempDir dir;
  const auto after = dir.WriteFile(
      "new.yaml",
      ReplaceOnce(ReplaceOnce(ExamplePolicyText(), "max_attempts: 3", "max_attempts: 5"),
                  "status: suspended", "status: active"));
  const auto result =
      RunCommand(CliPath() + " diff " + Quoted(ExamplePolicyPath()) + " " + Quoted(after));
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_THAT(result.output, HasSubstr("LOOSENED  defaults.otp.max_attempts: 3 -> 5\n"));
  EXPECT_THAT(
      result.output,
      HasSubstr("LOOSENED  providers[old-housing].status: reinstated (suspended -> active)"));
  EXPECT_THAT(result.output, HasSubstr("CHANGED   version: unchanged at 2025.06.1"));
  EXPECT_THAT(result.output, HasSubstr("loosened, 0 tightened"));
}

TEST(PolicyCli, DiffOfIdenticalPoliciesSaysSo) {
  const auto result =
      RunCommand(CliPath() + " diff " + Quoted(ExamplePolicyPath()) + " " +
                 Quoted(ijazat::testing::TestDataPath("policy/valid/example_reordered.yaml")));
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_THAT(result.output, HasSubstr("no changes: both files are the same policy"));
}

TEST(PolicyCli, DiffWithAnInvalidSideExitsOne) {
  const auto result =
      RunCommand(CliPath() + " diff " + Quoted(ExamplePolicyPath()) + " " +
                 Quoted(ijazat::testing::TestDataPath("policy/malformed/unknown_scope.yaml")));
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.output, HasSubstr("unknown scope 'dob'"));
}

TEST(PolicyCli, CanonicalPrintsTheHashedBytes) {
  const auto result = RunCommand(CliPath() + " canonical " + Quoted(ExamplePolicyPath()));
  EXPECT_EQ(result.exit_code, 0);
  const auto policy = testing::LoadExample();
  ASSERT_NE(policy, nullptr);
  EXPECT_EQ(result.output, policy->canonical_form() + "\n");
}

}  // namespace
}  // namespace ijazat::policy
