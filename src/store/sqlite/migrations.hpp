#pragma once
#include "core/result.hpp"
#include "store/sqlite/sqlite_db.hpp"

namespace creatord::sqlite {
// Applies the migrations newer than the database's user_version, each in its own transaction.
// Returns the version the database is at afterwards.
Result<int> migrate(Db& db);
int latest_schema_version();
}  // namespace creatord::sqlite
