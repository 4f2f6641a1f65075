// What the SQLite-backed store and registry share: opening connections, a connection pool,
// transactions, and the one place where POCO's SQLite exceptions become Errors.
//
// Private to the appliance library: it includes POCO, so no public header may include it.
#pragma once

#include <Poco/Data/LOB.h>
#include <Poco/Data/Session.h>
#include <Poco/Data/TypeHandler.h>
#include <Poco/Exception.h>
#include <sqlite3.h>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ijazat/common/bytes.h"
#include "ijazat/common/result.h"

namespace ijazat::appliance::sqlite {

// Turns an exception thrown by POCO (or anything else) while doing `operation` into an Error.
// The message names the operation and SQLite's error class, never SQL text or data:
//   busy, locked, I/O, cannot open, full, read-only -> kUnavailable "store_unavailable"
//   corrupt, not a database                         -> kDataLoss "store_corrupt"
//   anything else                                   -> kInternal "store_error"
Error MapException(std::string_view operation, const Poco::Exception& e);
Error MapUnknownException(std::string_view operation);

// A `file:` URI for `path` (percent-encoded) with the given query, e.g. "mode=ro".
std::string FileUri(const std::string& path, std::string_view query);

// Creates `path` with mode 0600 if it does not exist. kUnavailable when it cannot.
Status CreatePrivateFile(const std::string& path, std::string_view reason);

// Registers the SQLite connector with POCO once per process.
void RegisterConnector();

inline Poco::Data::BLOB ToBlob(const Bytes& bytes) {
  return Poco::Data::BLOB(std::vector<unsigned char>(bytes.begin(), bytes.end()));
}
inline Bytes FromBlob(const Poco::Data::BLOB& blob) {
  return Bytes(blob.content().begin(), blob.content().end());
}

// One step of a statement prepared once per connection (Connection::Prepare): binds its
// parameters in order, steps, reads columns of the current row. Reset and its bindings cleared
// when it goes, ready for the next use. Errors throw POCO's SQLite exception for the result
// code, so MapException classifies them like every other statement's.
class Query {
 public:
  // `in_use` is the kept statement's flag: set while this Query holds it.
  Query(sqlite3* db, sqlite3_stmt* stmt, bool* in_use) : db_(db), stmt_(stmt), in_use_(in_use) {
    *in_use_ = true;
  }
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;
  ~Query();

  Query& Bind(std::int64_t value);
  Query& Bind(std::string_view text);
  Query& Bind(const Bytes& blob);
  // Steps once: true with a row to read, false when done.
  bool Step();
  // Steps to the end (a statement without result rows).
  void Run();

  std::int64_t Int(int column) const;
  std::string Text(int column) const;
  Bytes Blob(int column) const;
  bool IsNull(int column) const;

 private:
  void Check(int rc) const;

  sqlite3* db_;
  sqlite3_stmt* stmt_;
  bool* in_use_;
  int next_ = 1;
};

// The current row of `query` as a tuple of Poco::Int64, std::string and BLOB columns, read in
// order: the same row types the POCO statements fill, so one conversion serves both.
inline void ReadColumn(const Query& query, int column, Poco::Int64& out) {
  out = query.Int(column);
}
inline void ReadColumn(const Query& query, int column, std::string& out) {
  out = query.Text(column);
}
inline void ReadColumn(const Query& query, int column, Poco::Data::BLOB& out) {
  const Bytes bytes = query.Blob(column);
  out = Poco::Data::BLOB(bytes.data(), bytes.size());
}
template <typename Row>
Row ReadRow(const Query& query) {
  Row row;
  std::apply(
      [&](auto&... fields) {
        int column = 0;
        (ReadColumn(query, column++, fields), ...);
      },
      row);
  return row;
}
// Every remaining row.
template <typename Row>
std::vector<Row> ReadRows(Query& query) {
  std::vector<Row> rows;
  while (query.Step()) rows.push_back(ReadRow<Row>(query));
  return rows;
}

// Tells `observer` the SQL text (never the bound values) of every statement each connection
// opened from now on starts, from any thread: for tests that prove two requests do the same
// work. An empty observer stops it. Off by default, at no cost.
using StatementObserver = std::function<void(std::string_view sql)>;
void SetStatementObserver(StatementObserver observer);

// A pooled connection: POCO's session for most statements, and prepared statements kept for
// the ones every flow runs (transaction control, the audit chain, the consent and outbox rows),
// so that they are compiled once per connection instead of on every call.
class Connection {
 public:
  explicit Connection(std::unique_ptr<Poco::Data::Session> session);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();  // finalises the kept statements before the session closes

  Poco::Data::Session& poco() { return *session_; }
  // `connection << "SQL", bind(..), into(..), now;` as with a POCO session.
  template <typename T>
  auto operator<<(const T& sql) {
    return *session_ << sql;
  }
  // The statement for `sql`, prepared on first use on this connection. `sql` must be a fixed
  // text (a literal, or built only from constants) holding one statement: each distinct text is
  // kept for the life of the connection. A text whose statement is still held by a live Query
  // is refused (the two would share one statement).
  Query Prepare(std::string_view sql);
  // Runs a statement without parameters or result rows (BEGIN, COMMIT, SAVEPOINT ...).
  void Exec(std::string_view sql) { Prepare(sql).Run(); }

 private:
  std::unique_ptr<Poco::Data::Session> session_;
  sqlite3* db_;
  // Looked up by the text as given (no copy of it per call).
  struct TextHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const noexcept {
      return std::hash<std::string_view>{}(text);
    }
  };
  struct Kept {
    sqlite3_stmt* stmt = nullptr;
    bool in_use = false;
  };
  std::unordered_map<std::string, Kept, TextHash, std::equal_to<>> statements_;
};

// A small pool of connections to one database file. Connections are opened lazily, each with
// busy_timeout, foreign_keys=ON and synchronous=FULL (plus query_only for read-only pools).
// Thread safe; Acquire() blocks while all `max_connections` are leased.
class ConnectionPool {
 public:
  struct Options {
    std::string uri;  // from FileUri()
    int busy_timeout_ms = 5000;
    bool read_only = false;
    std::size_t max_connections = 4;
    std::string_view unavailable_reason = "store_unavailable";
    std::string_view corrupt_reason = "store_corrupt";
  };

  class Lease {
   public:
    Lease(ConnectionPool* pool, std::unique_ptr<Connection> session)
        : pool_(pool), session_(std::move(session)) {}
    Lease(Lease&& other) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease();

    Connection& session() { return *session_; }
    // The connection is in an unknown state (a failed rollback): close it instead of reusing it.
    void Discard() { discard_ = true; }

   private:
    ConnectionPool* pool_;
    std::unique_ptr<Connection> session_;
    bool discard_ = false;
  };

  explicit ConnectionPool(Options options) : options_(std::move(options)) {}
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  Result<Lease> Acquire();
  const Options& options() const { return options_; }

  // Maps an exception to an Error with this pool's reasons.
  Error Map(std::string_view operation, const Poco::Exception& e) const;

 private:
  friend class Lease;
  void Release(std::unique_ptr<Connection> session, bool discard);

  Options options_;
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<Connection>> idle_;
  std::size_t open_ = 0;
};

// Handed to a transaction body. A body that fails can still ask for its changes to be kept
// (an expired consent is marked expired even though the attempt on it fails).
class Transaction {
 public:
  void CommitDespiteError() { commit_on_error_ = true; }
  bool commit_on_error() const { return commit_on_error_; }

 private:
  bool commit_on_error_ = false;
};

// Runs `body(session, txn)` -> Result<T> inside BEGIN IMMEDIATE ... COMMIT. The writer mutex
// serialises this process's writers; busy_timeout serialises other processes. The body's error
// rolls back unless it called CommitDespiteError(); an exception rolls back and is mapped.
template <typename Body>
auto RunWrite(ConnectionPool& pool, std::mutex& writer, std::string_view operation, Body&& body)
    -> decltype(body(std::declval<Connection&>(), std::declval<Transaction&>())) {
  using Out = decltype(body(std::declval<Connection&>(), std::declval<Transaction&>()));
  std::lock_guard<std::mutex> lock(writer);
  auto lease = pool.Acquire();
  if (!lease.ok()) return lease.error().WithContext(operation);
  Connection& session = lease->session();
  bool in_transaction = false;
  auto rollback = [&] {
    if (!in_transaction) return;
    try {
      session.Exec("ROLLBACK");
    } catch (...) {
      lease->Discard();
    }
    in_transaction = false;
  };
  try {
    session.Exec("BEGIN IMMEDIATE");
    in_transaction = true;
    Transaction txn;
    Out out = body(session, txn);
    if (out.ok() || txn.commit_on_error()) {
      session.Exec("COMMIT");
      in_transaction = false;
    } else {
      rollback();
    }
    return out;
  } catch (const Poco::Exception& e) {
    rollback();
    return pool.Map(operation, e);
  } catch (...) {
    rollback();
    return MapUnknownException(operation);
  }
}

// Group commit: concurrent writers share one transaction and one durable COMMIT (one WAL
// fsync), instead of one each.
//
// A writer queues its body and waits. The first writer to find no batch in progress leads: it
// takes the queued bodies (its own first, at most `max_batch`), runs BEGIN IMMEDIATE, each
// body inside its own SAVEPOINT (released if the body succeeds or asked to commit despite its
// error, rolled back to otherwise), then one COMMIT, and only then wakes the writers of the
// batch with their results. Nobody is answered before the COMMIT that holds their changes has
// returned, so an acknowledged change is as durable as with one transaction per writer. When
// the COMMIT fails, every writer whose changes were in it gets the error. Bodies run one after
// the other, each seeing the changes of those before it (the audit chain links them in order),
// exactly as if they had been separate transactions in that order. The leader hands the lead to
// the oldest waiting writer, so no writer leads (and waits) for ever.
class GroupCommitter {
 public:
  struct Options {
    std::size_t max_batch = 64;
    // Tests only: called by the leader just before COMMIT with the batch size.
    std::function<void(std::size_t)> before_commit;
  };

  GroupCommitter(ConnectionPool& pool, std::mutex& writer, Options options)
      : pool_(pool), writer_(writer), options_(std::move(options)) {}
  GroupCommitter(const GroupCommitter&) = delete;
  GroupCommitter& operator=(const GroupCommitter&) = delete;

  // Like RunWrite, but the COMMIT may be shared with other writers.
  template <typename Body>
  auto Write(std::string_view operation, Body&& body)
      -> decltype(body(std::declval<Connection&>(), std::declval<Transaction&>())) {
    using Out = decltype(body(std::declval<Connection&>(), std::declval<Transaction&>()));
    std::optional<Out> out;
    Request request;
    request.operation = operation;
    request.run = [&](Connection& session) {
      Transaction txn;
      out.emplace(body(session, txn));
      return out->ok() || txn.commit_on_error();
    };
    request.fail = [&](const Error& error) { out.emplace(error); };
    Submit(request);
    return std::move(*out);
  }

  // Statistics, for tests and metrics: COMMITs run and writers they carried.
  std::uint64_t commits() const { return commits_.load(); }
  std::uint64_t writes() const { return writes_.load(); }

 private:
  struct Request {
    std::string_view operation;
    // Runs the body; true if its changes are to be kept.
    std::function<bool(Connection&)> run;
    // Replaces the body's result with an error.
    std::function<void(const Error&)> fail;
    bool ran = false;
    bool kept = false;
    bool done = false;
    bool lead = false;
    std::condition_variable wake;
  };

  void Submit(Request& request);
  void RunBatch(const std::vector<Request*>& batch);

  ConnectionPool& pool_;
  std::mutex& writer_;
  Options options_;
  std::mutex mutex_;
  std::deque<Request*> queue_;
  bool leading_ = false;
  std::atomic<std::uint64_t> commits_{0};
  std::atomic<std::uint64_t> writes_{0};
};

// How a read runs: several statements that must see one snapshot, or one statement (which
// SQLite runs in its own implicit read transaction, without BEGIN and COMMIT around it).
enum class ReadScope { kSnapshot, kOneStatement };

// Runs `body(session)` -> Result<T> on a pooled connection; with kSnapshot inside a deferred
// read transaction, so that every statement of the body sees the same snapshot.
template <typename Body>
auto RunRead(ConnectionPool& pool, std::string_view operation, Body&& body,
             ReadScope scope = ReadScope::kSnapshot)
    -> decltype(body(std::declval<Connection&>())) {
  auto lease = pool.Acquire();
  if (!lease.ok()) return lease.error().WithContext(operation);
  Connection& session = lease->session();
  bool in_transaction = false;
  try {
    if (scope == ReadScope::kOneStatement) return body(session);
    session.Exec("BEGIN");
    in_transaction = true;
    auto out = body(session);
    session.Exec("COMMIT");
    return out;
  } catch (const Poco::Exception& e) {
    if (in_transaction) {
      try {
        session.Exec("ROLLBACK");
      } catch (...) {
        lease->Discard();
      }
    }
    return pool.Map(operation, e);
  } catch (...) {
    lease->Discard();
    return MapUnknownException(operation);
  }
}

}  // namespace ijazat::appliance::sqlite

namespace Poco::Data {

// Lets a std::tuple be a row: `std::vector<std::tuple<std::string, Int64, BLOB>> rows;
// session << "SELECT a, b, c ...", into(rows), now;`. POCO 1.11 only has this for its own
// Poco::Tuple, which stops at 20 columns.
template <typename... Ts>
class TypeHandler<std::tuple<Ts...>> : public AbstractTypeHandler {
 public:
  static std::size_t size() { return (TypeHandler<Ts>::size() + ... + 0); }

  static void bind(std::size_t pos, const std::tuple<Ts...>& obj, AbstractBinder::Ptr binder,
                   AbstractBinder::Direction dir) {
    Each(obj, [&](const auto& field) {
      using Field = std::decay_t<decltype(field)>;
      TypeHandler<Field>::bind(pos, field, binder, dir);
      pos += TypeHandler<Field>::size();
    });
  }

  static void prepare(std::size_t pos, const std::tuple<Ts...>& obj,
                      AbstractPreparator::Ptr preparator) {
    Each(obj, [&](const auto& field) {
      using Field = std::decay_t<decltype(field)>;
      TypeHandler<Field>::prepare(pos, field, preparator);
      pos += TypeHandler<Field>::size();
    });
  }

  static void extract(std::size_t pos, std::tuple<Ts...>& obj, const std::tuple<Ts...>& def,
                      AbstractExtractor::Ptr extractor) {
    ExtractEach(pos, obj, def, extractor, std::index_sequence_for<Ts...>{});
  }

 private:
  template <typename F>
  static void Each(const std::tuple<Ts...>& obj, F&& f) {
    std::apply([&](const auto&... fields) { (f(fields), ...); }, obj);
  }

  template <std::size_t... I>
  static void ExtractEach(std::size_t pos, std::tuple<Ts...>& obj, const std::tuple<Ts...>& def,
                          AbstractExtractor::Ptr extractor, std::index_sequence<I...>) {
    ((TypeHandler<Ts>::extract(pos, std::get<I>(obj), std::get<I>(def), extractor),
      pos += TypeHandler<Ts>::size()),
     ...);
  }
};

}  // namespace Poco::Data
