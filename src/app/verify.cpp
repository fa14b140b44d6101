// `creatord verify`: see app/backup.hpp.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "app/backup.hpp"
#include "core/sha256.hpp"
#include "store/pg/pg_migrations.hpp"
#include "store/sqlite/sqlite_db.hpp"

namespace creatord {

namespace fs = std::filesystem;

namespace {

// What verify found: each problem a line naming the file or the image it concerns.
struct Findings {
  std::vector<std::string> problems;
  size_t images_files = 0;
  size_t orphans = 0;
  void add(std::string p) { problems.push_back(std::move(p)); }
};

int report(const Findings& f, const std::string& where) {
  for (const auto& p : f.problems) std::cout << "problem: " << p << "\n";
  if (f.problems.empty()) {
    std::cout << fmt::format("verify {}: ok, {} image files checked, no orphans\n", where, f.images_files);
    return 0;
  }
  std::cout << fmt::format("verify {}: {} problem(s)\n", where, f.problems.size());
  return 1;
}

void check_sqlite_integrity(sqlite::Db& db, Findings& f) {
  auto st = db.prepare("PRAGMA integrity_check");
  while (st.step()) {
    std::string line = st.text(0);
    if (line != "ok") f.add("database: " + line);
  }
  if (st.rc() != SQLITE_DONE) f.add("database: integrity check failed: " + db.errmsg());
}

int verify_sqlite(const Config& cfg) {
  fs::path data_dir(cfg.data_dir);
  std::string path = cfg.database_url.rfind("sqlite://", 0) == 0 ? cfg.database_url.substr(9)
                                                                 : (data_dir / "creatord.db").string();
  if (!fs::exists(path)) {
    std::cerr << "creatord: no database at " << path << "\n";
    return 1;
  }
  auto db = sqlite::Db::open(path, true, 10000, "FULL");
  if (!db) {
    std::cerr << "creatord: cannot open " << path << ": " << db.error().message << "\n";
    return 1;
  }
  Findings f;
  check_sqlite_integrity(*db.value(), f);
  std::set<std::string> named;
  {
    auto st = db.value()->prepare("SELECT DISTINCT sha256 FROM images");
    while (st.step()) named.insert(st.text(0));
  }
  for (const auto& h : named) {
    fs::path file = data_dir / "blobs" / h.substr(0, 2) / h;
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      f.add(file.string() + ": missing (an image names it)");
      continue;
    }
    std::ostringstream bytes;
    bytes << in.rdbuf();
    if (sha256_hex(bytes.str()) != h) f.add(file.string() + ": content does not match its hash (corrupted)");
    ++f.images_files;
  }
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(data_dir / "blobs", ec)) {
    if (!e.is_regular_file() || e.path().parent_path().filename() == "tmp") continue;
    if (!named.count(e.path().filename().string())) {
      f.add(e.path().string() + ": orphan (no image names it; the server's sweep removes such files after "
                                "--blob-sweep-grace)");
      ++f.orphans;
    }
  }
  return report(f, cfg.data_dir);
}

using PgResult = std::unique_ptr<PGresult, decltype(&PQclear)>;

// Runs a query whose rows are each one problem (first column), described by `what`.
bool pg_problems(PGconn* c, const char* sql, const std::string& what, Findings& f) {
  PgResult r(PQexec(c, sql), &PQclear);
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
    f.add(std::string("query failed: ") + PQerrorMessage(c));
    return false;
  }
  for (int i = 0; i < PQntuples(r.get()); ++i) f.add(fmt::format("blob {}: {}", PQgetvalue(r.get(), i, 0), what));
  return true;
}

// PostgreSQL checks its own pages (data checksums, amcheck); this checks what creatord relies on.
int verify_postgres(const Config& cfg) {
  std::unique_ptr<PGconn, decltype(&PQfinish)> c(PQconnectdb(cfg.database_url.c_str()), &PQfinish);
  if (PQstatus(c.get()) != CONNECTION_OK) {
    std::cerr << "creatord: cannot connect to PostgreSQL: " << PQerrorMessage(c.get()) << "\n";
    return 1;
  }
  Findings f;
  pg_problems(c.get(),
              "SELECT DISTINCT i.sha256 FROM creatord.images i WHERE NOT EXISTS (SELECT 1 FROM creatord.blobs b WHERE b.sha256 = i.sha256)",
              "missing (an image names it)", f);
  pg_problems(c.get(), "SELECT sha256 FROM creatord.blobs WHERE encode(sha256(bytes), 'hex') <> sha256",
              "content does not match its hash (corrupted)", f);
  size_t before = f.problems.size();
  pg_problems(c.get(), "SELECT sha256 FROM creatord.blobs b WHERE NOT EXISTS (SELECT 1 FROM creatord.images i WHERE i.sha256 = b.sha256)",
              "orphan (no image names it; the server's sweep removes such rows after --blob-sweep-grace)", f);
  f.orphans = f.problems.size() - before;
  PgResult n(PQexec(c.get(), "SELECT count(DISTINCT sha256) FROM creatord.images"), &PQclear);
  if (PQresultStatus(n.get()) == PGRES_TUPLES_OK) f.images_files = std::stoul(PQgetvalue(n.get(), 0, 0));
  return report(f, "postgresql");
}

}  // namespace

int run_verify(const Config& cfg) {
  return pg::is_postgres_url(cfg.database_url) ? verify_postgres(cfg) : verify_sqlite(cfg);
}

}  // namespace creatord
