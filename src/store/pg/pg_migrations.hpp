// The PostgreSQL schema (in its own schema, "creatord"), applied in one transaction under a
// transaction-scoped advisory lock so that instances starting together do not race (one applies,
// the others wait and find it done), also through a transaction-mode pooler.
#pragma once
#include <boost/asio/awaitable.hpp>

#include "core/result.hpp"
#include "store/pg/pg.hpp"

namespace creatord::pg {

int latest_schema_version();
// Returns the version the database is at afterwards.
boost::asio::awaitable<Result<int>> migrate(Connection& c);
// For `creatord migrate`: connects, migrates, disconnects (runs its own event loop).
Result<int> migrate_blocking(const std::string& conninfo);
// postgres:// and postgresql:// URLs (any libpq connection string starting so) select PostgreSQL.
bool is_postgres_url(const std::string& url);

}  // namespace creatord::pg
