// The SQLite identity registry, its CSV import and the ijazat-registry tool.
#include "registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <string>

#include "support/result_matchers.h"
#include "support/temp_dir.h"

namespace ijazat::appliance {
namespace {

MATCHER(IsNone, "is nullopt") { return !arg.has_value(); }

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Optional;
using ::testing::Pair;
using ::testing::StartsWith;

constexpr const char* kDemoCsv = IJAZAT_DEMO_REGISTRY_CSV;

class RegistryTest : public ::testing::Test {
 protected:
  std::string DbPath() const { return (dir_.path() / "registry.db").string(); }

  std::string Csv(std::string_view name, std::string_view content) const {
    return dir_.WriteFile(name, content).string();
  }

  std::unique_ptr<IdentityRegistry> OpenRegistry() {
    auto registry = OpenSqliteRegistry(DbPath());
    EXPECT_THAT(registry, IsOk());
    return registry.ok() ? std::move(registry).value() : nullptr;
  }

  // The attributes of `cnic`, all of them, or nullopt.
  std::optional<std::map<std::string, std::string>> All(const std::string& cnic) {
    auto registry = OpenRegistry();
    if (registry == nullptr) return std::nullopt;
    auto found = registry->Lookup(cnic, {"name", "father_name", "date_of_birth", "gender",
                                         "address", "photo", "cnic_status"});
    EXPECT_THAT(found, IsOk());
    return found.ok() ? *found : std::nullopt;
  }

  testing::TempDir dir_;
};

TEST_F(RegistryTest, ImportDemo_LookupReturnsOnlyRequestedScopes) {
  ASSERT_THAT(ImportRegistryCsv(DbPath(), kDemoCsv), IsOkAndHolds(20));
  struct stat st {};
  ASSERT_EQ(::stat(DbPath().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  auto registry = OpenRegistry();
  ASSERT_NE(registry, nullptr);
  EXPECT_THAT(registry->CheckHealth(), IsOk());
  EXPECT_THAT(
      registry->Lookup("3520212345671", {"name", "gender"}),
      IsOkAndHolds(Optional(ElementsAre(Pair("gender", "F"), Pair("name", "Ayesha Khan")))));
  EXPECT_THAT(registry->Lookup("3520212345671", {}), IsOkAndHolds(Optional(IsEmpty())));
  EXPECT_THAT(registry->Lookup("3520212345671", {"address", "not_a_scope"}),
              IsOkAndHolds(
                  Optional(ElementsAre(Pair("address", "House 12, Street 4, Demo Town, Lahore")))));
  EXPECT_THAT(registry->Lookup("3520255555551", {"address"}),
              IsOkAndHolds(Optional(ElementsAre(
                  Pair("address", "Apartment 5, \"Demo Residency\", Gulberg, Lahore")))));
  EXPECT_THAT(registry->Lookup("4210111111117", {"cnic_status"}),
              IsOkAndHolds(Optional(ElementsAre(Pair("cnic_status", "cancelled")))));
  EXPECT_THAT(registry->Lookup("1111111111111", {"name"}), IsOkAndHolds(IsNone()));
  EXPECT_THAT(registry->Lookup("35202-1234567-1", {"name"}), StatusIs(ErrorCode::kInvalidArgument));
}

TEST_F(RegistryTest, Import_NormalisesCnicsAndParsesQuotedFields) {
  const std::string csv = Csv("r.csv",
                              "\xEF\xBB\xBF"
                              "cnic, name ,address\r\n"
                              "35202-1234567-1,\"Khan, Ayesha\",\"Line 1\nLine 2\"\r\n"
                              "\r\n"
                              "42101 1234567 3,\"Say \"\"hi\"\"\",\r\n");
  ASSERT_THAT(ImportRegistryCsv(DbPath(), csv), IsOkAndHolds(2));
  const auto first = All("3520212345671");
  ASSERT_TRUE(first.has_value());
  EXPECT_THAT(*first, ElementsAre(Pair("address", "Line 1\nLine 2"), Pair("name", "Khan, Ayesha")));
  const auto second = All("4210112345673");
  ASSERT_TRUE(second.has_value());
  // An empty field is an absent attribute.
  EXPECT_THAT(*second, ElementsAre(Pair("name", "Say \"hi\"")));
}

TEST_F(RegistryTest, Import_ReplacesRowsWithTheSameCnic_AndKeepsOthers) {
  ASSERT_THAT(ImportRegistryCsv(DbPath(), kDemoCsv), IsOkAndHolds(20));
  ASSERT_THAT(ImportRegistryCsv(DbPath(), Csv("update.csv", "cnic,name\n3520212345671,New Name\n")),
              IsOkAndHolds(1));
  const auto updated = All("3520212345671");
  ASSERT_TRUE(updated.has_value());
  EXPECT_THAT(*updated, ElementsAre(Pair("name", "New Name")));
  EXPECT_TRUE(All("4210112345673").has_value());
}

struct Malformed {
  const char* name;
  const char* csv;
  const char* expected;  // after "<file>:"
};

class RegistryMalformedTest : public RegistryTest,
                              public ::testing::WithParamInterface<Malformed> {};

TEST_F(RegistryTest, Subscribers_ImportedNumbersMatch_OthersDoNot) {
  ASSERT_THAT(ImportRegistryCsv(DbPath(), kDemoCsv), IsOk());
  ASSERT_THAT(ImportSubscribersCsv(DbPath(), Csv("subscribers.csv",
                                                 "cnic,msisdn\n"
                                                 "35202-1234567-1,0300 1234567\n"
                                                 "3520212345671,+923331234567\n"
                                                 "4210112345673,+447700900123\n")),
              IsOkAndHolds(3));
  auto registry = OpenRegistry();
  ASSERT_NE(registry, nullptr);
  using S = IdentityRegistry::Binding;
  EXPECT_THAT(registry->CheckBinding("3520212345671", "+923001234567"), IsOkAndHolds(S::kBound));
  EXPECT_THAT(registry->CheckBinding("3520212345671", "+923331234567"), IsOkAndHolds(S::kBound));
  EXPECT_THAT(registry->CheckBinding("3520212345671", "+923459998887"), IsOkAndHolds(S::kNotBound));
  EXPECT_THAT(registry->CheckBinding("4210112345673", "+447700900123"), IsOkAndHolds(S::kBound));
  EXPECT_THAT(registry->CheckBinding("3740512345675", "+923001234567"), IsOkAndHolds(S::kNotBound))
      << "its number recorded at registration is an operator's record for another CNIC now";
  EXPECT_THAT(registry->CheckBinding("3740512345675", "+923331234567"), IsOkAndHolds(S::kNotBound));
}

TEST_F(RegistryTest, RegistrationNumber_BindsUntilAnOperatorGivesTheNumberToSomeone) {
  ASSERT_THAT(ImportRegistryCsv(DbPath(), Csv("citizens.csv",
                                              "cnic,name,msisdn\n"
                                              "3520212345671,Ayesha,0300 1234567\n"
                                              "4210112345673,Bilal,0300 1234567\n"
                                              "3740512345675,Fatima,\n")),
              IsOkAndHolds(3));
  auto registry = OpenRegistry();
  ASSERT_NE(registry, nullptr);
  using S = IdentityRegistry::Binding;
  EXPECT_THAT(registry->CheckBinding("3520212345671", "+923001234567"), IsOkAndHolds(S::kBound));
  EXPECT_THAT(registry->CheckBinding("4210112345673", "+923001234567"), IsOkAndHolds(S::kBound))
      << "a family may have recorded one number";
  EXPECT_THAT(registry->CheckBinding("3740512345675", "+923001234567"), IsOkAndHolds(S::kNotBound));
  // A citizens import without the msisdn column keeps the recorded numbers.
  ASSERT_THAT(ImportRegistryCsv(DbPath(), Csv("names.csv", "cnic,name\n3520212345671,A. Khan\n")),
              IsOk());
  EXPECT_THAT(registry->CheckBinding("3520212345671", "+923001234567"), IsOkAndHolds(S::kBound));
  // The operator's records give the SIM to someone else: the registrations no longer bind it.
  ASSERT_THAT(
      ImportSubscribersCsv(DbPath(), Csv("sims.csv", "cnic,msisdn\n6110112345677,03001234567\n")),
      IsOk());
  EXPECT_THAT(registry->CheckBinding("3520212345671", "+923001234567"), IsOkAndHolds(S::kNotBound));
  EXPECT_THAT(registry->CheckBinding("4210112345673", "+923001234567"), IsOkAndHolds(S::kNotBound));
  EXPECT_THAT(registry->CheckBinding("6110112345677", "+923001234567"), IsOkAndHolds(S::kBound));
}

TEST_F(RegistryTest, Imports_LogEveryCnicWhoseBindingMayChange_AndOnlyThose) {
  auto log = [&](std::int64_t after) {
    auto registry = OpenRegistry();
    std::vector<std::string> cnics;
    if (registry == nullptr) return cnics;
    auto changes = registry->ChangedBindings(after, 100);
    if (!changes.ok()) return cnics;
    for (const auto& change : changes->changes) cnics.push_back(change.cnic);
    return cnics;
  };
  ASSERT_THAT(ImportSubscribersCsv(DbPath(), Csv("a.csv",
                                                 "cnic,msisdn\n3520212345671,03001234567\n"
                                                 "4210112345673,03331234567\n")),
              IsOk());
  EXPECT_EQ(log(0), (std::vector<std::string>{"3520212345671", "4210112345673"}));
  const auto first = OpenRegistry()->ChangedBindings(0, 0);
  ASSERT_THAT(first, IsOk());
  const std::int64_t seen = first->last;
  EXPECT_FALSE(first->generation.empty());
  // The same records again change nothing; a SIM moving to a new owner logs the old one.
  ASSERT_THAT(ImportSubscribersCsv(DbPath(), Csv("b.csv",
                                                 "cnic,msisdn\n3520212345671,03001234567\n"
                                                 "6110112345677,03331234567\n")),
              IsOk());
  EXPECT_EQ(log(seen), (std::vector<std::string>{"4210112345673", "6110112345677"}));
  auto registry = OpenRegistry();
  ASSERT_NE(registry, nullptr);
  EXPECT_THAT(registry->CheckBinding("4210112345673", "+923331234567"),
              IsOkAndHolds(IdentityRegistry::Binding::kNotBound))
      << "the SIM left its old owner although the file did not name it";
}

TEST_F(RegistryTest, Subscribers_ReimportReplacesTheNumbersOfTheCnicsInTheFile) {
  ASSERT_THAT(ImportSubscribersCsv(DbPath(), Csv("a.csv",
                                                 "cnic,msisdn\n3520212345671,03001234567\n"
                                                 "4210112345673,03331234567\n")),
              IsOk());
  ASSERT_THAT(
      ImportSubscribersCsv(DbPath(), Csv("b.csv", "cnic,msisdn\n3520212345671,03119876543\n")),
      IsOk());
  auto registry = OpenRegistry();
  ASSERT_NE(registry, nullptr);
  using S = IdentityRegistry::Binding;
  EXPECT_THAT(registry->CheckBinding("3520212345671", "+923001234567"), IsOkAndHolds(S::kNotBound));
  EXPECT_THAT(registry->CheckBinding("3520212345671", "+923119876543"), IsOkAndHolds(S::kBound));
  EXPECT_THAT(registry->CheckBinding("4210112345673", "+923331234567"), IsOkAndHolds(S::kBound))
      << "CNICs not in the second file keep their numbers";
}

TEST_F(RegistryTest, Subscribers_WithoutData_CheckFailsClearly) {
  ASSERT_THAT(ImportRegistryCsv(DbPath(), Csv("bare.csv", "cnic,name\n3520212345671,Ayesha\n")),
              IsOk());
  auto registry = OpenRegistry();
  ASSERT_NE(registry, nullptr);
  EXPECT_THAT(registry->CheckBinding("3520212345671", "+923001234567"),
              HasReason("subscribers_missing"));
}

TEST_F(RegistryTest, Subscribers_MalformedFiles_FailWithTheLine_AndImportNothing) {
  ASSERT_THAT(
      ImportSubscribersCsv(DbPath(), Csv("ok.csv", "cnic,msisdn\n3520212345671,03001234567\n")),
      IsOk());
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"cnic,phone\n3520212345671,03001234567\n", ":1: the header must be exactly"},
      {"cnic,msisdn\n4210112345673,03331234567\n35202,03001234567\n", ":3: the cnic is not"},
      {"cnic,msisdn\n4210112345673,12345\n", ":2: the msisdn is not"},
      {"cnic,msisdn\n4210112345673,03331234567,x\n", ":2: expected 2 fields"},
      {"cnic,msisdn\n4210112345673,03331234567\n4210112345673,+923331234567\n",
       ":3: this cnic and msisdn appear on an earlier line"},
      {"cnic,msisdn\n4210112345673,03331234567\n3520212345671,+923331234567\n",
       ":3: the msisdn is registered to another cnic on line 2; a SIM has one owner"},
  };
  for (const auto& [text, message] : cases) {
    const auto imported = ImportSubscribersCsv(DbPath(), Csv("bad.csv", text));
    ASSERT_THAT(imported, HasReason("registry_csv_invalid")) << text;
    EXPECT_THAT(imported.error().message(), HasSubstr(message)) << text;
  }
  auto registry = OpenRegistry();
  ASSERT_NE(registry, nullptr);
  EXPECT_THAT(registry->CheckBinding("4210112345673", "+923331234567"),
              IsOkAndHolds(IdentityRegistry::Binding::kNotBound))
      << "nothing of the failed files was imported";
}

TEST_P(RegistryMalformedTest, Import_FailsWithLineNumber_AndImportsNothing) {
  ASSERT_THAT(ImportRegistryCsv(DbPath(), Csv("good.csv", "cnic,name\n3520212345671,Before\n")),
              IsOkAndHolds(1));
  const std::string path = Csv("bad.csv", GetParam().csv);
  auto result = ImportRegistryCsv(DbPath(), path);
  ASSERT_THAT(result, StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_THAT(result.error().message(), StartsWith(path + ":"));
  EXPECT_THAT(result.error().message(), HasSubstr(GetParam().expected));
  // Nothing from the bad file: the old row is untouched and the new one absent.
  const auto before = All("3520212345671");
  ASSERT_TRUE(before.has_value());
  EXPECT_THAT(*before, ElementsAre(Pair("name", "Before")));
  EXPECT_FALSE(All("4210112345673").has_value());
}

INSTANTIATE_TEST_SUITE_P(
    Cases, RegistryMalformedTest,
    ::testing::Values(
        Malformed{"BadCnic", "cnic,name\n4210112345673,Ok\n3520212345671,Changed\n3520-1,Bad\n",
                  ":4: cnic \"3520-1\" is not 13 digits"},
        Malformed{"LetterInCnic", "cnic,name\n4210112345673,Ok\n35202123456X1,Bad\n", ":3: cnic"},
        Malformed{"UnknownColumn", "cnic,name,religion\n4210112345673,Ok,x\n",
                  ":1: unknown column \"religion\""},
        Malformed{"MissingCnicColumn", "name,gender\nOk,M\n", ":1: no \"cnic\" column"},
        Malformed{"DuplicateColumn", "cnic,name,name\n4210112345673,a,b\n",
                  ":1: duplicate column \"name\""},
        Malformed{"DuplicateCnic",
                  "cnic,name\n4210112345673,Ok\n3520212345671,Changed\n42101-1234567-3,Again\n",
                  ":4: cnic duplicates the one on line 2"},
        Malformed{"UnterminatedQuote",
                  "cnic,name\n4210112345673,Ok\n3520212345671,\"Changed\n3740512345675,x\n",
                  ":3: unterminated quoted field"},
        Malformed{"QuoteInsideField", "cnic,name\n4210112345673,Ok\"ay\n", ":2: quote inside"},
        Malformed{"TextAfterQuote", "cnic,name\n4210112345673,\"Ok\"ay\n",
                  ":2: unexpected character after a closing quote"},
        Malformed{"WrongFieldCount", "cnic,name\n4210112345673,Ok\n3520212345671\n",
                  ":3: expected 2 fields, found 1"},
        Malformed{"EmptyFile", "", ":1: empty file"},
        Malformed{"OnlyNewlines", "\n\n", ":1: empty file"}),
    [](const ::testing::TestParamInfo<Malformed>& param) { return std::string(param.param.name); });

TEST_F(RegistryTest, Import_RefusesFilesLargerThan64MiB) {
  const std::string path = Csv("huge.csv", "cnic,name\n");
  std::filesystem::resize_file(path, 64u * 1024 * 1024 + 1);
  auto result = ImportRegistryCsv(DbPath(), path);
  EXPECT_THAT(result, StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_THAT(result, HasReason("registry_csv_too_large"));
}

TEST_F(RegistryTest, Import_FailsNotFound_WhenCsvIsMissing) {
  EXPECT_THAT(ImportRegistryCsv(DbPath(), (dir_.path() / "nope.csv").string()),
              StatusIs(ErrorCode::kNotFound));
}

TEST_F(RegistryTest, Open_FailsRegistryMissing_WhenFileDoesNotExist) {
  auto registry = OpenSqliteRegistry(DbPath());
  EXPECT_THAT(registry, StatusIs(ErrorCode::kNotFound));
  EXPECT_THAT(registry, HasReason("registry_missing"));
  EXPECT_FALSE(std::filesystem::exists(DbPath()));  // read-only: not created either
}

TEST_F(RegistryTest, Open_Refuses_FilesThatAreNotARegistry) {
  const auto garbage = dir_.WriteFile("garbage.db", std::string(4096, 'g'));
  EXPECT_THAT(OpenSqliteRegistry(garbage.string()), StatusIs(ErrorCode::kDataLoss));
  const auto empty = dir_.WriteFile("empty.db", "");
  EXPECT_THAT(OpenSqliteRegistry(empty.string()), StatusIs(ErrorCode::kFailedPrecondition));
}

TEST_F(RegistryTest, Open_Works_WhenTheFileIsReadOnly) {
  ASSERT_THAT(ImportRegistryCsv(DbPath(), kDemoCsv), IsOkAndHolds(20));
  std::filesystem::permissions(DbPath(), std::filesystem::perms::owner_read);
  auto registry = OpenRegistry();
  ASSERT_NE(registry, nullptr);
  EXPECT_THAT(registry->Lookup("4210112345673", {"name"}),
              IsOkAndHolds(Optional(ElementsAre(Pair("name", "Bilal Ahmed")))));
}

// --- ijazat-registry ----------------------------------------------------------------------------

TEST_F(RegistryTest, Cli_ImportsAndExitsZero) {
  const auto result = testing::RunCommand(testing::BinaryPath("ijazat-registry") +
                                          " import --db '" + DbPath() + "' '" + kDemoCsv + "'");
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_THAT(result.output, HasSubstr("imported 20 citizens"));
  EXPECT_TRUE(All("3520212345671").has_value());
}

TEST_F(RegistryTest, Cli_ExitsOneWithFileAndLine_WhenCsvIsBad) {
  const std::string bad = Csv("bad.csv", "cnic,name\n123,x\n");
  const auto result = testing::RunCommand(testing::BinaryPath("ijazat-registry") +
                                          " import --db '" + DbPath() + "' '" + bad + "'");
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_THAT(result.output, HasSubstr(bad + ":2:"));
}

TEST_F(RegistryTest, Cli_ExitsTwo_OnUsageErrors) {
  const std::string tool = testing::BinaryPath("ijazat-registry");
  for (const std::string args :
       {"", "export", "import", "import x.csv", "import --db", "import --db a.db",
        "import --db a.db x.csv y.csv", "import --frobnicate --db a.db x.csv"}) {
    std::string command = tool;
    command.append(" ").append(args);
    const auto result = testing::RunCommand(command);
    EXPECT_EQ(result.exit_code, 2) << args << ": " << result.output;
    EXPECT_THAT(result.output, HasSubstr("usage:")) << args;
  }
  EXPECT_EQ(testing::RunCommand(tool + " --help").exit_code, 0);
}

}  // namespace
}  // namespace ijazat::appliance
