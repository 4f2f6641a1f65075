// The statements each pooled connection keeps prepared (sqlite::Connection::Prepare): reused
// with fresh bindings, reset after every use however it ended, and failing with the same
// mapped errors as POCO's statements. Real SQLite files in a temporary directory.
#include "sqlite_db.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "ijazat/common/bytes.h"
#include "support/result_matchers.h"
#include "support/temp_dir.h"

namespace ijazat::appliance::sqlite {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Row = std::tuple<Poco::Int64, std::string, Poco::Data::BLOB>;

class SqliteDbTest : public ::testing::Test {
 protected:
  template <typename Body>
  auto Write(Body&& body) {
    return RunWrite(*pool_, writer_, "writing", std::forward<Body>(body));
  }
  template <typename Body>
  auto Read(Body&& body) {
    return RunRead(*pool_, "reading", std::forward<Body>(body));
  }

  void SetUp() override {
    const std::string path = (dir_.path() / "t.db").string();
    ASSERT_THAT(CreatePrivateFile(path, "store_unavailable"), IsOk());
    ConnectionPool::Options options;
    options.uri = FileUri(path, "mode=rwc");
    options.busy_timeout_ms = 50;
    pool_ = std::make_unique<ConnectionPool>(options);
    ASSERT_THAT(Write([](Connection& c, Transaction&) -> Status {
                  c.Exec("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT, c BLOB)");
                  return OkStatus();
                }),
                IsOk());
  }

  Result<std::vector<Row>> All() {
    return Read([](Connection& c) -> Result<std::vector<Row>> {
      Query query = c.Prepare("SELECT a, b, c FROM t ORDER BY a");
      return ReadRows<Row>(query);
    });
  }

  Status Insert(std::int64_t a, const std::string& b, const Bytes& blob) {
    return Write([&](Connection& c, Transaction&) -> Status {
      c.Prepare("INSERT INTO t (a, b, c) VALUES (?, ?, ?)").Bind(a).Bind(b).Bind(blob).Run();
      return OkStatus();
    });
  }

  testing::TempDir dir_;
  std::unique_ptr<ConnectionPool> pool_;
  std::mutex writer_;
};

TEST_F(SqliteDbTest, PreparedStatement_IsReused_WithFreshBindingsEachTime) {
  ASSERT_THAT(Insert(1, "one", ToBytes("x")), IsOk());
  ASSERT_THAT(Insert(2, "two", Bytes{0x00, 0xff}), IsOk());
  // The same text with only its first parameter bound: the others are NULL, not the last
  // use's values.
  ASSERT_THAT(Write([](Connection& c, Transaction&) -> Status {
                c.Prepare("INSERT INTO t (a, b, c) VALUES (?, ?, ?)").Bind(3).Run();
                return OkStatus();
              }),
              IsOk());
  auto rows = All();
  ASSERT_THAT(rows, IsOk());
  ASSERT_EQ(rows->size(), 3U);
  EXPECT_EQ(std::get<1>((*rows)[0]), "one");
  EXPECT_EQ(std::get<2>((*rows)[1]).content(), (std::vector<unsigned char>{0x00, 0xff}));
  auto nulls = Read([](Connection& c) -> Result<std::vector<bool>> {
    Query query = c.Prepare("SELECT b, c FROM t WHERE a = 3");
    if (!query.Step()) return Error(ErrorCode::kNotFound, "no row 3", "not_found");
    return std::vector<bool>{query.IsNull(0), query.IsNull(1)};
  });
  EXPECT_THAT(nulls, IsOkAndHolds(ElementsAre(true, true)));
}

TEST_F(SqliteDbTest, EmptyTextAndBlob_AreStoredAsEmptyValues_NotNull) {
  ASSERT_THAT(Insert(1, "", Bytes{}), IsOk());
  auto types = Read([](Connection& c) -> Result<std::string> {
    Query query = c.Prepare("SELECT typeof(b) || ',' || typeof(c) || ',' || length(c) FROM t");
    if (!query.Step()) return Error(ErrorCode::kNotFound, "no row", "not_found");
    return query.Text(0);
  });
  EXPECT_THAT(types, IsOkAndHolds(std::string("text,blob,0")));
}

TEST_F(SqliteDbTest, QueryLeftBeforeItsLastRow_IsResetForTheNextUse_AndCommitsGoThrough) {
  for (int a = 1; a <= 3; ++a) ASSERT_THAT(Insert(a, "row", ToBytes("r")), IsOk());
  for (int round = 0; round < 3; ++round) {
    // Reads one row of three and leaves; the next round starts again from the first.
    auto first = Write([](Connection& c, Transaction&) -> Result<std::int64_t> {
      Query query = c.Prepare("SELECT a FROM t ORDER BY a");
      if (!query.Step()) return Error(ErrorCode::kNotFound, "no rows", "not_found");
      const std::int64_t a = query.Int(0);
      c.Prepare("UPDATE t SET b = 'seen' WHERE a = ?").Bind(a).Run();
      return a;
    });
    EXPECT_THAT(first, IsOkAndHolds(1)) << round;
  }
  auto rows = All();
  ASSERT_THAT(rows, IsOk());
  EXPECT_EQ(std::get<1>((*rows)[0]), "seen");
  EXPECT_EQ(std::get<1>((*rows)[1]), "row");
}

TEST_F(SqliteDbTest, ConstraintViolation_IsMappedAndRolledBack_AndTheStatementServesAgain) {
  ASSERT_THAT(Insert(1, "one", ToBytes("x")), IsOk());
  const Status duplicate = Write([](Connection& c, Transaction&) -> Status {
    c.Prepare("INSERT INTO t (a, b, c) VALUES (?, ?, ?)").Bind(2).Bind("two").Run();
    c.Prepare("INSERT INTO t (a, b, c) VALUES (?, ?, ?)").Bind(1).Bind("again").Run();
    return OkStatus();
  });
  EXPECT_THAT(duplicate, StatusIs(ErrorCode::kInternal));
  EXPECT_THAT(duplicate, HasReason("store_error"));
  EXPECT_THAT(duplicate.error().message(), HasSubstr("SQLITE_CONSTRAINT"));
  EXPECT_THAT(duplicate.error().message(), ::testing::Not(HasSubstr("again")));
  auto rows = All();
  ASSERT_THAT(rows, IsOk());
  EXPECT_EQ(rows->size(), 1U) << "the first insert of the failed transaction was kept";
  EXPECT_THAT(Insert(2, "two", ToBytes("y")), IsOk());
}

TEST_F(SqliteDbTest, StatementThatDoesNotCompile_FailsAsAStoreError_AndThePoolKeepsServing) {
  const Status bad = Read([](Connection& c) -> Status {
    c.Prepare("SELECT nope FROM t").Run();
    return OkStatus();
  });
  EXPECT_THAT(bad, StatusIs(ErrorCode::kInternal));
  EXPECT_THAT(bad.error().message(), HasSubstr("SQLITE_ERROR"));
  EXPECT_THAT(All(), IsOk());
}

TEST_F(SqliteDbTest, TextWithTwoStatements_IsRefused_AndNothingOfItRuns) {
  const Status two = Write([](Connection& c, Transaction&) -> Status {
    c.Exec("INSERT INTO t (a) VALUES (1); INSERT INTO t (a) VALUES (2)");
    return OkStatus();
  });
  EXPECT_THAT(two, StatusIs(ErrorCode::kInternal));
  EXPECT_THAT(All(), IsOkAndHolds(::testing::IsEmpty()));
  // A trailing semicolon is one statement.
  EXPECT_THAT(Write([](Connection& c, Transaction&) -> Status {
                c.Exec("INSERT INTO t (a) VALUES (1);");
                return OkStatus();
              }),
              IsOk());
}

TEST_F(SqliteDbTest, SameTextWhileItsStatementIsHeld_IsRefused_ThenServesOnceReleased) {
  for (int a = 1; a <= 2; ++a) ASSERT_THAT(Insert(a, "row", ToBytes("r")), IsOk());
  const Status nested = Read([](Connection& c) -> Status {
    Query outer = c.Prepare("SELECT a FROM t ORDER BY a");
    outer.Step();
    Query inner = c.Prepare("SELECT a FROM t ORDER BY a");  // would share outer's statement
    inner.Step();
    return OkStatus();
  });
  EXPECT_THAT(nested, StatusIs(ErrorCode::kInternal));
  EXPECT_THAT(All(), IsOkAndHolds(::testing::SizeIs(2)));
  auto after = Read([](Connection& c) -> Result<std::int64_t> {
    Query query = c.Prepare("SELECT a FROM t ORDER BY a");
    if (!query.Step()) return Error(ErrorCode::kNotFound, "no rows", "not_found");
    return query.Int(0);
  });
  EXPECT_THAT(after, IsOkAndHolds(1));
}

TEST_F(SqliteDbTest, DatabaseHeldByAnotherWriter_IsUnavailable_ThenServesWhenReleased) {
  ConnectionPool::Options options = pool_->options();
  ConnectionPool other(options);
  auto holder = other.Acquire();
  ASSERT_THAT(holder, IsOk());
  holder->session().Exec("BEGIN IMMEDIATE");
  const Status busy = Insert(1, "one", ToBytes("x"));
  EXPECT_THAT(busy, StatusIs(ErrorCode::kUnavailable));
  EXPECT_THAT(busy, HasReason("store_unavailable"));
  holder->session().Exec("ROLLBACK");
  EXPECT_THAT(Insert(1, "one", ToBytes("x")), IsOk());
}

}  // namespace
}  // namespace ijazat::appliance::sqlite
