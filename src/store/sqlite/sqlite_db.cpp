#include "store/sqlite/sqlite_db.hpp"

#include <sqlite3.h>

#include <fmt/format.h>

namespace creatord::sqlite {

namespace {
// Before SQLite initialises (at load, ahead of any connection): no global memory statistics, so
// no process-wide mutex around every allocation SQLite makes (each connection is used by one
// thread at a time: SQLITE_OPEN_NOMUTEX). A measured 6% of the writer thread's time.
const int kConfigured = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}  // namespace

Stmt::~Stmt() {
  sqlite3_reset(s_);
  sqlite3_clear_bindings(s_);
}

Stmt& Stmt::bind(int i, int64_t v) {
  sqlite3_bind_int64(s_, i, v);
  return *this;
}
Stmt& Stmt::bind(int i, std::string_view v) {
  sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}
Stmt& Stmt::bind(int i, const std::optional<std::string>& v) {
  if (v) return bind(i, std::string_view(*v));
  return bind_null(i);
}
Stmt& Stmt::bind_real(int i, double v) {
  sqlite3_bind_double(s_, i, v);
  return *this;
}
Stmt& Stmt::bind_null(int i) {
  sqlite3_bind_null(s_, i);
  return *this;
}

bool Stmt::step() {
  rc_ = sqlite3_step(s_);
  return rc_ == SQLITE_ROW;
}

int Stmt::run() {
  while (step()) {
  }
  return rc_;
}

int64_t Stmt::int64(int col) const { return sqlite3_column_int64(s_, col); }
double Stmt::real(int col) const { return sqlite3_column_double(s_, col); }
std::string Stmt::text(int col) const { return std::string(view(col)); }
std::string_view Stmt::view(int col) const {
  auto p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
  return p ? std::string_view(p, static_cast<size_t>(sqlite3_column_bytes(s_, col))) : std::string_view();
}
bool Stmt::is_null(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }

Result<std::unique_ptr<Db>> Db::open(const std::string& path, bool read_only, int busy_timeout_ms,
                                     const std::string& synchronous) {
  sqlite3* raw = nullptr;
  int flags = SQLITE_OPEN_NOMUTEX | (read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE));
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  std::unique_ptr<Db> db(new Db(raw));
  if (rc != SQLITE_OK) return to_error(rc, "open " + path);
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, busy_timeout_ms);
  std::string pragmas = "PRAGMA foreign_keys=ON;";
  if (!read_only) {
    pragmas += "PRAGMA journal_mode=WAL; PRAGMA synchronous=" + synchronous + ";";
  }
  if (auto s = db->exec(pragmas.c_str()); !s) return s.take_error();
  return db;
}

Db::~Db() {
  for (auto& [_, s] : cache_) sqlite3_finalize(s);
  if (db_) sqlite3_close_v2(db_);
}

Status Db::exec(const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    return to_error(rc, msg);
  }
  return ok_status();
}

Stmt Db::prepare(const char* sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end()) return Stmt(it->second);
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr);
  if (rc != SQLITE_OK) {
    // A bad statement is a programming error: fail loudly rather than limp on.
    throw std::runtime_error(fmt::format("prepare failed: {}: {}", sqlite3_errmsg(db_), sql));
  }
  cache_.emplace(sql, s);
  return Stmt(s);
}

int64_t Db::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }
int Db::changes() const { return sqlite3_changes(db_); }
std::string Db::errmsg() const { return sqlite3_errmsg(db_); }

Error to_error(int rc, const std::string& context) {
  int primary = rc & 0xff;
  if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
    return Error::make(ErrorCode::conflict, context);
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED)
    return Error::make(ErrorCode::unavailable, "database is busy: " + context);
  if (primary == SQLITE_FULL)
    return Error::make(ErrorCode::insufficient_storage, fmt::format("database is full ({}): {}", sqlite3_errstr(rc), context));
  if (primary == SQLITE_IOERR)
    return Error::make(ErrorCode::unavailable, fmt::format("database I/O error ({}): {}", sqlite3_errstr(rc), context));
  return Error::make(ErrorCode::internal, fmt::format("database error ({}): {}", sqlite3_errstr(rc), context));
}

}  // namespace creatord::sqlite
