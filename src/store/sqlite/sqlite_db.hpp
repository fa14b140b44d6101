// A thin RAII layer over one SQLite connection, with a per-connection prepared statement cache.
// A Db is used by one thread at a time.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/result.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace creatord::sqlite {

class Stmt {
 public:
  explicit Stmt(sqlite3_stmt* s) : s_(s) {}
  ~Stmt();  // resets the statement and clears bindings, ready for reuse
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(int index, int64_t v);
  Stmt& bind(int index, std::string_view v);
  Stmt& bind(int index, const std::string& v) { return bind(index, std::string_view(v)); }
  Stmt& bind(int index, const char* v) { return bind(index, std::string_view(v)); }
  Stmt& bind(int index, const std::optional<std::string>& v);
  Stmt& bind_null(int index);
  Stmt& bind_real(int index, double v);
  // True while a row is available. Errors are reported by done()/error().
  bool step();
  // Runs to completion; returns the result code (SQLITE_DONE on success).
  int run();
  int rc() const { return rc_; }

  int64_t int64(int col) const;
  double real(int col) const;
  std::string text(int col) const;
  // The column's text without a copy: valid until the next step() or the statement's reset.
  std::string_view view(int col) const;
  bool is_null(int col) const;

 private:
  sqlite3_stmt* s_;
  int rc_ = 0;
};

class Db {
 public:
  // Opens (creating when writable) the database; applies the connection settings.
  static Result<std::unique_ptr<Db>> open(const std::string& path, bool read_only, int busy_timeout_ms,
                                          const std::string& synchronous);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // Executes one or more statements without results.
  Status exec(const char* sql);
  // A cached prepared statement for this SQL text (the text must outlive the Db: use literals).
  Stmt prepare(const char* sql);
  int64_t last_insert_rowid() const;
  int changes() const;
  std::string errmsg() const;
  sqlite3* raw() { return db_; }

 private:
  explicit Db(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  std::unordered_map<const char*, sqlite3_stmt*> cache_;
};

// Maps an SQLite result code to the store's error.
Error to_error(int rc, const std::string& context);

}  // namespace creatord::sqlite
