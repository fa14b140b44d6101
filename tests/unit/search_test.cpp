#include "domain/search.hpp"

#include <libpq-fe.h>
#include <sqlite3.h>

#include <algorithm>
#include <set>

#include <gtest/gtest.h>

#include "run_awaitable.hpp"
#include "store/pg/pg_migrations.hpp"
#include "store/sqlite/migrations.hpp"
#include "store_fixture.hpp"

using namespace creatord;

namespace {

using Pieces = std::vector<std::string>;

TEST(SearchTrigrams, ThreeCodePointsAtATimeDistinctInOrder) {
  EXPECT_EQ(search_trigrams("abcd"), (Pieces{"abc", "bcd"}));
  EXPECT_EQ(search_trigrams("aaaa"), (Pieces{"aaa"}));
  EXPECT_EQ(search_trigrams("éa ü"), (Pieces{"éa ", "a ü"}));  // code points, not bytes
  EXPECT_EQ(search_trigrams("🎨ab"), (Pieces{"🎨ab"}));
  EXPECT_EQ(search_trigrams("a\"b"), (Pieces{"a\"b"}));
}

TEST(SearchTrigrams, NoneForShortOrInvalidText) {
  EXPECT_EQ(search_trigrams(""), std::nullopt);
  EXPECT_EQ(search_trigrams("ab"), std::nullopt);
  EXPECT_EQ(search_trigrams("éü"), std::nullopt);  // four bytes, two characters
  EXPECT_EQ(search_trigrams("ab\xff"), std::nullopt);
  EXPECT_EQ(search_trigrams("abc\xc3"), std::nullopt);          // cut short
  EXPECT_EQ(search_trigrams("ab\xc0\xaf"), std::nullopt);       // overlong '/'
  EXPECT_EQ(search_trigrams("ab\xed\xa0\x80"), std::nullopt);   // a surrogate
}

// Names that case folding treats differently: ASCII, Latin letters with accents in both cases,
// letters whose case mapping changes length or is not one to one, other scripts, emoji, and
// LIKE's own metacharacters.
const std::vector<std::pair<std::string, std::string>> kCorpus = {
    {"Émile Zola", "emile"},       {"émile zola", "emile.z"},   {"ÉMILE", "emile_caps"},
    {"Straße Kunst", "strasse"},   {"STRASSE", "strasse2"},     {"İstanbul Art", "istanbul"},
    {"ıstanbul", "istanbul2"},     {"Ωmega Studio", "omega"},   {"ωmega", "omega2"},
    {"\xE2\x84\xAA" "elvin", "kelvin"},  // KELVIN SIGN K
    {"Kelvin", "kelvin2"},         {"naïve café", "naive"},     {"NAÏVE CAFÉ", "naive2"},
    {"日本語テスト", "nihongo"},   {"emoji 🎨 art", "emoji"},   {"100% real", "percent"},
    {"under_score", "under_s"},    {"back\\slash", "backslash"}, {"quote \"q\" 'x'", "quote"},
    {"plain name", "a_b-c.d"},     {"Ǆemal", "dzemal"},         {"ǆemal", "dzemal2"},
};

// Every substring of one to five characters of each name and handle, each also in ASCII upper
// case, plus LIKE's metacharacters and text found nowhere.
std::set<std::string> queries() {
  std::set<std::string> out = {"%", "_", "\\", "%%%", "a_b", "0%", "\"", "\"q\"", "zzzz", "é", "É", "ÉMI", "émi", "SS",
                               "ß", "İ", "ı", "Ω", "ω", "ǅ"};
  for (const auto& [name, handle] : kCorpus) {
    for (const std::string& text : {name, handle}) {
      std::vector<size_t> starts;
      for (size_t i = 0; i < text.size(); ++i)
        if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) starts.push_back(i);
      starts.push_back(text.size());
      for (size_t a = 0; a + 1 < starts.size(); ++a)
        for (size_t len = 1; len <= 5 && a + len < starts.size(); ++len) {
          std::string piece = text.substr(starts[a], starts[a + len] - starts[a]);
          out.insert(piece);
          std::string upper = piece;
          for (auto& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
          out.insert(upper);
        }
    }
  }
  return out;
}

class SearchTest : public StoreFixture {
 protected:
  void SetUp() override {
    StoreFixture::SetUp();
    if (IsSkipped()) return;
    for (const auto& [name, handle] : kCorpus) create(name, handle);
    // Writes after the index exists: an update of name and handle, a delete.
    auto moved = create("Old Name", "old-handle");
    CreatorFields patch;
    patch.name = "Renamed Ünïcode";
    patch.handle = "renamed";
    ASSERT_TRUE(run(stores_->update_creator(moved, patch)));
    auto gone = create("Deleted Émile", "deleted");
    ASSERT_TRUE(run(stores_->delete_creator(gone)));
  }
  int64_t create(const std::string& name, const std::string& handle) {
    CreatorFields f;
    f.name = name;
    f.handle = handle;
    auto c = run(stores_->create_creator(f));
    EXPECT_TRUE(c) << c.error().message;
    return c ? c->id : 0;
  }

  // Every match of `q` through the store, three at a time (so the cursor shapes run too).
  std::vector<int64_t> searched(const std::string& q) {
    std::vector<int64_t> ids;
    PageQuery pq;
    pq.q = q;
    pq.limit = 3;
    for (;;) {
      auto page = run(stores_->list_creators(pq));
      EXPECT_TRUE(page) << page.error().message;
      if (!page) return ids;
      for (const auto& c : page->items) ids.push_back(c.id);
      if (!page->has_more) return ids;
      pq.before_id = page->items.back().id;
    }
  }

  // The scan the store answered with before the index, run on the database directly.
  std::vector<int64_t> scanned(const std::string& q) {
    std::string pattern = "%";
    for (char ch : q) {
      if (ch == '%' || ch == '_' || ch == '\\') pattern.push_back('\\');
      pattern.push_back(ch);
    }
    pattern.push_back('%');
    return GetParam() == "postgres" ? scanned_pg(pattern) : scanned_sqlite(pattern);
  }
  std::vector<int64_t> scanned_sqlite(const std::string& pattern) {
    std::vector<int64_t> ids;
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2((dir_ / "t.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db,
                                 "SELECT id FROM creators NOT INDEXED WHERE name LIKE ?1 ESCAPE '\\' "
                                 "OR handle LIKE ?1 ESCAPE '\\' ORDER BY id DESC",
                                 -1, &st, nullptr),
              SQLITE_OK);
    sqlite3_bind_text(st, 1, pattern.c_str(), static_cast<int>(pattern.size()), SQLITE_TRANSIENT);
    while (sqlite3_step(st) == SQLITE_ROW) ids.push_back(sqlite3_column_int64(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return ids;
  }
  std::vector<int64_t> scanned_pg(const std::string& pattern) {
    std::vector<int64_t> ids;
    PGconn* c = PQconnectdb((admin_.substr(0, admin_.rfind('/')) + "/" + name_).c_str());
    PQclear(PQexec(c, "SET enable_bitmapscan = off"));  // the trigram indexes answer only bitmap scans
    const char* values[] = {pattern.c_str()};
    PGresult* r = PQexecParams(c,
                               "SELECT id FROM creatord.creators WHERE name ILIKE $1 OR handle ILIKE $1 "
                               "ORDER BY id DESC",
                               1, nullptr, values, nullptr, nullptr, 0);
    EXPECT_EQ(PQresultStatus(r), PGRES_TUPLES_OK) << PQerrorMessage(c);
    for (int i = 0; i < PQntuples(r); ++i) ids.push_back(std::stoll(PQgetvalue(r, i, 0)));
    PQclear(r);
    PQfinish(c);
    return ids;
  }

  void expect_search_is_the_scan() {
    size_t matched = 0;
    for (const auto& q : queries()) {
      auto expected = scanned(q);
      matched += !expected.empty();
      EXPECT_EQ(searched(q), expected) << "q=" << q;
    }
    EXPECT_GT(matched, 100u);  // the corpus is searched, not just missed
  }

  // The schema as it was before the search index (migration 6 on PostgreSQL, 9 on SQLite), rows
  // kept; the migrations after it are idempotent and run again.
  void drop_search_index() {
    constexpr int kPgSearchMigration = 6, kSqliteSearchMigration = 9;
    if (GetParam() == "postgres") {
      admin_exec_in_db(
          "DROP INDEX creatord.creators_name_trgm; DROP INDEX creatord.creators_handle_trgm; "
          "DELETE FROM creatord.schema_migrations WHERE version >= " + std::to_string(kPgSearchMigration));
      return;
    }
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_ / "t.db").c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    const std::string sql = "DROP TRIGGER creators_fts_insert; DROP TRIGGER creators_fts_delete; "
                            "DROP TRIGGER creators_fts_update; DROP TABLE creators_fts; PRAGMA user_version = " +
                            std::to_string(kSqliteSearchMigration - 1);
    ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err),
              SQLITE_OK)
        << (err ? err : "");
    sqlite3_close(db);
  }
  void admin_exec_in_db(const std::string& sql) {
    PGconn* c = PQconnectdb((admin_.substr(0, admin_.rfind('/')) + "/" + name_).c_str());
    PGresult* r = PQexec(c, sql.c_str());
    EXPECT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << PQerrorMessage(c);
    PQclear(r);
    PQfinish(c);
  }
  // Whether the index itself holds the rows (not only the answers, which the scan would give too).
  std::vector<int64_t> indexed(const std::string& trigram) {
    std::vector<int64_t> ids;
    if (GetParam() == "postgres") {
      PGconn* c = PQconnectdb((admin_.substr(0, admin_.rfind('/')) + "/" + name_).c_str());
      PQclear(PQexec(c, "SET enable_seqscan = off; SET enable_indexscan = off"));
      std::string pattern = "%" + trigram + "%";
      const char* values[] = {pattern.c_str()};
      PGresult* plan = PQexecParams(c, "EXPLAIN SELECT id FROM creatord.creators WHERE name ILIKE $1", 1, nullptr,
                                    values, nullptr, nullptr, 0);
      std::string text;
      for (int i = 0; i < PQntuples(plan); ++i) text += PQgetvalue(plan, i, 0);
      PQclear(plan);
      EXPECT_NE(text.find("creators_name_trgm"), std::string::npos) << text;
      PGresult* r = PQexecParams(c, "SELECT id FROM creatord.creators WHERE name ILIKE $1 ORDER BY id DESC", 1,
                                 nullptr, values, nullptr, nullptr, 0);
      for (int i = 0; i < PQntuples(r); ++i) ids.push_back(std::stoll(PQgetvalue(r, i, 0)));
      PQclear(r);
      PQfinish(c);
      return ids;
    }
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2((dir_ / "t.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    std::string match = "\"" + trigram + "\"";
    EXPECT_EQ(sqlite3_prepare_v2(db, "SELECT rowid FROM creators_fts WHERE creators_fts MATCH ?1 ORDER BY rowid DESC",
                                 -1, &st, nullptr),
              SQLITE_OK)
        << sqlite3_errmsg(db);
    sqlite3_bind_text(st, 1, match.c_str(), -1, SQLITE_TRANSIENT);
    while (sqlite3_step(st) == SQLITE_ROW) ids.push_back(sqlite3_column_int64(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return ids;
  }
};

TEST_P(SearchTest, IndexedSearchGivesTheScansAnswers) { expect_search_is_the_scan(); }

TEST_P(SearchTest, MigrationIndexesTheRowsAlreadyThere) {
  drop_search_index();
  reopen();  // applies the index migration again, over existing rows
  // "mil": Émile Zola, émile zola and ÉMILE.
  auto found = indexed("mil");
  EXPECT_EQ(found, scanned("mil"));  // the same rows in name and handle here
  EXPECT_GE(found.size(), 3u);
  expect_search_is_the_scan();
}

INSTANTIATE_TEST_SUITE_P(Stores, SearchTest, ::testing::Values(std::string("sqlite"), std::string("postgres")),
                         store_param_name);

}  // namespace
