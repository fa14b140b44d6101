#include "store/sqlite/migrations.hpp"

#include <sqlite3.h>

#include <fmt/format.h>

#include "core/log.hpp"

namespace creatord::sqlite {
namespace {

// Append only: a shipped migration is never edited.
constexpr const char* kMigrations[] = {
    // 1: creators and images
    R"sql(
CREATE TABLE creators (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  name        TEXT NOT NULL,
  handle      TEXT NOT NULL UNIQUE,
  email       TEXT,
  bio         TEXT NOT NULL DEFAULT '',
  tags        TEXT NOT NULL DEFAULT '[]',
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
);
CREATE TABLE images (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  creator_id    INTEGER NOT NULL REFERENCES creators(id) ON DELETE CASCADE,
  sha256        TEXT NOT NULL,
  content_type  TEXT NOT NULL,
  width         INTEGER NOT NULL,
  height        INTEGER NOT NULL,
  size_bytes    INTEGER NOT NULL,
  source        TEXT NOT NULL DEFAULT 'upload',
  created_at    INTEGER NOT NULL
);
CREATE INDEX images_by_creator ON images(creator_id, id DESC);
CREATE INDEX images_by_sha256 ON images(sha256);
)sql",
};

}  // namespace

int latest_schema_version() { return static_cast<int>(std::size(kMigrations)); }

Result<int> migrate(Db& db) {
  int version = 0;
  {
    auto st = db.prepare("PRAGMA user_version");
    if (st.step()) version = static_cast<int>(st.int64(0));
  }
  if (version > latest_schema_version()) {
    return Error::make(ErrorCode::internal,
                       fmt::format("database schema version {} is newer than this creatord ({}); "
                                   "upgrade creatord",
                                   version, latest_schema_version()));
  }
  for (int v = version + 1; v <= latest_schema_version(); ++v) {
    std::string sql = fmt::format("BEGIN IMMEDIATE; {} PRAGMA user_version={}; COMMIT;", kMigrations[v - 1], v);
    if (auto s = db.exec(sql.c_str()); !s) {
      (void)db.exec("ROLLBACK");
      return Error::make(ErrorCode::internal, fmt::format("migration {} failed: {}", v, s.error().message));
    }
    log::info("migration applied", {{"version", v}});
  }
  return latest_schema_version();
}

}  // namespace creatord::sqlite
