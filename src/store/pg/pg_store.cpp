#include "store/pg/pg_store.hpp"

#include <libpq-fe.h>

#include <future>
#include <set>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>

#include "core/clock.hpp"
#include "core/log.hpp"
#include "store/pg/pg_migrations.hpp"

namespace creatord {

namespace asio = boost::asio;
namespace json = boost::json;
using pg::Connection;
using pg::Param;
using pg::Rows;

namespace {

Param P(int64_t v) { return std::to_string(v); }
Param P(int v) { return std::to_string(v); }
Param P(double v) { return fmt::format("{}", v); }
Param P(bool v) { return std::string(v ? "true" : "false"); }
Param P(const std::string& v) { return v; }
Param P(const char* v) { return std::string(v); }
Param P(const std::optional<std::string>& v) { return v; }
Param P(const std::optional<int64_t>& v) { return v ? Param(std::to_string(*v)) : std::nullopt; }

// Not a coroutine: the statement text and parameters are built here, so no temporary spans
// the caller's co_await (GCC 12).
template <class... A>
asio::awaitable<Result<Rows>> q(Connection& c, const char* sql, const A&... args) {
  std::vector<Param> params{P(args)...};
  return c.query(std::string(sql), std::move(params));
}
asio::awaitable<Result<Rows>> x(Connection& c, const char* sql) { return c.exec(std::string(sql)); }

// A PostgreSQL array literal of text values (NULL for nullopt), elements quoted and escaped.
std::string text_array(const std::vector<std::optional<std::string>>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out.push_back(',');
    if (!values[i]) {
      out += "NULL";
      continue;
    }
    out.push_back('"');
    for (char ch : *values[i]) {
      if (ch == '"' || ch == '\\') out.push_back('\\');
      out.push_back(ch);
    }
    out.push_back('"');
  }
  out.push_back('}');
  return out;
}

json::value parse_json_text(std::string_view text) {
  if (text.empty()) return nullptr;
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  return ec ? json::value(nullptr) : v;
}

std::string tags_to_text(const std::vector<std::string>& tags) {
  json::array a;
  for (const auto& t : tags) a.emplace_back(t);
  return json::serialize(a);
}

Error not_found(std::string what) { return Error::make(ErrorCode::not_found, std::move(what)); }

#define CREATOR_COLS "id, name, handle, email, bio, tags, created_at, updated_at"
#define IMAGE_COLS "id, creator_id, sha256, content_type, width, height, size_bytes, source, created_at"
#define JOB_COLS                                                                                      \
  "id, kind, queue, payload, state, priority, run_at, attempt, max_attempts, timeout_ms, progress, " \
  "result, last_error, idempotency_key, creator_id, cancel_requested, created_at, updated_at, started_at, finished_at"
#define EMAIL_COLS                                                                                 \
  "id, state, from_addr, recipients, reply_to, subject, text_body, html_body, message_id, "       \
  "idempotency_key, job_id, attempts, last_error, smtp_reply, created_at, updated_at, sent_at"

Creator creator_at(const Rows& r, int i) {
  Creator c;
  c.id = r.int64(i, 0);
  c.name = r.text(i, 1);
  c.handle = r.text(i, 2);
  if (!r.is_null(i, 3)) c.email = std::string(r.text(i, 3));
  c.bio = r.text(i, 4);
  auto tags = parse_json_text(r.text(i, 5));
  if (tags.is_array())
    for (const auto& t : tags.as_array())
      if (t.is_string()) c.tags.emplace_back(t.as_string());
  c.created_at_ms = r.int64(i, 6);
  c.updated_at_ms = r.int64(i, 7);
  return c;
}

Image image_at(const Rows& r, int i) {
  Image m;
  m.id = r.int64(i, 0);
  m.creator_id = r.int64(i, 1);
  m.sha256 = r.text(i, 2);
  m.content_type = r.text(i, 3);
  m.width = static_cast<int>(r.int64(i, 4));
  m.height = static_cast<int>(r.int64(i, 5));
  m.size_bytes = r.int64(i, 6);
  m.source = r.text(i, 7);
  m.created_at_ms = r.int64(i, 8);
  return m;
}

Job job_at(const Rows& r, int i) {
  Job j;
  j.id = r.int64(i, 0);
  j.kind = r.text(i, 1);
  j.queue = r.text(i, 2);
  j.payload = parse_json_text(r.text(i, 3));
  j.state = parse_job_state(r.text(i, 4)).value_or(JobState::queued);
  j.priority = static_cast<int>(r.int64(i, 5));
  j.run_at_ms = r.int64(i, 6);
  j.attempt = static_cast<int>(r.int64(i, 7));
  j.max_attempts = static_cast<int>(r.int64(i, 8));
  j.timeout_ms = r.int64(i, 9);
  j.progress = r.real(i, 10);
  j.result = r.is_null(i, 11) ? json::value(nullptr) : parse_json_text(r.text(i, 11));
  j.last_error = r.text(i, 12);
  if (!r.is_null(i, 13)) j.idempotency_key = std::string(r.text(i, 13));
  if (!r.is_null(i, 14)) j.creator_id = r.int64(i, 14);
  j.cancel_requested = r.text(i, 15) == "t";
  j.created_at_ms = r.int64(i, 16);
  j.updated_at_ms = r.int64(i, 17);
  j.started_at_ms = r.is_null(i, 18) ? 0 : r.int64(i, 18);
  j.finished_at_ms = r.is_null(i, 19) ? 0 : r.int64(i, 19);
  return j;
}

Email email_at(const Rows& r, int i) {
  Email e;
  e.id = r.int64(i, 0);
  e.state = r.text(i, 1);
  e.from = r.text(i, 2);
  auto rc = parse_json_text(r.text(i, 3));
  auto list = [&](const char* k) {
    std::vector<std::string> out;
    if (rc.is_object() && rc.as_object().contains(k))
      for (const auto& v : rc.as_object().at(k).as_array()) out.emplace_back(v.as_string());
    return out;
  };
  e.to = list("to");
  e.cc = list("cc");
  e.bcc = list("bcc");
  if (!r.is_null(i, 4)) e.reply_to = std::string(r.text(i, 4));
  e.subject = r.text(i, 5);
  if (!r.is_null(i, 6)) e.text = std::string(r.text(i, 6));
  if (!r.is_null(i, 7)) e.html = std::string(r.text(i, 7));
  e.message_id = r.text(i, 8);
  if (!r.is_null(i, 9)) e.idempotency_key = std::string(r.text(i, 9));
  if (!r.is_null(i, 10)) e.job_id = r.int64(i, 10);
  e.attempts = static_cast<int>(r.int64(i, 11));
  e.last_error = r.text(i, 12);
  e.smtp_reply = r.text(i, 13);
  e.created_at_ms = r.int64(i, 14);
  e.updated_at_ms = r.int64(i, 15);
  e.sent_at_ms = r.is_null(i, 16) ? 0 : r.int64(i, 16);
  return e;
}

// An event, and a NOTIFY so other instances' SSE clients and ?wait= requests wake.
asio::awaitable<Status> add_event(Connection& c, int64_t job_id, const char* type, const json::object& data, int64_t now) {
  std::string text = json::serialize(data);
  auto r = co_await q(c,
                      "INSERT INTO job_events (job_id, seq, type, data, created_at) VALUES "
                      "($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM job_events WHERE job_id = $1), $2, $3, $4)",
                      job_id, type, text, now);
  if (!r) co_return r.take_error();
  auto n = co_await q(c, "SELECT pg_notify('creatord_job', $1)", std::to_string(job_id));
  if (!n) co_return n.take_error();
  co_return ok_status();
}

asio::awaitable<Result<Job>> load_job(Connection& c, int64_t id, bool with_steps, bool lock = false) {
  // Not a ?: with co_await in its arms: GCC 12 miscompiles that.
  Result<Rows> r = Error{};
  if (lock) r = co_await q(c, "SELECT " JOB_COLS " FROM jobs WHERE id = $1 FOR UPDATE", id);
  else r = co_await q(c, "SELECT " JOB_COLS " FROM jobs WHERE id = $1", id);
  if (!r) co_return r.take_error();
  if (r->size() == 0) co_return not_found(fmt::format("job {} does not exist", id));
  Job j = job_at(r.value(), 0);
  if (with_steps) {
    auto s = co_await q(c,
                        "SELECT name, state, attempt, started_at, finished_at, output, error, log FROM job_steps "
                        "WHERE job_id = $1 ORDER BY position, name",
                        id);
    if (!s) co_return s.take_error();
    for (int i = 0; i < s->size(); ++i) {
      StepRecord st;
      st.name = s->text(i, 0);
      st.state = s->text(i, 1);
      st.attempt = static_cast<int>(s->int64(i, 2));
      st.started_at_ms = s->is_null(i, 3) ? 0 : s->int64(i, 3);
      st.finished_at_ms = s->is_null(i, 4) ? 0 : s->int64(i, 4);
      st.output = s->is_null(i, 5) ? json::value(nullptr) : parse_json_text(s->text(i, 5));
      st.error = s->text(i, 6);
      st.log = s->text(i, 7);
      j.steps.push_back(std::move(st));
    }
  }
  co_return j;
}

// The fence, holding the job's row lock until the transaction ends.
asio::awaitable<bool> fenced(Connection& c, int64_t id, int attempt, const std::string& owner) {
  auto r = co_await q(c,
                      "SELECT 1 FROM jobs WHERE id = $1 AND attempt = $2 AND lease_owner = $3 AND state = 'running' "
                      "FOR UPDATE",
                      id, attempt, owner);
  co_return r && r->size() == 1;
}

asio::awaitable<Result<Job>> insert_job(Connection& c, const NewJob& n, int64_t now, bool* created) {
  if (n.idempotency_key) {
    auto r = co_await q(c, "SELECT id FROM jobs WHERE kind = $1 AND idempotency_key = $2", n.kind, n.idempotency_key);
    if (!r) co_return r.take_error();
    if (r->size() == 1) {
      *created = false;
      co_return co_await load_job(c, r->int64(0, 0), true);
    }
  }
  std::string payload = json::serialize(n.payload);
  int64_t run_at = n.run_at_ms > 0 ? n.run_at_ms : now;
  auto r = co_await q(c,
                      "INSERT INTO jobs (kind, queue, payload, state, priority, run_at, max_attempts, timeout_ms, "
                      "idempotency_key, creator_id, created_at, updated_at) "
                      "VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7, $8, $9, $10, $10) "
                      "ON CONFLICT (kind, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING id",
                      n.kind, n.queue, payload, n.priority, run_at, n.max_attempts, n.timeout_ms, n.idempotency_key,
                      n.creator_id, now);
  if (!r) co_return r.take_error();
  if (r->size() == 0) co_return Error::make(ErrorCode::unavailable, "a job with this idempotency key is being created; retry");
  int64_t id = r->int64(0, 0);
  for (size_t i = 0; i < n.steps.size(); ++i) {
    auto s = co_await q(c, "INSERT INTO job_steps (job_id, position, name) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", id,
                        static_cast<int64_t>(i), n.steps[i]);
    if (!s) co_return s.take_error();
  }
  auto wake = co_await q(c, "SELECT pg_notify('creatord_queue', $1)", n.queue);
  if (!wake) co_return wake.take_error();
  *created = true;
  co_return Job{.id = id};
}

asio::awaitable<Result<Email>> load_email(Connection& c, int64_t id) {
  auto r = co_await q(c, "SELECT " EMAIL_COLS " FROM emails WHERE id = $1", id);
  if (!r) co_return r.take_error();
  if (r->size() == 0) co_return not_found(fmt::format("email {} does not exist", id));
  co_return email_at(r.value(), 0);
}

}  // namespace

// ---- plumbing ------------------------------------------------------------------------------

PgStore::PgStore(PgOptions options) : options_(std::move(options)) {}

Result<std::unique_ptr<PgStore>> PgStore::open(PgOptions options) {
  std::unique_ptr<PgStore> s(new PgStore(std::move(options)));
  if (auto m = pg::migrate_blocking(s->options_.url); !m) return m.take_error();
  pg::Pool::Options po;
  po.conninfo = s->options_.url;
  po.max_connections = s->options_.max_connections;
  po.acquire_timeout = s->options_.acquire_timeout;
  po.init_sql = "SET search_path TO creatord";
  s->pool_ = std::make_unique<pg::Pool>(po, s->ioc_.get_executor());
  s->thread_ = std::thread([p = s.get()] {
    pthread_setname_np(pthread_self(), "postgres");
    auto guard = asio::make_work_guard(p->ioc_);
    p->ioc_.run();
  });
  return s;
}

PgStore::~PgStore() { close(); }

void PgStore::close() {
  if (stopping_.exchange(true)) return;
  // Connections close on the loop's thread; then the loop stops.
  std::promise<void> closed;
  auto done = closed.get_future();
  asio::post(ioc_, [this, &closed] {
    pool_.reset();
    closed.set_value();
  });
  done.wait_for(std::chrono::seconds(5));
  ioc_.stop();
  if (thread_.joinable()) thread_.join();
}

template <class T, class F>
Async<T> PgStore::with_conn(F fn) {
  auto lease = co_await pool_->acquire();
  if (!lease) co_return lease.take_error();
  co_return co_await fn(*lease.value());
}

template <class T, class F>
Async<T> PgStore::in_tx(F fn) {
  auto lease = co_await pool_->acquire();
  if (!lease) co_return lease.take_error();
  Connection& c = *lease.value();
  if (auto b = co_await x(c, "BEGIN"); !b) co_return b.take_error();
  Result<T> r = co_await fn(c);
  if (r.ok()) {
    if (auto commit = co_await x(c, "COMMIT"); !commit) co_return commit.take_error();
  } else {
    (void)co_await x(c, "ROLLBACK");
  }
  co_return r;
}

template <class T, class F>
Async<T> PgStore::data_tx(F fn) {
  auto work = [fn = std::move(fn)](Connection& c) -> asio::awaitable<Result<T>> {
    Result<T> r = co_await fn(c);
    if (!r) co_return r;
    auto n = co_await x(c, "SELECT pg_notify('creatord_data', '')");
    if (!n) co_return n.take_error();
    co_return r;
  };
  auto r = co_await in_tx<T>(std::move(work));
  if (r) data_version_.fetch_add(1);  // before the caller answers: read-your-writes
  co_return r;
}

void PgStore::listen(EventHub& hub) {
  asio::co_spawn(ioc_, listen_loop(hub), asio::detached);
}

asio::awaitable<void> PgStore::listen_loop(EventHub& hub) {
  asio::steady_timer backoff(ioc_);
  while (!stopping_) {
    auto c = co_await Connection::connect(options_.url, ioc_.get_executor(), std::chrono::seconds(5));
    if (c) {
      auto l = co_await x(*c.value(), "LISTEN creatord_job; LISTEN creatord_queue; LISTEN creatord_data");
      if (l) {
        data_version_.fetch_add(1);  // anything may have changed while we were not listening
        listening_ = true;
      }
      while (l && !stopping_ && c.value()->healthy()) {
        auto notes = co_await c.value()->notifications(std::chrono::seconds(1));
        if (!notes) break;
        for (const auto& [channel, payload] : notes.value()) {
          if (channel == "creatord_data") {
            data_version_.fetch_add(1);
            continue;
          }
          if (channel != "creatord_job") {
            hub.notify(EventHub::queue_topic(payload));
            continue;
          }
          for (size_t pos = 0; pos < payload.size();) {  // "12" or "12,13,14"
            size_t comma = payload.find(',', pos);
            hub.notify(EventHub::job_topic(std::strtoll(payload.c_str() + pos, nullptr, 10)));
            if (comma == std::string::npos) break;
            pos = comma + 1;
          }
        }
      }
    }
    listening_ = false;
    if (stopping_) break;
    log::warn("lost the PostgreSQL notification connection; reconnecting");
    backoff.expires_after(std::chrono::seconds(1));
    co_await backoff.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

// ---- creators and images -----------------------------------------------------------------------

Async<Creator> PgStore::create_creator(CreatorFields f) {
  return data_tx<Creator>([f = std::move(f)](Connection& c) -> asio::awaitable<Result<Creator>> {
    Creator cr;
    apply_fields(cr, f);
    cr.created_at_ms = cr.updated_at_ms = now_ms();
    std::string tags = tags_to_text(cr.tags);
    auto r = co_await q(c,
                        "INSERT INTO creators (name, handle, email, bio, tags, created_at, updated_at) "
                        "VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
                        cr.name, cr.handle, cr.email, cr.bio, tags, cr.created_at_ms);
    if (!r) {
      if (r.error().code == ErrorCode::conflict)
        co_return Error::make(ErrorCode::conflict, fmt::format("handle '{}' is taken", cr.handle), "handle");
      co_return r.take_error();
    }
    cr.id = r->int64(0, 0);
    co_return cr;
  });
}

Async<Creator> PgStore::get_creator(int64_t id) {
  return with_conn<Creator>([id](Connection& c) -> asio::awaitable<Result<Creator>> {
    auto r = co_await q(c, "SELECT " CREATOR_COLS " FROM creators WHERE id = $1", id);
    if (!r) co_return r.take_error();
    if (r->size() == 0) co_return not_found(fmt::format("creator {} does not exist", id));
    co_return creator_at(r.value(), 0);
  });
}

Async<Creator> PgStore::update_creator(int64_t id, CreatorFields f) {
  return data_tx<Creator>([id, f = std::move(f)](Connection& c) -> asio::awaitable<Result<Creator>> {
    auto r = co_await q(c, "SELECT " CREATOR_COLS " FROM creators WHERE id = $1 FOR UPDATE", id);
    if (!r) co_return r.take_error();
    if (r->size() == 0) co_return not_found(fmt::format("creator {} does not exist", id));
    Creator cr = creator_at(r.value(), 0);
    apply_fields(cr, f);
    cr.updated_at_ms = std::max(now_ms(), cr.updated_at_ms);
    std::string tags = tags_to_text(cr.tags);
    auto u = co_await q(c,
                        "UPDATE creators SET name = $2, handle = $3, email = $4, bio = $5, tags = $6, updated_at = $7 "
                        "WHERE id = $1",
                        id, cr.name, cr.handle, cr.email, cr.bio, tags, cr.updated_at_ms);
    if (!u) {
      if (u.error().code == ErrorCode::conflict)
        co_return Error::make(ErrorCode::conflict, fmt::format("handle '{}' is taken", cr.handle), "handle");
      co_return u.take_error();
    }
    co_return cr;
  });
}

Async<Unit> PgStore::delete_creator(int64_t id) {
  return data_tx<Unit>([id](Connection& c) -> asio::awaitable<Result<Unit>> {
    auto r = co_await q(c, "DELETE FROM creators WHERE id = $1", id);
    if (!r) co_return r.take_error();
    if (r->affected() == 0) co_return not_found(fmt::format("creator {} does not exist", id));
    co_return Unit{};
  });
}

Async<Page<Creator>> PgStore::list_creators(PageQuery pq) {
  return with_conn<Page<Creator>>([pq = std::move(pq)](Connection& c) -> asio::awaitable<Result<Page<Creator>>> {
    int64_t before = pq.before_id.value_or(INT64_MAX);
    int64_t limit = pq.limit + 1;
    Result<Rows> r = Error{};
    if (pq.q.empty()) {
      r = co_await q(c, "SELECT " CREATOR_COLS " FROM creators WHERE id < $1 ORDER BY id DESC LIMIT $2", before, limit);
    } else {
      std::string pattern = "%";
      for (char ch : pq.q) {
        if (ch == '%' || ch == '_' || ch == '\\') pattern.push_back('\\');
        pattern.push_back(ch);
      }
      pattern.push_back('%');
      r = co_await q(c,
                     "SELECT " CREATOR_COLS " FROM creators WHERE id < $1 AND (name ILIKE $3 OR handle ILIKE $3) "
                     "ORDER BY id DESC LIMIT $2",
                     before, limit, pattern);
    }
    if (!r) co_return r.take_error();
    Page<Creator> page;
    for (int i = 0; i < r->size(); ++i) page.items.push_back(creator_at(r.value(), i));
    page.trim_to(pq.limit);
    co_return page;
  });
}

Async<int64_t> PgStore::count_creators() {
  return with_conn<int64_t>([](Connection& c) -> asio::awaitable<Result<int64_t>> {
    auto r = co_await q(c, "SELECT count(*) FROM creators");
    if (!r) co_return r.take_error();
    co_return r->int64(0, 0);
  });
}

Async<Image> PgStore::add_image(NewImage n) {
  return data_tx<Image>([n = std::move(n)](Connection& c) -> asio::awaitable<Result<Image>> {
    int64_t now = now_ms();
    auto r = co_await q(c,
                        "INSERT INTO images (creator_id, sha256, content_type, width, height, size_bytes, source, "
                        "created_at, origin_key, job_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
                        "ON CONFLICT (origin_key) DO NOTHING RETURNING " IMAGE_COLS,
                        n.creator_id, n.sha256, n.content_type, n.width, n.height, n.size_bytes, n.source, now,
                        n.origin_key, n.job_id);
    if (!r) {
      if (r.error().code == ErrorCode::not_found)
        co_return not_found(fmt::format("creator {} does not exist", n.creator_id));
      co_return r.take_error();
    }
    if (r->size() == 1) co_return image_at(r.value(), 0);
    auto old = co_await q(c, "SELECT " IMAGE_COLS " FROM images WHERE origin_key = $1", n.origin_key);
    if (!old) co_return old.take_error();
    if (old->size() == 0) co_return Error::make(ErrorCode::unavailable, "image is being stored; retry");
    co_return image_at(old.value(), 0);
  });
}

Async<Image> PgStore::get_image(int64_t id) {
  return with_conn<Image>([id](Connection& c) -> asio::awaitable<Result<Image>> {
    auto r = co_await q(c, "SELECT " IMAGE_COLS " FROM images WHERE id = $1", id);
    if (!r) co_return r.take_error();
    if (r->size() == 0) co_return not_found(fmt::format("image {} does not exist", id));
    co_return image_at(r.value(), 0);
  });
}

Async<Unit> PgStore::delete_image(int64_t id) {
  return data_tx<Unit>([id](Connection& c) -> asio::awaitable<Result<Unit>> {
    auto r = co_await q(c, "DELETE FROM images WHERE id = $1", id);
    if (!r) co_return r.take_error();
    if (r->affected() == 0) co_return not_found(fmt::format("image {} does not exist", id));
    co_return Unit{};
  });
}

Async<Page<Image>> PgStore::list_images(int64_t creator_id, PageQuery pq) {
  return with_conn<Page<Image>>([creator_id, pq = std::move(pq)](Connection& c) -> asio::awaitable<Result<Page<Image>>> {
    auto exists = co_await q(c, "SELECT 1 FROM creators WHERE id = $1", creator_id);
    if (!exists) co_return exists.take_error();
    if (exists->size() == 0) co_return not_found(fmt::format("creator {} does not exist", creator_id));
    int64_t before = pq.before_id.value_or(INT64_MAX);
    int64_t limit = pq.limit + 1;
    auto r = co_await q(c,
                        "SELECT " IMAGE_COLS " FROM images WHERE creator_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
                        creator_id, before, limit);
    if (!r) co_return r.take_error();
    Page<Image> page;
    for (int i = 0; i < r->size(); ++i) page.items.push_back(image_at(r.value(), i));
    page.trim_to(pq.limit);
    co_return page;
  });
}

Async<std::vector<std::string>> PgStore::unreferenced_blobs(std::vector<std::string> candidates) {
  return with_conn<std::vector<std::string>>(
      [cands = std::move(candidates)](Connection& c) -> asio::awaitable<Result<std::vector<std::string>>> {
        std::vector<std::string> out;
        for (const auto& h : cands) {
          auto r = co_await q(c, "SELECT 1 FROM images WHERE sha256 = $1 LIMIT 1", h);
          if (!r) co_return r.take_error();
          if (r->size() == 0) out.push_back(h);
        }
        co_return out;
      });
}

Async<Unit> PgStore::ping() {
  return with_conn<Unit>([](Connection& c) -> asio::awaitable<Result<Unit>> {
    auto r = co_await x(c, "SELECT 1");
    if (!r) co_return r.take_error();
    co_return Unit{};
  });
}

// ---- jobs ------------------------------------------------------------------------------------

Async<EnqueueResult> PgStore::enqueue(NewJob n) {
  return in_tx<EnqueueResult>([n = std::move(n)](Connection& c) -> asio::awaitable<Result<EnqueueResult>> {
    int64_t now = now_ms();
    bool created = false;
    auto r = co_await insert_job(c, n, now, &created);
    if (!r) co_return r.take_error();
    if (!created) co_return EnqueueResult{std::move(r.value()), false};
    json::object ev{{"state", "queued"}};
    if (auto e = co_await add_event(c, r->id, "job.queued", ev, now); !e) co_return e.take_error();
    auto j = co_await load_job(c, r->id, true);
    if (!j) co_return j.take_error();
    co_return EnqueueResult{std::move(j.value()), true};
  });
}

Async<int64_t> PgStore::enqueue_many(std::vector<NewJob> jobs) {
  return in_tx<int64_t>([jobs = std::move(jobs)](Connection& c) -> asio::awaitable<Result<int64_t>> {
    int64_t now = now_ms(), count = 0;
    for (const auto& n : jobs) {
      bool created = false;
      auto r = co_await insert_job(c, n, now, &created);
      if (!r) co_return r.take_error();
      count += created;
    }
    co_return count;
  });
}

Async<Job> PgStore::get_job(int64_t id) {
  return with_conn<Job>([id](Connection& c) -> asio::awaitable<Result<Job>> { co_return co_await load_job(c, id, true); });
}

Async<Page<Job>> PgStore::list_jobs(JobFilter f, PageQuery pq) {
  return with_conn<Page<Job>>([f = std::move(f), pq = std::move(pq)](Connection& c) -> asio::awaitable<Result<Page<Job>>> {
    int64_t before = pq.before_id.value_or(INT64_MAX);
    int64_t limit = pq.limit + 1;
    std::optional<std::string> state;
    if (f.state) state = std::string(to_string(*f.state));
    auto r = co_await q(c,
                        "SELECT " JOB_COLS " FROM jobs WHERE id < $1 AND ($2::text IS NULL OR state = $2) "
                        "AND ($3::text IS NULL OR kind = $3) AND ($4::bigint IS NULL OR creator_id = $4) "
                        "ORDER BY id DESC LIMIT $5",
                        before, state, f.kind, f.creator_id, limit);
    if (!r) co_return r.take_error();
    Page<Job> page;
    for (int i = 0; i < r->size(); ++i) page.items.push_back(job_at(r.value(), i));
    page.trim_to(pq.limit);
    co_return page;
  });
}

Async<std::vector<Job>> PgStore::claim(std::string queue, std::string owner, int n, int64_t lease_ms) {
  return in_tx<std::vector<Job>>([queue = std::move(queue), owner = std::move(owner), n,
                                  lease_ms](Connection& c) -> asio::awaitable<Result<std::vector<Job>>> {
    int64_t now = now_ms();
    int64_t until = now + lease_ms;
    auto r = co_await q(c,
                        "UPDATE jobs SET state = 'running', attempt = attempt + 1, lease_owner = $2, lease_expires_at = $3, "
                        "started_at = COALESCE(started_at, $4), updated_at = $4 "
                        "WHERE id IN (SELECT id FROM jobs WHERE queue = $1 AND state IN ('queued', 'retrying') "
                        "AND run_at <= $4 ORDER BY priority DESC, run_at, id LIMIT $5 FOR UPDATE SKIP LOCKED) "
                        "RETURNING " JOB_COLS,
                        queue, owner, until, now, n);
    if (!r) co_return r.take_error();
    std::vector<Job> out;
    for (int i = 0; i < r->size(); ++i) out.push_back(job_at(r.value(), i));
    if (out.empty()) co_return out;
    std::sort(out.begin(), out.end(), [](const Job& a, const Job& b) {
      return a.priority != b.priority ? a.priority > b.priority : a.id < b.id;
    });
    // One statement for all the batch's events, one notification for all its jobs.
    std::string ids = "{", list;
    for (size_t i = 0; i < out.size(); ++i) {
      ids += (i ? "," : "") + std::to_string(out[i].id);
      list += (i ? "," : "") + std::to_string(out[i].id);
    }
    ids += "}";
    auto ev = co_await q(c,
                         "INSERT INTO job_events (job_id, seq, type, data, created_at) "
                         "SELECT j.id, (SELECT COALESCE(MAX(e.seq), 0) + 1 FROM job_events e WHERE e.job_id = j.id), "
                         "'job.started', json_build_object('attempt', j.attempt)::text, $2 "
                         "FROM jobs j WHERE j.id = ANY($1::bigint[])",
                         ids, now);
    if (!ev) co_return ev.take_error();
    auto n = co_await q(c, "SELECT pg_notify('creatord_job', $1)", list);
    if (!n) co_return n.take_error();
    co_return out;
  });
}

Async<std::vector<int64_t>> PgStore::heartbeat(std::string owner, int64_t lease_ms) {
  return in_tx<std::vector<int64_t>>([owner = std::move(owner), lease_ms](Connection& c)
                                         -> asio::awaitable<Result<std::vector<int64_t>>> {
    int64_t until = now_ms() + lease_ms;
    auto r = co_await q(c,
                        "UPDATE jobs SET lease_expires_at = $2 WHERE lease_owner = $1 AND state = 'running' "
                        "RETURNING id, cancel_requested",
                        owner, until);
    if (!r) co_return r.take_error();
    std::vector<int64_t> ids;
    for (int i = 0; i < r->size(); ++i)
      if (r->text(i, 1) == "t") ids.push_back(r->int64(i, 0));
    co_return ids;
  });
}

Async<bool> PgStore::update_step(std::string owner, StepUpdate u) {
  return in_tx<bool>([owner = std::move(owner), u = std::move(u)](Connection& c) -> asio::awaitable<Result<bool>> {
    if (!co_await fenced(c, u.job_id, u.attempt, owner)) co_return false;
    int64_t now = now_ms();
    json::object ev{{"step", u.step}, {"attempt", u.attempt}};
    const char* type = "step.started";
    if (u.kind == StepUpdate::Kind::started) {
      auto r = co_await q(c,
                          "INSERT INTO job_steps (job_id, position, name, state, attempt, runs, started_at) "
                          "VALUES ($1, 1000, $2, 'running', $3, 1, $4) ON CONFLICT (job_id, name) DO UPDATE SET "
                          "state = 'running', attempt = $3, runs = job_steps.runs + 1, started_at = $4, "
                          "finished_at = NULL, error = NULL",
                          u.job_id, u.step, u.attempt, now);
      if (!r) co_return r.take_error();
    } else if (u.kind == StepUpdate::Kind::progress) {
      type = "step.progress";
      ev["progress"] = u.progress;
      if (!u.message.empty()) ev["message"] = u.message;
    } else {
      type = "step.finished";
      bool ok = u.kind == StepUpdate::Kind::succeeded;
      std::optional<std::string> output, error, log;
      if (ok) output = json::serialize(u.output);
      else error = u.error;
      if (!u.log.empty()) log = u.log;
      const char* state = ok ? "succeeded" : "failed";
      auto r = co_await q(c,
                          "UPDATE job_steps SET state = $3, finished_at = $4, output = $5, error = $6, log = $7 "
                          "WHERE job_id = $1 AND name = $2",
                          u.job_id, u.step, state, now, output, error, log);
      if (!r) co_return r.take_error();
      ev["state"] = state;
      if (!ok) ev["error"] = u.error;
    }
    if (auto e = co_await add_event(c, u.job_id, type, ev, now); !e) co_return e.take_error();
    if (u.job_progress >= 0) {
      auto r = co_await q(c, "UPDATE jobs SET progress = $2, updated_at = $3 WHERE id = $1", u.job_id, u.job_progress, now);
      if (!r) co_return r.take_error();
    }
    co_return true;
  });
}

Async<std::vector<bool>> PgStore::finish(std::string owner, std::vector<JobFinish> finishes) {
  return in_tx<std::vector<bool>>([owner = std::move(owner), finishes = std::move(finishes)](Connection& c)
                                      -> asio::awaitable<Result<std::vector<bool>>> {
    int64_t now = now_ms();
    std::vector<bool> out(finishes.size(), false);
    using K = JobFinish::Kind;
    // Ends: one set-based UPDATE (fenced in its WHERE), one INSERT of their events, one NOTIFY.
    std::vector<std::optional<std::string>> ids, attempts, states, results, errors, run_ats, finished, types, datas;
    std::vector<size_t> index;
    for (size_t i = 0; i < finishes.size(); ++i) {
      const auto& f = finishes[i];
      if (f.kind == K::released) continue;
      bool retry = f.kind == K::failed && f.retry_at_ms > 0;
      const char* state = f.kind == K::succeeded ? "succeeded" : f.kind == K::cancelled ? "cancelled" : retry ? "retrying" : "failed";
      ids.push_back(std::to_string(f.job_id));
      attempts.push_back(std::to_string(f.attempt));
      states.push_back(std::string(state));
      results.push_back(f.kind == K::succeeded ? std::optional<std::string>(json::serialize(f.result)) : std::nullopt);
      errors.push_back(f.error.empty() ? std::nullopt : std::optional<std::string>(f.error));
      run_ats.push_back(retry ? std::optional<std::string>(std::to_string(f.retry_at_ms)) : std::nullopt);
      finished.push_back(retry ? std::nullopt : std::optional<std::string>(std::to_string(now)));
      json::object ev{{"state", state}, {"attempt", f.attempt}};
      if (!f.error.empty()) ev["error"] = f.error;
      if (retry) ev["run_at"] = format_rfc3339(f.retry_at_ms);
      if (f.kind == K::succeeded) ev["result"] = f.result;
      types.push_back(std::string(retry ? "job.retrying" : "job.finished"));
      datas.push_back(json::serialize(ev));
      index.push_back(i);
    }
    if (!ids.empty()) {
      std::string a_ids = text_array(ids), a_att = text_array(attempts), a_st = text_array(states),
                  a_res = text_array(results), a_err = text_array(errors), a_run = text_array(run_ats),
                  a_fin = text_array(finished);
      auto r = co_await q(c,
                          "UPDATE jobs j SET state = f.state, result = f.result, last_error = f.error, "
                          "run_at = COALESCE(f.run_at, j.run_at), finished_at = f.finished_at, "
                          "progress = CASE WHEN f.state = 'succeeded' THEN 1.0 ELSE j.progress END, "
                          "lease_owner = NULL, lease_expires_at = NULL, updated_at = $8 "
                          "FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[]) "
                          "AS f(id, attempt, state, result, error, run_at, finished_at) "
                          "WHERE j.id = f.id AND j.attempt = f.attempt AND j.lease_owner = $9 AND j.state = 'running' "
                          "RETURNING j.id, j.state, j.queue",
                          a_ids, a_att, a_st, a_res, a_err, a_run, a_fin, now, owner);
      if (!r) co_return r.take_error();
      std::set<int64_t> done;
      std::set<std::string> retry_queues;
      std::vector<std::optional<std::string>> ev_ids, ev_types, ev_datas, unfinished;
      for (int i = 0; i < r->size(); ++i) {
        done.insert(r->int64(i, 0));
        if (r->text(i, 1) == "retrying") retry_queues.insert(std::string(r->text(i, 2)));
        if (r->text(i, 1) != "succeeded") unfinished.push_back(std::to_string(r->int64(i, 0)));
      }
      std::string notify_list;
      for (size_t k = 0; k < ids.size(); ++k) {
        int64_t id = std::strtoll(ids[k]->c_str(), nullptr, 10);
        if (!done.count(id)) continue;
        out[index[k]] = true;
        ev_ids.push_back(ids[k]);
        ev_types.push_back(types[k]);
        ev_datas.push_back(datas[k]);
        notify_list += (notify_list.empty() ? "" : ",") + *ids[k];
      }
      if (!unfinished.empty()) {
        std::string a_unf = text_array(unfinished);
        auto st = co_await q(c, "UPDATE job_steps SET state = 'pending' WHERE job_id = ANY($1::bigint[]) AND state = 'running'",
                             a_unf);
        if (!st) co_return st.take_error();
      }
      if (!ev_ids.empty()) {
        std::string e_ids = text_array(ev_ids), e_types = text_array(ev_types), e_datas = text_array(ev_datas);
        auto ev = co_await q(c,
                             "INSERT INTO job_events (job_id, seq, type, data, created_at) "
                             "SELECT e.id, (SELECT COALESCE(MAX(x.seq), 0) + 1 FROM job_events x WHERE x.job_id = e.id), "
                             "e.type, e.data, $4 FROM unnest($1::bigint[], $2::text[], $3::text[]) AS e(id, type, data)",
                             e_ids, e_types, e_datas, now);
        if (!ev) co_return ev.take_error();
        auto n = co_await q(c, "SELECT pg_notify('creatord_job', $1)", notify_list);
        if (!n) co_return n.take_error();
      }
      for (const auto& queue : retry_queues) {
        auto w = co_await q(c, "SELECT pg_notify('creatord_queue', $1)", queue);
        if (!w) co_return w.take_error();
      }
    }
    // Hand-backs at shutdown: rare, one by one.
    for (size_t i = 0; i < finishes.size(); ++i) {
      const auto& f = finishes[i];
      if (f.kind != K::released) continue;
      if (!co_await fenced(c, f.job_id, f.attempt, owner)) continue;
      auto r = co_await q(c,
                          "UPDATE jobs SET state = 'queued', attempt = attempt - 1, lease_owner = NULL, "
                          "lease_expires_at = NULL, run_at = $2, updated_at = $2 WHERE id = $1",
                          f.job_id, now);
      if (!r) co_return r.take_error();
      auto st = co_await q(c, "UPDATE job_steps SET state = 'pending' WHERE job_id = $1 AND state = 'running'", f.job_id);
      if (!st) co_return st.take_error();
      json::object ev{{"reason", "shutdown"}};
      if (auto e = co_await add_event(c, f.job_id, "job.released", ev, now); !e) co_return e.take_error();
      auto w = co_await q(c, "SELECT pg_notify('creatord_queue', queue) FROM jobs WHERE id = $1", f.job_id);
      if (!w) co_return w.take_error();
      out[i] = true;
    }
    co_return out;
  });
}

Async<Job> PgStore::request_cancel(int64_t id) {
  return in_tx<Job>([id](Connection& c) -> asio::awaitable<Result<Job>> {
    auto j = co_await load_job(c, id, false, true);
    if (!j) co_return j;
    int64_t now = now_ms();
    if (is_terminal(j->state))
      co_return Error::make(ErrorCode::conflict, fmt::format("job {} is already {}", id, to_string(j->state)));
    if (j->state == JobState::running) {
      auto r = co_await q(c, "UPDATE jobs SET cancel_requested = TRUE, updated_at = $2 WHERE id = $1", id, now);
      if (!r) co_return r.take_error();
      json::object ev;
      if (auto e = co_await add_event(c, id, "job.cancel_requested", ev, now); !e) co_return e.take_error();
    } else {
      auto r = co_await q(c,
                          "UPDATE jobs SET state = 'cancelled', cancel_requested = TRUE, finished_at = $2, updated_at = $2 "
                          "WHERE id = $1",
                          id, now);
      if (!r) co_return r.take_error();
      json::object ev{{"state", "cancelled"}};
      if (auto e = co_await add_event(c, id, "job.finished", ev, now); !e) co_return e.take_error();
    }
    co_return co_await load_job(c, id, true);
  });
}

Async<Job> PgStore::retry_job(int64_t id) {
  return in_tx<Job>([id](Connection& c) -> asio::awaitable<Result<Job>> {
    auto j = co_await load_job(c, id, false, true);
    if (!j) co_return j;
    if (j->state != JobState::failed && j->state != JobState::cancelled)
      co_return Error::make(ErrorCode::conflict,
                            fmt::format("job {} is {}; only failed or cancelled jobs can be retried", id, to_string(j->state)));
    int64_t now = now_ms();
    auto r = co_await q(c,
                        "UPDATE jobs SET state = 'queued', attempt = 0, run_at = $2, cancel_requested = FALSE, "
                        "finished_at = NULL, updated_at = $2 WHERE id = $1",
                        id, now);
    if (!r) co_return r.take_error();
    auto s = co_await q(c, "UPDATE job_steps SET state = 'pending', error = NULL WHERE job_id = $1 AND state <> 'succeeded'", id);
    if (!s) co_return s.take_error();
    json::object ev{{"state", "queued"}, {"reason", "retry"}};
    if (auto e = co_await add_event(c, id, "job.queued", ev, now); !e) co_return e.take_error();
    auto w = co_await q(c, "SELECT pg_notify('creatord_queue', queue) FROM jobs WHERE id = $1", id);
    if (!w) co_return w.take_error();
    co_return co_await load_job(c, id, true);
  });
}

Async<int64_t> PgStore::recover_jobs(bool all_running, int64_t retry_base_ms) {
  return in_tx<int64_t>([all_running, retry_base_ms](Connection& c) -> asio::awaitable<Result<int64_t>> {
    int64_t now = now_ms();
    auto r = co_await q(c,
                        "UPDATE jobs SET "
                        "state = CASE WHEN cancel_requested THEN 'cancelled' WHEN attempt >= max_attempts THEN 'failed' "
                        "ELSE 'retrying' END, "
                        "finished_at = CASE WHEN cancel_requested OR attempt >= max_attempts THEN $1 ELSE NULL END, "
                        "run_at = $1 + $3, last_error = 'the worker running it stopped (lease expired)', "
                        "lease_owner = NULL, lease_expires_at = NULL, updated_at = $1 "
                        "WHERE id IN (SELECT id FROM jobs WHERE state = 'running' AND ($2 OR lease_expires_at < $1) "
                        "FOR UPDATE SKIP LOCKED) RETURNING id, state, queue",
                        now, all_running, retry_base_ms);
    if (!r) co_return r.take_error();
    for (int i = 0; i < r->size(); ++i) {
      int64_t id = r->int64(i, 0);
      std::string state(r->text(i, 1));
      auto s = co_await q(c, "UPDATE job_steps SET state = 'pending' WHERE job_id = $1 AND state = 'running'", id);
      if (!s) co_return s.take_error();
      json::object ev{{"state", state}, {"error", "the worker running it stopped (lease expired)"}};
      if (auto e = co_await add_event(c, id, state == "retrying" ? "job.retrying" : "job.finished", ev, now); !e)
        co_return e.take_error();
      std::string queue(r->text(i, 2));
      auto w = co_await q(c, "SELECT pg_notify('creatord_queue', $1)", queue);
      if (!w) co_return w.take_error();
    }
    co_return static_cast<int64_t>(r->size());
  });
}

Async<int64_t> PgStore::prune_jobs(int64_t before) {
  return in_tx<int64_t>([before](Connection& c) -> asio::awaitable<Result<int64_t>> {
    auto r = co_await q(c, "DELETE FROM jobs WHERE finished_at IS NOT NULL AND finished_at < $1", before);
    if (!r) co_return r.take_error();
    co_return r->affected();
  });
}

Async<int64_t> PgStore::next_run_at(std::string queue) {
  return with_conn<int64_t>([queue = std::move(queue)](Connection& c) -> asio::awaitable<Result<int64_t>> {
    auto r = co_await q(c, "SELECT MIN(run_at) FROM jobs WHERE queue = $1 AND state IN ('queued', 'retrying')", queue);
    if (!r) co_return r.take_error();
    co_return r->is_null(0, 0) ? int64_t{0} : r->int64(0, 0);
  });
}

Async<std::vector<JobEvent>> PgStore::job_events(int64_t job_id, int64_t after_seq, int limit) {
  return with_conn<std::vector<JobEvent>>([=](Connection& c) -> asio::awaitable<Result<std::vector<JobEvent>>> {
    auto r = co_await q(c, "SELECT seq, type, data, created_at FROM job_events WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                        job_id, after_seq, limit);
    if (!r) co_return r.take_error();
    std::vector<JobEvent> out;
    for (int i = 0; i < r->size(); ++i)
      out.push_back(JobEvent{r->int64(i, 0), std::string(r->text(i, 1)), std::string(r->text(i, 2)), r->int64(i, 3)});
    co_return out;
  });
}

// ---- emails ----------------------------------------------------------------------------------

Async<EmailAccepted> PgStore::create_email(Email e, NewJob delivery) {
  return in_tx<EmailAccepted>([e = std::move(e), delivery = std::move(delivery)](Connection& c) mutable
                                  -> asio::awaitable<Result<EmailAccepted>> {
    int64_t now = now_ms();
    if (e.idempotency_key) {
      auto r = co_await q(c, "SELECT id FROM emails WHERE idempotency_key = $1", e.idempotency_key);
      if (!r) co_return r.take_error();
      if (r->size() == 1) {
        auto old = co_await load_email(c, r->int64(0, 0));
        if (!old) co_return old.take_error();
        co_return EmailAccepted{std::move(old.value()), false};
      }
    }
    auto list = [](const std::vector<std::string>& v) {
      json::array a;
      for (const auto& s : v) a.emplace_back(s);
      return a;
    };
    std::string recipients = json::serialize(json::object{{"to", list(e.to)}, {"cc", list(e.cc)}, {"bcc", list(e.bcc)}});
    auto r = co_await q(c,
                        "INSERT INTO emails (state, from_addr, recipients, reply_to, subject, text_body, html_body, "
                        "message_id, idempotency_key, created_at, updated_at) "
                        "VALUES ('queued', $1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING id",
                        e.from, recipients, e.reply_to, e.subject, e.text, e.html, e.message_id, e.idempotency_key, now);
    if (!r) co_return r.take_error();
    int64_t id = r->int64(0, 0);
    delivery.payload = json::object{{"email_id", id}};
    bool created = false;
    auto job = co_await insert_job(c, delivery, now, &created);
    if (!job) co_return job.take_error();
    json::object ev{{"state", "queued"}};
    if (auto ev_r = co_await add_event(c, job->id, "job.queued", ev, now); !ev_r) co_return ev_r.take_error();
    auto link = co_await q(c, "UPDATE emails SET job_id = $2 WHERE id = $1", id, job->id);
    if (!link) co_return link.take_error();
    auto stored = co_await load_email(c, id);
    if (!stored) co_return stored.take_error();
    co_return EmailAccepted{std::move(stored.value()), true};
  });
}

Async<Email> PgStore::get_email(int64_t id) {
  return with_conn<Email>([id](Connection& c) -> asio::awaitable<Result<Email>> { co_return co_await load_email(c, id); });
}

Async<Page<Email>> PgStore::list_emails(std::optional<std::string> state, PageQuery pq) {
  return with_conn<Page<Email>>([state = std::move(state), pq = std::move(pq)](Connection& c)
                                    -> asio::awaitable<Result<Page<Email>>> {
    int64_t before = pq.before_id.value_or(INT64_MAX);
    int64_t limit = pq.limit + 1;
    auto r = co_await q(c,
                        "SELECT " EMAIL_COLS " FROM emails WHERE id < $1 AND ($2::text IS NULL OR state = $2) "
                        "ORDER BY id DESC LIMIT $3",
                        before, state, limit);
    if (!r) co_return r.take_error();
    Page<Email> page;
    for (int i = 0; i < r->size(); ++i) page.items.push_back(email_at(r.value(), i));
    page.trim_to(pq.limit);
    co_return page;
  });
}

Async<Email> PgStore::update_email(EmailUpdate u) {
  return in_tx<Email>([u = std::move(u)](Connection& c) -> asio::awaitable<Result<Email>> {
    int64_t now = now_ms();
    int64_t add = u.count_attempt ? 1 : 0;
    auto r = co_await q(c,
                        "UPDATE emails SET state = $2, attempts = attempts + $3, last_error = COALESCE($4, last_error), "
                        "smtp_reply = COALESCE($5, smtp_reply), updated_at = $6, "
                        "sent_at = CASE WHEN $2 = 'sent' THEN $6 ELSE sent_at END WHERE id = $1",
                        u.id, u.state, add, u.last_error, u.smtp_reply, now);
    if (!r) co_return r.take_error();
    co_return co_await load_email(c, u.id);
  });
}

// ---- blobs -----------------------------------------------------------------------------------

namespace {
struct ThreadConn {
  PGconn* c = nullptr;
  ~ThreadConn() {
    if (c) PQfinish(c);
  }
};
PGconn* blob_conn(const std::string& url) {
  thread_local ThreadConn tc;
  if (tc.c && PQstatus(tc.c) != CONNECTION_OK) {
    PQfinish(tc.c);
    tc.c = nullptr;
  }
  if (!tc.c) {
    tc.c = PQconnectdb(url.c_str());
    if (PQstatus(tc.c) != CONNECTION_OK) {
      PQfinish(tc.c);
      tc.c = nullptr;
      return nullptr;
    }
    PQclear(PQexec(tc.c, "SET search_path TO creatord"));
  }
  return tc.c;
}
Error blob_error(PGconn* c, PGresult* r) {
  Error e = pg::error_from(r, c);
  PQclear(r);
  return e;
}
}  // namespace

Status PgBlobStore::put(const std::string& sha256, std::string_view bytes) {
  PGconn* c = blob_conn(url_);
  if (!c) return Error::make(ErrorCode::unavailable, "database unavailable");
  std::string now = std::to_string(now_ms());
  const char* values[3] = {sha256.c_str(), bytes.data(), now.c_str()};
  int lengths[3] = {0, static_cast<int>(bytes.size()), 0};
  int formats[3] = {0, 1, 0};
  PGresult* r = PQexecParams(c,
                             "INSERT INTO blobs (sha256, bytes, created_at) VALUES ($1, $2, $3) "
                             "ON CONFLICT (sha256) DO UPDATE SET created_at = EXCLUDED.created_at",
                             3, nullptr, values, lengths, formats, 0);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) return blob_error(c, r);
  PQclear(r);
  return ok_status();
}

Result<std::string> PgBlobStore::get(const std::string& sha256) {
  PGconn* c = blob_conn(url_);
  if (!c) return Error::make(ErrorCode::unavailable, "database unavailable");
  const char* values[1] = {sha256.c_str()};
  PGresult* r = PQexecParams(c, "SELECT bytes FROM blobs WHERE sha256 = $1", 1, nullptr, values, nullptr, nullptr, 1);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) return blob_error(c, r);
  if (PQntuples(r) == 0) {
    PQclear(r);
    return Error::make(ErrorCode::not_found, "image bytes are missing");
  }
  std::string out(PQgetvalue(r, 0, 0), static_cast<size_t>(PQgetlength(r, 0, 0)));
  PQclear(r);
  return out;
}

Status PgBlobStore::remove(const std::string& sha256) {
  PGconn* c = blob_conn(url_);
  if (!c) return Error::make(ErrorCode::unavailable, "database unavailable");
  const char* values[1] = {sha256.c_str()};
  PGresult* r = PQexecParams(c,
                             "DELETE FROM blobs b WHERE sha256 = $1 AND NOT EXISTS (SELECT 1 FROM images i WHERE i.sha256 = b.sha256)",
                             1, nullptr, values, nullptr, nullptr, 0);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) return blob_error(c, r);
  PQclear(r);
  return ok_status();
}

std::vector<std::string> PgBlobStore::older_than(std::chrono::seconds age) {
  std::vector<std::string> out;
  PGconn* c = blob_conn(url_);
  if (!c) return out;
  std::string cutoff = std::to_string(now_ms() - age.count() * 1000);
  const char* values[1] = {cutoff.c_str()};
  PGresult* r = PQexecParams(c, "SELECT sha256 FROM blobs WHERE created_at < $1 LIMIT 10000", 1, nullptr, values, nullptr,
                             nullptr, 0);
  if (PQresultStatus(r) == PGRES_TUPLES_OK)
    for (int i = 0; i < PQntuples(r); ++i) out.emplace_back(PQgetvalue(r, i, 0));
  PQclear(r);
  return out;
}

}  // namespace creatord
