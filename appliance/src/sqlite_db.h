// What the SQLite-backed store and registry share: opening connections, a connection pool,
// transactions, and the one place where POCO's SQLite exceptions become Errors.
//
// Private to the appliance library: it includes POCO, so no public header may include it.
#pragma once

#include <Poco/Data/LOB.h>
#include <Poco/Data/Session.h>
#include <Poco/Data/TypeHandler.h>
#include <Poco/Exception.h>

#include <condition_variable>
#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
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
    Lease(ConnectionPool* pool, std::unique_ptr<Poco::Data::Session> session)
        : pool_(pool), session_(std::move(session)) {}
    Lease(Lease&& other) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease();

    Poco::Data::Session& session() { return *session_; }
    // The connection is in an unknown state (a failed rollback): close it instead of reusing it.
    void Discard() { discard_ = true; }

   private:
    ConnectionPool* pool_;
    std::unique_ptr<Poco::Data::Session> session_;
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
  void Release(std::unique_ptr<Poco::Data::Session> session, bool discard);

  Options options_;
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<Poco::Data::Session>> idle_;
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
    -> decltype(body(std::declval<Poco::Data::Session&>(), std::declval<Transaction&>())) {
  using Out = decltype(body(std::declval<Poco::Data::Session&>(), std::declval<Transaction&>()));
  std::lock_guard<std::mutex> lock(writer);
  auto lease = pool.Acquire();
  if (!lease.ok()) return lease.error().WithContext(operation);
  Poco::Data::Session& session = lease->session();
  bool in_transaction = false;
  auto rollback = [&] {
    if (!in_transaction) return;
    try {
      session << "ROLLBACK", Poco::Data::Keywords::now;
    } catch (...) {
      lease->Discard();
    }
    in_transaction = false;
  };
  try {
    session << "BEGIN IMMEDIATE", Poco::Data::Keywords::now;
    in_transaction = true;
    Transaction txn;
    Out out = body(session, txn);
    if (out.ok() || txn.commit_on_error()) {
      session << "COMMIT", Poco::Data::Keywords::now;
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

// Runs `body(session)` -> Result<T> on a pooled connection inside a deferred read transaction,
// so that every statement of the body sees the same snapshot.
template <typename Body>
auto RunRead(ConnectionPool& pool, std::string_view operation, Body&& body)
    -> decltype(body(std::declval<Poco::Data::Session&>())) {
  auto lease = pool.Acquire();
  if (!lease.ok()) return lease.error().WithContext(operation);
  Poco::Data::Session& session = lease->session();
  bool in_transaction = false;
  try {
    session << "BEGIN", Poco::Data::Keywords::now;
    in_transaction = true;
    auto out = body(session);
    session << "COMMIT", Poco::Data::Keywords::now;
    return out;
  } catch (const Poco::Exception& e) {
    if (in_transaction) {
      try {
        session << "ROLLBACK", Poco::Data::Keywords::now;
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
