#include "sqlite_db.h"

#include <Poco/Data/DataException.h>
#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/SQLite/SQLiteException.h>
#include <Poco/Data/SQLite/Utility.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace ijazat::appliance::sqlite {
namespace {

namespace sq = Poco::Data::SQLite;

// SQLite's name for the failure, from POCO's exception class.
std::string_view SqliteErrorName(const Poco::Exception& e) {
  if (dynamic_cast<const sq::DBLockedException*>(&e) != nullptr) return "SQLITE_BUSY";
  if (dynamic_cast<const sq::TableLockedException*>(&e) != nullptr) return "SQLITE_LOCKED";
  if (dynamic_cast<const sq::IOErrorException*>(&e) != nullptr) return "SQLITE_IOERR";
  if (dynamic_cast<const sq::CantOpenDBFileException*>(&e) != nullptr) return "SQLITE_CANTOPEN";
  if (dynamic_cast<const sq::DatabaseFullException*>(&e) != nullptr) return "SQLITE_FULL";
  if (dynamic_cast<const sq::ReadOnlyException*>(&e) != nullptr) return "SQLITE_READONLY";
  if (dynamic_cast<const sq::NoMemoryException*>(&e) != nullptr) return "SQLITE_NOMEM";
  if (dynamic_cast<const sq::LockProtocolException*>(&e) != nullptr) return "SQLITE_PROTOCOL";
  if (dynamic_cast<const sq::InterruptException*>(&e) != nullptr) return "SQLITE_INTERRUPT";
  if (dynamic_cast<const sq::DBAccessDeniedException*>(&e) != nullptr) return "SQLITE_PERM";
  if (dynamic_cast<const sq::CorruptImageException*>(&e) != nullptr) return "SQLITE_CORRUPT";
  if (dynamic_cast<const sq::ConstraintViolationException*>(&e) != nullptr) {
    return "SQLITE_CONSTRAINT";
  }
  if (dynamic_cast<const sq::SchemaDiffersException*>(&e) != nullptr) return "SQLITE_SCHEMA";
  if (dynamic_cast<const sq::RowTooBigException*>(&e) != nullptr) return "SQLITE_TOOBIG";
  if (dynamic_cast<const sq::DataTypeMismatchException*>(&e) != nullptr) return "SQLITE_MISMATCH";
  if (dynamic_cast<const sq::InvalidSQLStatementException*>(&e) != nullptr) return "SQLITE_ERROR";
  if (dynamic_cast<const Poco::Data::ConnectionFailedException*>(&e) != nullptr) {
    return "connection failed";
  }
  return "unexpected error";
}

enum class Kind { kUnavailable, kCorrupt, kOther };

Kind Classify(const Poco::Exception& e) {
  if (dynamic_cast<const sq::CorruptImageException*>(&e) != nullptr) return Kind::kCorrupt;
  if (dynamic_cast<const sq::DBLockedException*>(&e) != nullptr ||
      dynamic_cast<const sq::TableLockedException*>(&e) != nullptr ||
      dynamic_cast<const sq::IOErrorException*>(&e) != nullptr ||
      dynamic_cast<const sq::CantOpenDBFileException*>(&e) != nullptr ||
      dynamic_cast<const sq::DatabaseFullException*>(&e) != nullptr ||
      dynamic_cast<const sq::ReadOnlyException*>(&e) != nullptr ||
      dynamic_cast<const sq::NoMemoryException*>(&e) != nullptr ||
      dynamic_cast<const sq::LockProtocolException*>(&e) != nullptr ||
      dynamic_cast<const sq::InterruptException*>(&e) != nullptr ||
      dynamic_cast<const sq::DBAccessDeniedException*>(&e) != nullptr ||
      dynamic_cast<const Poco::Data::ConnectionFailedException*>(&e) != nullptr) {
    return Kind::kUnavailable;
  }
  return Kind::kOther;
}

Error MapWithReasons(std::string_view operation, const Poco::Exception& e,
                     std::string_view unavailable, std::string_view corrupt) {
  std::string message = std::string(operation) + ": " + std::string(SqliteErrorName(e));
  switch (Classify(e)) {
    case Kind::kUnavailable:
      return Error(ErrorCode::kUnavailable, message, unavailable);
    case Kind::kCorrupt:
      return Error(ErrorCode::kDataLoss, message, corrupt);
    case Kind::kOther:
      break;
  }
  return Error(ErrorCode::kInternal, message, "store_error");
}

bool IsUnreserved(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~' || c == '/';
}

}  // namespace

Error MapException(std::string_view operation, const Poco::Exception& e) {
  return MapWithReasons(operation, e, "store_unavailable", "store_corrupt");
}

Error MapUnknownException(std::string_view operation) {
  return Error(ErrorCode::kInternal, std::string(operation) + ": unexpected error", "store_error");
}

std::string FileUri(const std::string& path, std::string_view query) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  // "file://" + empty authority + the path; a relative path stays relative ("file:x.db").
  std::string uri = path.starts_with('/') ? "file://" : "file:";
  for (const char c : path) {
    if (IsUnreserved(c)) {
      uri += c;
    } else {
      const auto byte = static_cast<unsigned char>(c);
      uri += '%';
      uri += kHex[byte >> 4];
      uri += kHex[byte & 0x0f];
    }
  }
  if (!query.empty()) {
    uri += '?';
    uri += query;
  }
  return uri;
}

Status CreatePrivateFile(const std::string& path, std::string_view reason) {
  if (path.empty()) {
    return Error(ErrorCode::kInvalidArgument, "database path is empty", "store_path_invalid");
  }
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    const int err = errno;
    // A directory that is not there, a link, a file this user may not write: the
    // configuration's to mend, not an outage to wait out.
    if (err == ENOENT || err == ENOTDIR || err == ELOOP || err == EACCES || err == EPERM ||
        err == EISDIR || err == EROFS) {
      return Error(ErrorCode::kFailedPrecondition,
                   "cannot create or open the database file " + path + ": " + std::strerror(err) +
                       (err == ELOOP ? " (a symbolic link: name the file itself)" : ""),
                   "database_path_invalid");
    }
    return Error(
        ErrorCode::kUnavailable,
        "cannot create or open the database file " + path + " (errno " + std::to_string(err) + ")",
        reason);
  }
  ::close(fd);
  return OkStatus();
}

void RegisterConnector() {
  static std::once_flag once;
  std::call_once(once, [] { Poco::Data::SQLite::Connector::registerConnector(); });
}

Query::~Query() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  *in_use_ = false;
}

void Query::Check(int rc) const {
  if (rc != SQLITE_OK) sq::Utility::throwException(db_, rc);
}

Query& Query::Bind(std::int64_t value) {
  Check(sqlite3_bind_int64(stmt_, next_++, value));
  return *this;
}

Query& Query::Bind(std::string_view text) {
  Check(
      sqlite3_bind_text64(stmt_, next_++, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
  return *this;
}

Query& Query::Bind(const Bytes& blob) {
  // A zero-length blob is bound as one, not as NULL.
  static const unsigned char kEmpty = 0;
  Check(sqlite3_bind_blob64(stmt_, next_++, blob.empty() ? &kEmpty : blob.data(), blob.size(),
                            SQLITE_TRANSIENT));
  return *this;
}

bool Query::Step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  sq::Utility::throwException(db_, rc);
  return false;
}

void Query::Run() {
  while (Step()) {
  }
}

std::int64_t Query::Int(int column) const { return sqlite3_column_int64(stmt_, column); }

std::string Query::Text(int column) const {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
  const int size = sqlite3_column_bytes(stmt_, column);
  return text == nullptr ? std::string() : std::string(text, static_cast<std::size_t>(size));
}

Bytes Query::Blob(int column) const {
  const auto* data = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, column));
  const int size = sqlite3_column_bytes(stmt_, column);
  return data == nullptr ? Bytes() : Bytes(data, data + size);
}

bool Query::IsNull(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }

namespace {

std::mutex& ObserverMutex() {
  static std::mutex mutex;
  return mutex;
}
std::shared_ptr<const StatementObserver>& Observer() {
  static std::shared_ptr<const StatementObserver> observer;
  return observer;
}
std::shared_ptr<const StatementObserver> CurrentObserver() {
  const std::lock_guard lock(ObserverMutex());
  return Observer();
}

int TraceStatement(unsigned /*type*/, void* /*context*/, void* /*stmt*/, void* sql) {
  const auto observer = CurrentObserver();
  if (observer && *observer && sql != nullptr) (*observer)(static_cast<const char*>(sql));
  return 0;
}

}  // namespace

void SetStatementObserver(StatementObserver observer) {
  const std::lock_guard lock(ObserverMutex());
  Observer() = observer ? std::make_shared<const StatementObserver>(std::move(observer)) : nullptr;
}

Connection::Connection(std::unique_ptr<Poco::Data::Session> session)
    : session_(std::move(session)), db_(sq::Utility::dbHandle(*session_)) {
  if (CurrentObserver()) sqlite3_trace_v2(db_, SQLITE_TRACE_STMT, &TraceStatement, nullptr);
}

Connection::~Connection() {
  for (auto& [sql, kept] : statements_) sqlite3_finalize(kept.stmt);
}

Query Connection::Prepare(std::string_view sql) {
  auto found = statements_.find(sql);
  if (found == statements_.end()) {
    sqlite3_stmt* raw = nullptr;
    const char* tail = nullptr;
    const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                      SQLITE_PREPARE_PERSISTENT, &raw, &tail);
    std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> stmt(raw, &sqlite3_finalize);
    if (rc != SQLITE_OK || stmt == nullptr) {
      sq::Utility::throwException(db_, rc == SQLITE_OK ? SQLITE_ERROR : rc);
    }
    const std::string_view rest = tail == nullptr
                                      ? std::string_view()
                                      : sql.substr(static_cast<std::size_t>(tail - sql.data()));
    if (rest.find_first_not_of(" \t\r\n;") != std::string_view::npos) {
      throw sq::InvalidSQLStatementException("one statement per prepared text");
    }
    found = statements_.emplace(std::string(sql), Kept{stmt.get(), false}).first;
    static_cast<void>(stmt.release());  // kept; finalised with the connection
  }
  if (found->second.in_use) {
    throw Poco::IllegalStateException("a kept statement is already in use on this connection");
  }
  return Query(db_, found->second.stmt, &found->second.in_use);
}

ConnectionPool::Lease::~Lease() {
  if (pool_ != nullptr && session_ != nullptr) pool_->Release(std::move(session_), discard_);
}

Error ConnectionPool::Map(std::string_view operation, const Poco::Exception& e) const {
  return MapWithReasons(operation, e, options_.unavailable_reason, options_.corrupt_reason);
}

Result<ConnectionPool::Lease> ConnectionPool::Acquire() {
  {
    std::unique_lock<std::mutex> lock(mutex_);
    available_.wait(lock, [&] { return !idle_.empty() || open_ < options_.max_connections; });
    if (!idle_.empty()) {
      auto session = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(session));
    }
    ++open_;  // reserved; opened below without holding the lock
  }
  try {
    RegisterConnector();
    auto session =
        std::make_unique<Connection>(std::make_unique<Poco::Data::Session>("SQLite", options_.uri));
    using Poco::Data::Keywords::now;
    *session << "PRAGMA busy_timeout = " + std::to_string(options_.busy_timeout_ms), now;
    *session << "PRAGMA foreign_keys = ON", now;
    *session << "PRAGMA synchronous = FULL", now;
    *session << "PRAGMA trusted_schema = OFF", now;
    if (options_.read_only) *session << "PRAGMA query_only = ON", now;
    return Lease(this, std::move(session));
  } catch (const Poco::Exception& e) {
    Release(nullptr, true);
    return Map("opening the database", e);
  } catch (...) {
    Release(nullptr, true);
    return MapUnknownException("opening the database");
  }
}

void ConnectionPool::Release(std::unique_ptr<Connection> session, bool discard) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (discard || session == nullptr) {
      --open_;
    } else {
      idle_.push_back(std::move(session));
    }
  }
  available_.notify_one();
  // A discarded session is closed here, outside the lock, when `session` goes out of scope.
}

void GroupCommitter::Submit(Request& request) {
  std::unique_lock<std::mutex> lock(mutex_);
  queue_.push_back(&request);
  if (leading_) {
    request.wake.wait(lock, [&] { return request.done || request.lead; });
    if (request.done) return;
  } else {
    leading_ = true;
  }
  // This writer leads. Its request is the oldest queued one (the lead goes to the front), so
  // it is in the batch.
  std::vector<Request*> batch;
  const std::size_t take = std::min(queue_.size(), std::max<std::size_t>(options_.max_batch, 1));
  batch.assign(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(take));
  queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(take));
  lock.unlock();
  RunBatch(batch);
  lock.lock();
  for (Request* done : batch) {
    done->done = true;
    if (done != &request) done->wake.notify_one();
  }
  if (queue_.empty()) {
    leading_ = false;
  } else {
    queue_.front()->lead = true;
    queue_.front()->wake.notify_one();
  }
}

void GroupCommitter::RunBatch(const std::vector<Request*>& batch) {
  const std::lock_guard<std::mutex> writer(writer_);
  // Every writer whose changes were lost with the transaction, and those not run yet.
  auto fail_all = [&](const Error& error) {
    for (Request* request : batch) {
      if (!request->ran || request->kept) request->fail(error.WithContext(request->operation));
    }
  };
  auto lease = pool_.Acquire();
  if (!lease.ok()) return fail_all(lease.error());
  Connection& session = lease->session();
  auto abandon = [&] {
    try {
      session.Exec("ROLLBACK");
    } catch (...) {
      lease->Discard();
    }
  };
  try {
    session.Exec("BEGIN IMMEDIATE");
  } catch (const Poco::Exception& e) {
    return fail_all(pool_.Map("starting a transaction", e));
  } catch (...) {
    return fail_all(MapUnknownException("starting a transaction"));
  }
  for (Request* request : batch) {
    std::optional<Error> thrown;
    try {
      session.Exec("SAVEPOINT ijazat_write");
      request->ran = true;
      request->kept = request->run(session);
      if (request->kept) {
        session.Exec("RELEASE ijazat_write");
        continue;
      }
    } catch (const Poco::Exception& e) {
      thrown = pool_.Map(request->operation, e);
    } catch (...) {
      thrown = MapUnknownException(request->operation);
    }
    request->ran = true;
    request->kept = false;
    if (thrown) request->fail(*thrown);
    try {
      // Undoes this body's changes only; the transaction and the bodies before it go on.
      session.Exec("ROLLBACK TO ijazat_write");
      session.Exec("RELEASE ijazat_write");
    } catch (const Poco::Exception& e) {
      // SQLite rolled the whole transaction back (an I/O error, a full disk): nothing of the
      // batch is kept.
      abandon();
      return fail_all(pool_.Map("rolling back a write", e));
    } catch (...) {
      abandon();
      return fail_all(MapUnknownException("rolling back a write"));
    }
  }
  if (options_.before_commit) options_.before_commit(batch.size());
  try {
    session.Exec("COMMIT");
  } catch (const Poco::Exception& e) {
    abandon();
    return fail_all(pool_.Map("committing", e));
  } catch (...) {
    abandon();
    return fail_all(MapUnknownException("committing"));
  }
  ++commits_;
  writes_ += batch.size();
}

}  // namespace ijazat::appliance::sqlite
