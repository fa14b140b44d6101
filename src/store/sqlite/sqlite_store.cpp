#include "store/sqlite/sqlite_store.hpp"

#include <pthread.h>
#include <sqlite3.h>

#include <boost/json.hpp>

#include "core/clock.hpp"
#include "core/log.hpp"
#include "core/offload.hpp"
#include "domain/search.hpp"
#include "store/sqlite/migrations.hpp"
#include "store/sqlite/sqlite_store_ops.hpp"

namespace creatord {

using sqlite::Db;
using sqlite::Stmt;
namespace asio = boost::asio;

namespace {

Error not_found(std::string what) { return Error::make(ErrorCode::not_found, std::move(what)); }

Creator creator_from_row(const Stmt& st) {
  Creator c;
  c.id = st.int64(0);
  c.name = st.text(1);
  c.handle = st.text(2);
  if (!st.is_null(3)) c.email = st.text(3);
  c.bio = st.text(4);
  c.tags = tags_from_json_text(st.text(5));
  c.created_at_ms = st.int64(6);
  c.updated_at_ms = st.int64(7);
  if (!st.is_null(8)) c.owner = st.text(8);
  if (!st.is_null(9)) c.external_id = st.text(9);
  return c;
}

Image image_from_row(const Stmt& st) {
  Image i;
  i.id = st.int64(0);
  i.creator_id = st.int64(1);
  i.sha256 = st.text(2);
  i.content_type = st.text(3);
  i.width = static_cast<int>(st.int64(4));
  i.height = static_cast<int>(st.int64(5));
  i.size_bytes = st.int64(6);
  i.source = st.text(7);
  i.created_at_ms = st.int64(8);
  if (!st.is_null(9)) i.source_url = st.text(9);
  return i;
}

#define CREATOR_COLUMNS "id, name, handle, email, bio, tags, created_at, updated_at, owner, external_id"
#define CREATOR_COLUMNS_OF(t) \
  t ".id, " t ".name, " t ".handle, " t ".email, " t ".bio, " t ".tags, " t ".created_at, " t ".updated_at, " t ".owner, " \
  t ".external_id"
#define NAME_OR_HANDLE_LIKE(t) "(" t ".name LIKE ?2 ESCAPE '\\' OR " t ".handle LIKE ?2 ESCAPE '\\')"

// An FTS5 query for rows holding every trigram of `q` (each one quoted, so no character of `q`
// is syntax); nullopt when the index cannot narrow the search (see search_trigrams).
std::optional<std::string> trigram_match(const std::string& q) {
  auto pieces = search_trigrams(q);
  if (!pieces) return std::nullopt;
  std::string out;
  for (const auto& piece : *pieces) {
    if (!out.empty()) out += " AND ";
    out.push_back('"');
    for (char c : piece) {
      if (c == '"') out.push_back('"');
      out.push_back(c);
    }
    out.push_back('"');
  }
  return out;
}

// LIKE pattern for a substring search, with the user's % _ and \ taken literally.
std::string like_pattern(const std::string& q) {
  std::string p = "%";
  for (char c : q) {
    if (c == '%' || c == '_' || c == '\\') p.push_back('\\');
    p.push_back(c);
  }
  p.push_back('%');
  return p;
}

Result<Creator> load_creator(Db& db, int64_t id) {
  // The SQL text must be a literal (the statement cache keys on its address).
  auto st = db.prepare(
      "SELECT " CREATOR_COLUMNS " FROM creators WHERE id = ?1");
  st.bind(1, id);
  if (st.step()) return creator_from_row(st);
  if (st.rc() != SQLITE_DONE) return sqlite::to_error(st.rc(), db.errmsg());
  return not_found(fmt::format("creator {} does not exist", id));
}

}  // namespace

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(SqliteOptions options) {
  std::unique_ptr<SqliteStore> store(new SqliteStore(std::move(options)));
  auto& o = store->options_;
  auto w = Db::open(o.path, false, o.busy_timeout_ms, o.synchronous);
  if (!w) return w.take_error();
  store->writer_ = std::move(w.value());
  if (auto m = sqlite::migrate(*store->writer_); !m) return m.take_error();
  if (o.readers == 0) o.readers = 1;
  for (size_t i = 0; i < o.readers; ++i) {
    auto r = Db::open(o.path, true, o.busy_timeout_ms, o.synchronous);
    if (!r) return r.take_error();
    store->readers_.push_back(std::move(r.value()));
  }
  store->read_pool_ = std::make_unique<BlockingPool>("sqlite-read", o.readers, o.queue_limit);
  store->writer_thread_ = std::thread([s = store.get()] { s->writer_loop(); });
  return store;
}

Result<int> SqliteStore::migrate_only(const SqliteOptions& o) {
  auto w = Db::open(o.path, false, o.busy_timeout_ms, o.synchronous);
  if (!w) return w.take_error();
  return sqlite::migrate(*w.value());
}

SqliteStore::~SqliteStore() { close(); }

void SqliteStore::close() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !writer_thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (writer_thread_.joinable()) writer_thread_.join();
  if (read_pool_) read_pool_->stop();
}

bool SqliteStore::submit_write(WriteItem item) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || queue_.size() >= options_.queue_limit) return false;
    item.submitted = std::chrono::steady_clock::now();
    queue_.push_back(std::move(item));
  }
  cv_.notify_one();
  return true;
}

void SqliteStore::writer_loop() {
  pthread_setname_np(pthread_self(), "sqlite-write");
  Db& db = *writer_;
  for (;;) {
    std::vector<WriteItem> batch;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and every accepted write is done
      size_t n = std::min(queue_.size(), options_.max_batch);
      batch.reserve(n);
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    bool creators_changed = false;
    const auto began = std::chrono::steady_clock::now();
    for (const auto& item : batch) {
      creators_changed |= item.changes_creators;
      write_wait_.observe(began - item.submitted);
    }
    if (auto begin = db.exec("BEGIN IMMEDIATE"); !begin) {
      for (auto& item : batch) item.finish(&begin.error());
      continue;
    }
    for (auto& item : batch) {
      db.prepare("SAVEPOINT w").run();
      bool ok = false;
      try {
        ok = item.run(db);
      } catch (const std::exception& e) {
        log::error("write failed", {{"error", e.what()}});
      }
      if (!ok) db.prepare("ROLLBACK TO w").run();
      db.prepare("RELEASE w").run();
    }
    auto commit = db.exec("COMMIT");
    write_hold_.observe(std::chrono::steady_clock::now() - began);
    if (!commit) {
      (void)db.exec("ROLLBACK");
      log::error("commit failed", {{"error", commit.error().message}});
      for (auto& item : batch) item.finish(&commit.error());
    } else {
      if (creators_changed) creators_version_.fetch_add(1, std::memory_order_acq_rel);
      for (auto& item : batch) item.finish(nullptr);
    }
  }
}

Async<Creator> SqliteStore::create_creator(CreatorFields f) {
  return write<Creator>([f = std::move(f)](Db& db) -> Result<Creator> {
    Creator c;
    apply_fields(c, f);
    c.updated_at_ms = now_ms();
    c.created_at_ms = f.created_at_ms.value_or(c.updated_at_ms);
    auto st = db.prepare(
        "INSERT INTO creators (name, handle, email, bio, tags, created_at, updated_at, owner, external_id) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
    st.bind(1, c.name).bind(2, c.handle).bind(3, c.email).bind(4, c.bio).bind(5, tags_to_json_text(c.tags));
    st.bind(6, c.created_at_ms).bind(7, c.updated_at_ms).bind(8, c.owner).bind(9, c.external_id);
    int rc = st.run();
    if (rc == SQLITE_CONSTRAINT_UNIQUE && db.errmsg().find("owner") != std::string::npos)
      return Error::make(ErrorCode::conflict, "this user has a creator already; one per user", "owner");
    if (rc == SQLITE_CONSTRAINT_UNIQUE) return creator_conflict(c, db.errmsg());
    if (rc != SQLITE_DONE) return sqlite::to_error(rc, db.errmsg());
    c.id = db.last_insert_rowid();
    return c;
  });
}

Async<Creator> SqliteStore::get_creator(int64_t id) {
  return read<Creator>([id](Db& db) { return load_creator(db, id); });
}

Async<Creator> SqliteStore::update_creator(int64_t id, CreatorFields f) {
  return write<Creator>([id, f = std::move(f)](Db& db) -> Result<Creator> {
    auto cur = load_creator(db, id);
    if (!cur) return cur;
    Creator c = std::move(cur.value());
    apply_fields(c, f);
    c.updated_at_ms = std::max(now_ms(), c.updated_at_ms);
    auto st = db.prepare(
        "UPDATE creators SET name = ?2, handle = ?3, email = ?4, bio = ?5, tags = ?6, updated_at = ?7, "
        "external_id = ?8 WHERE id = ?1");
    st.bind(1, id).bind(2, c.name).bind(3, c.handle).bind(4, c.email).bind(5, c.bio);
    st.bind(6, tags_to_json_text(c.tags)).bind(7, c.updated_at_ms).bind(8, c.external_id);
    int rc = st.run();
    if (rc == SQLITE_CONSTRAINT_UNIQUE) return creator_conflict(c, db.errmsg());
    if (rc != SQLITE_DONE) return sqlite::to_error(rc, db.errmsg());
    return c;
  });
}

Async<Unit> SqliteStore::delete_creator(int64_t id) {
  return write<Unit>([id](Db& db) -> Result<Unit> {
    auto st = db.prepare("DELETE FROM creators WHERE id = ?1");
    st.bind(1, id);
    int rc = st.run();
    if (rc != SQLITE_DONE) return sqlite::to_error(rc, db.errmsg());
    if (db.changes() == 0) return not_found(fmt::format("creator {} does not exist", id));
    return Unit{};
  });
}

namespace {
// The plain page (no q): the rowids walked down from the cursor, if any.
const char* plain_page_sql(bool from_cursor) {
  return from_cursor ? "SELECT " CREATOR_COLUMNS " FROM creators WHERE id < ?1 ORDER BY id DESC LIMIT ?3"
                     : "SELECT " CREATOR_COLUMNS " FROM creators ORDER BY id DESC LIMIT ?3";
}
}  // namespace

// A plain page (no q) written as the answer's text on the reader thread, from the row's own
// text: no Creator is built. A search merges the external-id match into the page: list_creators.
Async<std::string> SqliteStore::list_creators_json(PageQuery q, Visibility who) {
  if (!q.q.empty()) co_return co_await Store::list_creators_json(std::move(q), std::move(who));
  auto work = [q = std::move(q), who = std::move(who)](Db& db) -> Result<std::string> {
    auto st = db.prepare(plain_page_sql(q.before_id.has_value()));
    if (q.before_id) st.bind(1, *q.before_id);
    st.bind(3, int64_t{q.limit} + 1);
    auto maybe = [&st](int col) { return st.is_null(col) ? std::nullopt : std::optional<std::string_view>(st.view(col)); };
    std::string out;
    out.reserve(64 + static_cast<size_t>(q.limit) * 320);
    begin_creators_page(out);
    int n = 0;
    int64_t last_id = 0;
    bool more = false;
    while (st.step()) {
      if (n == q.limit) {
        more = true;
        break;
      }
      CreatorView c{st.int64(0), st.view(1),  st.view(2),  maybe(3),    st.view(4),
                    st.view(5),  maybe(9),    st.int64(6), st.int64(7), maybe(8)};
      if (n++) out.push_back(',');
      append_json(out, c, who.sees_private(c.owner));
      last_id = c.id;
    }
    if (!more && st.rc() != SQLITE_DONE) return sqlite::to_error(st.rc(), db.errmsg());
    end_creators_page(out, more, last_id);
    return out;
  };
  co_return co_await read<std::string>(std::move(work));
}

Async<Page<Creator>> SqliteStore::list_creators(PageQuery q) {
  return read<Page<Creator>>([q = std::move(q)](Db& db) -> Result<Page<Creator>> {
    // One statement per shape, so each walks the rowids down from the cursor (never a scan from
    // the top). A search of three characters or more takes its candidates from the trigram
    // index, newest first; the LIKE decides either way, so both give the scan's answer.
    std::optional<std::string> match;
    if (!q.q.empty()) match = trigram_match(q.q);
    const char* sql;
    if (q.q.empty()) {
      sql = plain_page_sql(q.before_id.has_value());
    } else if (match) {
      sql = q.before_id ? "SELECT " CREATOR_COLUMNS_OF("c") " FROM creators_fts f JOIN creators c ON c.id = f.rowid "
                          "WHERE creators_fts MATCH ?4 AND f.rowid < ?1 AND " NAME_OR_HANDLE_LIKE("c") " "
                          "ORDER BY f.rowid DESC LIMIT ?3"
                        : "SELECT " CREATOR_COLUMNS_OF("c") " FROM creators_fts f JOIN creators c ON c.id = f.rowid "
                          "WHERE creators_fts MATCH ?4 AND " NAME_OR_HANDLE_LIKE("c") " "
                          "ORDER BY f.rowid DESC LIMIT ?3";
    } else {
      sql = q.before_id ? "SELECT " CREATOR_COLUMNS " FROM creators "
                          "WHERE id < ?1 AND " NAME_OR_HANDLE_LIKE("creators") " ORDER BY id DESC LIMIT ?3"
                        : "SELECT " CREATOR_COLUMNS " FROM creators "
                          "WHERE " NAME_OR_HANDLE_LIKE("creators") " ORDER BY id DESC LIMIT ?3";
    }
    auto st = db.prepare(sql);
    if (q.before_id) st.bind(1, *q.before_id);
    if (!q.q.empty()) st.bind(2, like_pattern(q.q));
    st.bind(3, int64_t{q.limit} + 1);
    if (match) st.bind(4, *match);
    Page<Creator> page;
    page.items.reserve(static_cast<size_t>(q.limit) + 2);
    while (st.step()) page.items.push_back(creator_from_row(st));
    if (st.rc() != SQLITE_DONE) return sqlite::to_error(st.rc(), db.errmsg());
    // q also finds the creator whose external id it is, exactly (imports keep the original
    // service's ids). That one is unique and outside the trigram index: looked up on its own and
    // merged in at its place in id order.
    if (!q.q.empty()) {
      auto ext = db.prepare("SELECT " CREATOR_COLUMNS " FROM creators WHERE external_id = ?1 AND id < ?2");
      ext.bind(1, q.q).bind(2, q.before_id.value_or(INT64_MAX));
      if (ext.step()) {
        Creator c = creator_from_row(ext);
        auto& items = page.items;
        if (std::none_of(items.begin(), items.end(), [&](const Creator& x) { return x.id == c.id; })) {
          auto at = std::find_if(items.begin(), items.end(), [&](const Creator& x) { return x.id < c.id; });
          items.insert(at, std::move(c));
          if (items.size() > static_cast<size_t>(q.limit) + 1) items.pop_back();
        }
      } else if (ext.rc() != SQLITE_DONE) {
        return sqlite::to_error(ext.rc(), db.errmsg());
      }
    }
    page.trim_to(q.limit);
    return page;
  });
}

Async<int64_t> SqliteStore::count_creators() {
  return read<int64_t>([](Db& db) -> Result<int64_t> {
    auto st = db.prepare("SELECT count(*) FROM creators");
    if (st.step()) return st.int64(0);
    return sqlite::to_error(st.rc(), db.errmsg());
  });
}

Async<std::vector<int64_t>> SqliteStore::creator_ids_after(int64_t after_id, int limit) {
  return read<std::vector<int64_t>>([after_id, limit](Db& db) -> Result<std::vector<int64_t>> {
    auto st = db.prepare("SELECT id FROM creators WHERE id > ?1 ORDER BY id LIMIT ?2");
    st.bind(1, after_id).bind(2, int64_t{limit});
    std::vector<int64_t> ids;
    while (st.step()) ids.push_back(st.int64(0));
    if (st.rc() != SQLITE_DONE) return sqlite::to_error(st.rc(), db.errmsg());
    return ids;
  });
}

Async<Image> SqliteStore::add_image(NewImage n) {
  return write<Image>([n = std::move(n)](Db& db) -> Result<Image> {
    Image i;
    i.creator_id = n.creator_id;
    i.sha256 = n.sha256;
    i.content_type = n.content_type;
    i.width = n.width;
    i.height = n.height;
    i.size_bytes = n.size_bytes;
    i.source = n.source;
    i.source_url = n.source_url;
    i.created_at_ms = now_ms();
    auto st = db.prepare(
        "INSERT INTO images (creator_id, sha256, content_type, width, height, size_bytes, source, "
        "created_at, origin_key, job_id, source_url) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) "
        "ON CONFLICT (origin_key) WHERE origin_key IS NOT NULL DO NOTHING");
    st.bind(1, i.creator_id).bind(2, i.sha256).bind(3, i.content_type).bind(4, int64_t{i.width});
    st.bind(5, int64_t{i.height}).bind(6, i.size_bytes).bind(7, i.source).bind(8, i.created_at_ms);
    st.bind(9, n.origin_key);
    if (n.job_id) st.bind(10, *n.job_id);
    st.bind(11, n.source_url);
    int rc = st.run();
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) return not_found(fmt::format("creator {} does not exist", n.creator_id));
    if (rc != SQLITE_DONE) return sqlite::to_error(rc, db.errmsg());
    if (db.changes() == 0 && n.origin_key) {
      // Stored by an earlier run of the same step: answer with that image.
      auto old = db.prepare(
          "SELECT id, creator_id, sha256, content_type, width, height, size_bytes, source, created_at, source_url "
          "FROM images WHERE origin_key = ?1");
      old.bind(1, *n.origin_key);
      if (old.step()) return image_from_row(old);
      return sqlite::to_error(old.rc(), db.errmsg());
    }
    i.id = db.last_insert_rowid();
    return i;
  }, false);  // a creators list does not show images: the list cache stays
}

Async<Image> SqliteStore::get_image(int64_t id) {
  return read<Image>([id](Db& db) -> Result<Image> {
    auto st = db.prepare(
        "SELECT id, creator_id, sha256, content_type, width, height, size_bytes, source, created_at, source_url "
        "FROM images WHERE id = ?1");
    st.bind(1, id);
    if (st.step()) return image_from_row(st);
    if (st.rc() != SQLITE_DONE) return sqlite::to_error(st.rc(), db.errmsg());
    return not_found(fmt::format("image {} does not exist", id));
  });
}

Async<Unit> SqliteStore::delete_image(int64_t id) {
  return write<Unit>([id](Db& db) -> Result<Unit> {
    auto st = db.prepare("DELETE FROM images WHERE id = ?1");
    st.bind(1, id);
    int rc = st.run();
    if (rc != SQLITE_DONE) return sqlite::to_error(rc, db.errmsg());
    if (db.changes() == 0) return not_found(fmt::format("image {} does not exist", id));
    return Unit{};
  }, false);  // a creators list does not show images: the list cache stays
}

Async<Page<Image>> SqliteStore::list_images(int64_t creator_id, PageQuery q) {
  return read<Page<Image>>([creator_id, q = std::move(q)](Db& db) -> Result<Page<Image>> {
    {
      auto exists = db.prepare("SELECT 1 FROM creators WHERE id = ?1");
      exists.bind(1, creator_id);
      if (!exists.step()) return not_found(fmt::format("creator {} does not exist", creator_id));
    }
    auto st = db.prepare(
        "SELECT id, creator_id, sha256, content_type, width, height, size_bytes, source, created_at, source_url "
        "FROM images WHERE creator_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3");
    st.bind(1, creator_id).bind(2, q.before_id.value_or(INT64_MAX)).bind(3, int64_t{q.limit} + 1);
    Page<Image> page;
    while (st.step()) page.items.push_back(image_from_row(st));
    if (st.rc() != SQLITE_DONE) return sqlite::to_error(st.rc(), db.errmsg());
    page.trim_to(q.limit);
    return page;
  });
}

Async<std::vector<std::string>> SqliteStore::unreferenced_blobs(std::vector<std::string> candidates) {
  return read<std::vector<std::string>>(
      [c = std::move(candidates)](Db& db) -> Result<std::vector<std::string>> {
        std::vector<std::string> out;
        for (const auto& h : c) {
          auto st = db.prepare("SELECT 1 FROM images WHERE sha256 = ?1 LIMIT 1");
          st.bind(1, h);
          if (!st.step()) {
            if (st.rc() != SQLITE_DONE) return sqlite::to_error(st.rc(), db.errmsg());
            out.push_back(h);
          }
        }
        return out;
      });
}

Async<Unit> SqliteStore::ping() {
  return read<Unit>([](Db& db) -> Result<Unit> {
    auto st = db.prepare("SELECT 1");
    if (!st.step()) return sqlite::to_error(st.rc(), db.errmsg());
    return Unit{};
  });
}

}  // namespace creatord
