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

}  // namespace ijazat::appliance::sqlite
