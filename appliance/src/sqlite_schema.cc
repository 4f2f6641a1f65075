#include "sqlite_schema.h"

#include <Poco/Data/Statement.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace ijazat::appliance::sqlite {
namespace {

using Poco::Data::Keywords::bind;
using Poco::Data::Keywords::into;
using Poco::Data::Keywords::now;

struct Migration {
  int version;
  std::vector<const char*> statements;
};

// Append only: a released migration is never edited, a change is a new migration.
//
// Conventions: blind indexes are BLOBs next to their key version; sealed values are BLOBs next
// to the `data` key version; times are Unix seconds; optional text is NULL when absent. Declared
// types are plain INTEGER / TEXT / BLOB (POCO maps column types by these names).
const std::vector<Migration>& Migrations() {
  static const auto* const migrations = new std::vector<Migration>{
      {1,
       {
           R"sql(CREATE TABLE enrolments (
  cnic_index BLOB PRIMARY KEY,
  cnic_key_version INTEGER NOT NULL,
  phone_index BLOB NOT NULL,
  phone_key_version INTEGER NOT NULL,
  phone_sealed BLOB NOT NULL,
  phone_sealed_key_version INTEGER NOT NULL,
  enrolled_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  hold_until INTEGER NOT NULL DEFAULT 0,
  locked INTEGER NOT NULL DEFAULT 0
))sql",
           "CREATE INDEX enrolments_by_phone ON enrolments (phone_index)",
           R"sql(CREATE TABLE consents (
  id TEXT PRIMARY KEY,
  provider_id TEXT NOT NULL,
  purpose TEXT NOT NULL,
  scopes TEXT NOT NULL,
  cnic_index BLOB NOT NULL,
  cnic_key_version INTEGER NOT NULL,
  cnic_sealed BLOB NOT NULL,
  cnic_sealed_key_version INTEGER NOT NULL,
  deliverable INTEGER NOT NULL,
  state TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  max_attempts INTEGER NOT NULL,
  otp_key_version INTEGER NOT NULL,
  otp_digits INTEGER NOT NULL,
  policy_version TEXT NOT NULL,
  policy_hash TEXT NOT NULL,
  reference TEXT UNIQUE,
  granted_at INTEGER NOT NULL DEFAULT 0,
  max_uses INTEGER NOT NULL DEFAULT 1,
  uses INTEGER NOT NULL DEFAULT 0,
  receipt_key_version INTEGER NOT NULL DEFAULT 0,
  receipt TEXT NOT NULL DEFAULT '',
  updated_at INTEGER NOT NULL
))sql",
           "CREATE INDEX consents_by_cnic ON consents (cnic_index)",
           "CREATE INDEX consents_by_expiry ON consents (state, expires_at)",
           R"sql(CREATE TABLE cnic_failures (
  cnic_index BLOB PRIMARY KEY,
  window_start INTEGER NOT NULL,
  in_window INTEGER NOT NULL,
  consecutive INTEGER NOT NULL
))sql",
           R"sql(CREATE TABLE blocks (
  cnic_index BLOB NOT NULL,
  provider_id TEXT NOT NULL,
  blocked_at INTEGER NOT NULL,
  PRIMARY KEY (cnic_index, provider_id)
))sql",
           R"sql(CREATE TABLE verifications (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  consent_id TEXT NOT NULL REFERENCES consents (id),
  provider_id TEXT NOT NULL,
  purpose TEXT NOT NULL,
  reference TEXT NOT NULL,
  cnic_index BLOB NOT NULL,
  at INTEGER NOT NULL
))sql",
           "CREATE INDEX verifications_by_cnic ON verifications (cnic_index, at)",
           R"sql(CREATE TABLE outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL,
  consent_id TEXT,
  cnic_index BLOB,
  cnic_key_version INTEGER,
  recipient BLOB NOT NULL,
  recipient_key_version INTEGER NOT NULL,
  params TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL,
  not_after INTEGER NOT NULL DEFAULT 0,
  gateway_id TEXT,
  last_error TEXT NOT NULL DEFAULT ''
))sql",
           "CREATE INDEX outbox_due ON outbox (status, next_attempt_at)",
           "CREATE INDEX outbox_by_cnic ON outbox (cnic_index, created_at)",
           "CREATE INDEX outbox_by_gateway_id ON outbox (gateway_id)",
           R"sql(CREATE TABLE audit (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  event TEXT NOT NULL,
  provider_id TEXT NOT NULL,
  consent_id TEXT NOT NULL,
  detail TEXT NOT NULL,
  prev_hash BLOB NOT NULL,
  hash BLOB NOT NULL
))sql",
       }},
      // Enrolment trust: the sealed CNIC (the binding can be checked again), the previous
      // number during a change's hold, suspension when the authority no longer binds the
      // number, a revision for conditional updates; number changes for their rate limit; the
      // position reached in the registry's log of changed bindings.
      {2,
       {
           "ALTER TABLE enrolments ADD COLUMN cnic_sealed BLOB",
           "ALTER TABLE enrolments ADD COLUMN cnic_sealed_key_version INTEGER NOT NULL DEFAULT 0",
           "ALTER TABLE enrolments ADD COLUMN previous_phone_index BLOB",
           "ALTER TABLE enrolments ADD COLUMN previous_phone_key_version INTEGER NOT NULL "
           "DEFAULT 0",
           "ALTER TABLE enrolments ADD COLUMN previous_phone_sealed BLOB",
           "ALTER TABLE enrolments ADD COLUMN previous_phone_sealed_key_version INTEGER NOT NULL "
           "DEFAULT 0",
           "ALTER TABLE enrolments ADD COLUMN suspended INTEGER NOT NULL DEFAULT 0",
           "ALTER TABLE enrolments ADD COLUMN revision INTEGER NOT NULL DEFAULT 1",
           "CREATE INDEX enrolments_by_previous_phone ON enrolments (previous_phone_index)",
           R"sql(CREATE TABLE number_changes (
  cnic_index BLOB NOT NULL,
  at INTEGER NOT NULL
))sql",
           "CREATE INDEX number_changes_by_cnic ON number_changes (cnic_index, at)",
           // Wrong codes per (CNIC, provider): each failure with its time (a sliding 24-hour
           // window) and the provider's failures in a row.
           R"sql(CREATE TABLE code_failures (
  cnic_index BLOB NOT NULL,
  provider_id TEXT NOT NULL,
  at INTEGER NOT NULL
))sql",
           "CREATE INDEX code_failures_by_cnic ON code_failures (cnic_index, provider_id, at)",
           R"sql(CREATE TABLE provider_failures (
  cnic_index BLOB NOT NULL,
  provider_id TEXT NOT NULL,
  consecutive INTEGER NOT NULL,
  PRIMARY KEY (cnic_index, provider_id)
))sql",
           // The outbox's recipient number (for per-number caps, replies included) and the
           // provider a code is for (per-provider caps).
           "ALTER TABLE outbox ADD COLUMN phone_index BLOB",
           "ALTER TABLE outbox ADD COLUMN phone_key_version INTEGER NOT NULL DEFAULT 0",
           "ALTER TABLE outbox ADD COLUMN provider_id TEXT",
           "CREATE INDEX outbox_by_phone ON outbox (phone_index, created_at)",
           R"sql(CREATE TABLE registry_sweep (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  generation TEXT NOT NULL,
  seq INTEGER NOT NULL
))sql",
       }},
      // The anchored audit chain: each event names the citizen it concerns by blind index
      // (hashed into the chain from hash_version 2 on; rows from before keep version 1), and
      // the chain's head is signed periodically by the HSM's log key.
      {3,
       {
           "ALTER TABLE audit ADD COLUMN hash_version INTEGER NOT NULL DEFAULT 1",
           "ALTER TABLE audit ADD COLUMN subject BLOB",
           "ALTER TABLE audit ADD COLUMN subject_key_version INTEGER NOT NULL DEFAULT 0",
           "CREATE INDEX audit_by_subject ON audit (subject) WHERE subject IS NOT NULL",
           R"sql(CREATE TABLE audit_checkpoints (
  seq INTEGER PRIMARY KEY,
  hash BLOB NOT NULL,
  at INTEGER NOT NULL,
  note TEXT NOT NULL
))sql",
       }},
  };
  return *migrations;
}

std::set<int> AppliedVersions(Connection& session) {
  std::vector<Poco::Int64> versions;
  session << "SELECT version FROM schema_migrations", into(versions), now;
  std::set<int> applied;
  for (const Poco::Int64 v : versions) {
    applied.insert(v > 1000000 ? 1000000 : static_cast<int>(v));
  }
  return applied;
}

Status RefuseNewer(const std::set<int>& applied) {
  if (!applied.empty() && *applied.rbegin() > LatestSchemaVersion()) {
    return Error(ErrorCode::kFailedPrecondition,
                 "the database has schema version " + std::to_string(*applied.rbegin()) +
                     ", newer than this build's " + std::to_string(LatestSchemaVersion()) +
                     "; upgrade Ijazat or restore a matching backup",
                 "store_schema_newer");
  }
  return OkStatus();
}

}  // namespace

int LatestSchemaVersion() { return Migrations().back().version; }

Result<StoreFileState> InspectStoreFile(const std::string& path) {
  const auto invalid = [&](const std::string& why) {
    return Error(ErrorCode::kFailedPrecondition, "the store " + path + " " + why,
                 "database_path_invalid");
  };
  StoreFileState state;
  struct stat info {};
  if (::lstat(path.c_str(), &info) != 0) {
    if (errno != ENOENT) return invalid(std::string("cannot be examined: ") + std::strerror(errno));
    const auto slash = path.rfind('/');
    const std::string dir =
        slash == std::string::npos ? "." : path.substr(0, std::max<std::size_t>(slash, 1));
    struct stat dir_info {};
    if (::stat(dir.c_str(), &dir_info) != 0 || !S_ISDIR(dir_info.st_mode)) {
      return invalid("does not exist, nor does its directory " + dir);
    }
    if (::access(dir.c_str(), W_OK | X_OK) != 0) {
      return invalid("does not exist, and this user cannot create it in " + dir);
    }
    return state;
  }
  if (S_ISLNK(info.st_mode)) return invalid("is a symbolic link: name the file itself");
  if (!S_ISREG(info.st_mode)) return invalid("is not a regular file");
  if (::access(path.c_str(), R_OK | W_OK) != 0) {
    return invalid("is not readable and writable by this user");
  }
  state.exists = true;
  sqlite3* db = nullptr;
  const std::string uri = FileUri(path, "mode=ro");
  const int opened =
      sqlite3_open_v2(uri.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nullptr);
  const std::unique_ptr<sqlite3, int (*)(sqlite3*)> closer(db, sqlite3_close);
  if (opened != SQLITE_OK) {
    return Error(ErrorCode::kUnavailable,
                 "the store " + path + " cannot be opened: " + sqlite3_errstr(opened),
                 "store_unavailable");
  }
  sqlite3_stmt* raw = nullptr;
  std::set<int> applied;
  if (sqlite3_prepare_v2(db, "SELECT version FROM schema_migrations", -1, &raw, nullptr) ==
      SQLITE_OK) {
    const std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> statement(raw, sqlite3_finalize);
    int step = SQLITE_ROW;
    while ((step = sqlite3_step(raw)) == SQLITE_ROW) {
      const sqlite3_int64 version = sqlite3_column_int64(raw, 0);
      applied.insert(version > 1000000 ? 1000000 : static_cast<int>(version));
    }
    if (step != SQLITE_DONE) {
      return Error(ErrorCode::kUnavailable,
                   "the store " + path + " cannot be read: " + sqlite3_errmsg(db),
                   "store_unavailable");
    }
  } else if (std::string(sqlite3_errmsg(db)).find("no such table") == std::string::npos) {
    return Error(ErrorCode::kUnavailable,
                 "the store " + path + " cannot be read: " + sqlite3_errmsg(db),
                 "store_unavailable");
  }
  IJAZAT_RETURN_IF_ERROR(RefuseNewer(applied));
  state.version = applied.empty() ? 0 : *applied.rbegin();
  for (const Migration& migration : Migrations()) {
    if (!applied.contains(migration.version)) ++state.pending;
  }
  return state;
}

Status Migrate(ConnectionPool& pool, std::mutex& writer, Timestamp at) {
  {
    std::lock_guard<std::mutex> lock(writer);
    auto lease = pool.Acquire();
    if (!lease.ok()) return lease.error().WithContext("opening the store");
    try {
      // Persistent in the file; needs no transaction, and waits on busy_timeout like a write.
      std::string mode;
      lease->session() << "PRAGMA journal_mode = WAL", into(mode), now;
      if (mode != "wal") {
        return Error(ErrorCode::kUnavailable, "opening the store: cannot switch to WAL journal",
                     "store_unavailable");
      }
    } catch (const Poco::Exception& e) {
      return pool.Map("opening the store", e);
    }
  }

  Status created =
      RunWrite(pool, writer, "creating schema_migrations", [](Connection& session, Transaction&) {
        session << "CREATE TABLE IF NOT EXISTS schema_migrations ("
                   "version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
            now;
        return RefuseNewer(AppliedVersions(session));
      });
  if (!created.ok()) return created;

  for (const Migration& migration : Migrations()) {
    const auto apply = [&](Connection& session, Transaction&) -> Status {
      // Read again inside the write lock: another process may have applied it meanwhile.
      const std::set<int> applied = AppliedVersions(session);
      IJAZAT_RETURN_IF_ERROR(RefuseNewer(applied));
      if (applied.contains(migration.version)) return OkStatus();
      for (const char* statement : migration.statements) session << std::string(statement), now;
      session << "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
          bind(static_cast<Poco::Int64>(migration.version)), bind(static_cast<Poco::Int64>(at)),
          now;
      return OkStatus();
    };
    Status applied = RunWrite(
        pool, writer, "applying schema migration " + std::to_string(migration.version), apply);
    if (!applied.ok()) return applied;
  }
  return OkStatus();
}

}  // namespace ijazat::appliance::sqlite
