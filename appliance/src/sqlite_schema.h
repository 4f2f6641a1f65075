// The consent store's schema, as an ordered list of migrations, and the code that applies them.
#pragma once

#include <mutex>

#include "ijazat/common/result.h"
#include "model.h"
#include "sqlite_db.h"

namespace ijazat::appliance::sqlite {

// The newest schema version this build knows.
int LatestSchemaVersion();

// Switches the database to WAL, then applies, in order and each in its own transaction, every
// migration not yet recorded in schema_migrations. Safe when several processes open the same
// file at once. kFailedPrecondition ("store_schema_newer") when the file holds a version this
// build does not know: a newer build wrote it.
Status Migrate(ConnectionPool& pool, std::mutex& writer, Timestamp now);

// What opening the store file at `path` would do, found without writing anything (ijazatd
// --check-config, which may run beside a serving appliance).
struct StoreFileState {
  bool exists = false;  // false: the start would create it (its directory is writable)
  int version = 0;      // the newest migration applied; 0 for none
  int pending = 0;      // migrations the start would apply
};
// Errors: "database_path_invalid" (the directory missing or not writable, a symbolic link, not
// a regular file, not readable and writable by this user), "store_schema_newer",
// "store_unavailable" (SQLite cannot read it).
Result<StoreFileState> InspectStoreFile(const std::string& path);

}  // namespace ijazat::appliance::sqlite
