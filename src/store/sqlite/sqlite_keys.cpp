// API keys on SQLite (auth/api_keys.hpp).
#include <sqlite3.h>

#include "store/sqlite/sqlite_store.hpp"
#include "store/sqlite/sqlite_store_ops.hpp"

namespace creatord {

using sqlite::Db;
using sqlite::Stmt;

namespace {

#define KEY_COLUMNS "id, name, prefix, key_hash, scopes, created_at, revoked_at, last_used_at"

auth::ApiKey key_from_row(const Stmt& st) {
  auth::ApiKey k;
  k.id = st.int64(0);
  k.name = st.text(1);
  k.prefix = st.text(2);
  k.hash = st.text(3);
  k.scopes = auth::stored_scopes(st.text(4));
  k.created_at_ms = st.int64(5);
  if (!st.is_null(6)) k.revoked_at_ms = st.int64(6);
  if (!st.is_null(7)) k.last_used_at_ms = st.int64(7);
  return k;
}

Result<auth::ApiKey> load_key(Db& db, int64_t id) {
  auto st = db.prepare("SELECT " KEY_COLUMNS " FROM api_keys WHERE id = ?1");
  st.bind(1, id);
  if (st.step()) return key_from_row(st);
  if (st.rc() != SQLITE_DONE) return sqlite::to_error(st.rc(), db.errmsg());
  return Error::make(ErrorCode::not_found, fmt::format("key {} does not exist", id));
}

}  // namespace

Async<auth::ApiKey> SqliteStore::create_key(auth::NewApiKey key, int64_t now) {
  return write<auth::ApiKey>([key = std::move(key), now](Db& db) -> Result<auth::ApiKey> {
    auto st = db.prepare("INSERT INTO api_keys (name, prefix, key_hash, scopes, created_at) VALUES (?1, ?2, ?3, ?4, ?5)");
    st.bind(1, key.name).bind(2, key.prefix).bind(3, key.hash).bind(4, auth::scopes_text(key.scopes)).bind(5, now);
    if (int rc = st.run(); rc != SQLITE_DONE) return sqlite::to_error(rc, db.errmsg());
    return load_key(db, db.last_insert_rowid());
  }, false);
}

Async<std::vector<auth::ApiKey>> SqliteStore::list_keys() {
  return read<std::vector<auth::ApiKey>>([](Db& db) -> Result<std::vector<auth::ApiKey>> {
    auto st = db.prepare("SELECT " KEY_COLUMNS " FROM api_keys ORDER BY id");
    std::vector<auth::ApiKey> out;
    while (st.step()) out.push_back(key_from_row(st));
    if (st.rc() != SQLITE_DONE) return sqlite::to_error(st.rc(), db.errmsg());
    return out;
  });
}

Async<auth::ApiKey> SqliteStore::revoke_key(int64_t id, int64_t now) {
  return write<auth::ApiKey>([id, now](Db& db) -> Result<auth::ApiKey> {
    auto st = db.prepare("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1");
    st.bind(1, id).bind(2, now);
    if (int rc = st.run(); rc != SQLITE_DONE) return sqlite::to_error(rc, db.errmsg());
    return load_key(db, id);
  }, false);
}

Async<Unit> SqliteStore::touch_keys(std::vector<std::pair<int64_t, int64_t>> used) {
  return write<Unit>([used = std::move(used)](Db& db) -> Result<Unit> {
    for (const auto& [id, at] : used) {
      auto st = db.prepare("UPDATE api_keys SET last_used_at = MAX(COALESCE(last_used_at, 0), ?2) WHERE id = ?1");
      st.bind(1, id).bind(2, at);
      if (int rc = st.run(); rc != SQLITE_DONE) return sqlite::to_error(rc, db.errmsg());
    }
    return Unit{};
  }, false);
}

}  // namespace creatord
