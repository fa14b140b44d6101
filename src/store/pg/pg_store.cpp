#include "store/pg/pg_store.hpp"

#include <future>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "core/clock.hpp"
#include "core/log.hpp"
#include "store/pg/pg_migrations.hpp"
#include "store/pg/pg_probe.hpp"
#include "store/pg/pg_store_ops.hpp"

namespace creatord {

namespace pgx {

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

boost::json::value parse_json_text(std::string_view text) {
  if (text.empty()) return nullptr;
  boost::system::error_code ec;
  auto v = boost::json::parse(text, ec);
  return ec ? boost::json::value(nullptr) : v;
}

}  // namespace pgx

namespace asio = boost::asio;
namespace json = boost::json;
using namespace pgx;

namespace {

#define CREATOR_COLS "id, name, handle, email, bio, tags, created_at, updated_at, owner, external_id"
#define IMAGE_COLS "id, creator_id, sha256, content_type, width, height, size_bytes, source, created_at, source_url"

Creator creator_at(const Rows& r, int i) {
  Creator c;
  c.id = r.int64(i, 0);
  c.name = r.text(i, 1);
  c.handle = r.text(i, 2);
  if (!r.is_null(i, 3)) c.email = std::string(r.text(i, 3));
  c.bio = r.text(i, 4);
  c.tags = tags_from_json_text(r.text(i, 5));
  c.created_at_ms = r.int64(i, 6);
  c.updated_at_ms = r.int64(i, 7);
  if (!r.is_null(i, 8)) c.owner = std::string(r.text(i, 8));
  if (!r.is_null(i, 9)) c.external_id = std::string(r.text(i, 9));
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
  if (!r.is_null(i, 9)) m.source_url = std::string(r.text(i, 9));
  return m;
}

}  // namespace

// ---- plumbing ------------------------------------------------------------------------------

PgStore::PgStore(PgOptions options) : options_(std::move(options)) {}

Result<std::unique_ptr<PgStore>> PgStore::open(PgOptions options) {
  std::unique_ptr<PgStore> s(new PgStore(std::move(options)));
  if (auto m = pg::migrate_blocking(s->options_.url); !m) return m.take_error();
  s->detect_pooling();
  pg::Pool::Options po;
  po.conninfo = s->options_.url;
  po.max_connections = s->options_.max_connections;
  po.acquire_timeout = s->options_.acquire_timeout;
  po.connect_timeout = s->options_.acquire_timeout;
  po.statement_timeout = s->options_.statement_timeout;
  po.named_statements = !s->transaction_pooled_;  // prepared once per connection where sessions hold
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
  // The notification loop ends first (it may hold a pooled connection), then the connections
  // close on the loop's thread; then the loop stops.
  if (notify_done_.valid()) {
    asio::post(ioc_, [this] {
      if (notify_running_) notify_stop_.emit(asio::cancellation_type::terminal);
    });
    notify_done_.wait_for(std::chrono::seconds(5));
  }
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

void PgStore::detect_pooling() {
  const std::string& listen_url = options_.listen_url.empty() ? options_.url : options_.listen_url;
  auto pooled = pg::is_transaction_pooled(options_.url, std::chrono::seconds(3));
  transaction_pooled_ = pooled && pooled.value();
  if (transaction_pooled_)
    log::info("the database URL leads to a transaction-mode pooler: statements carry no session state");
  bool listen_pooled = transaction_pooled_;
  if (listen_url != options_.url) {
    auto l = pg::is_transaction_pooled(listen_url, std::chrono::seconds(3));
    if (!l) log::warn("cannot reach --database-listen-url; retrying in the background", {{"error", pg::with_fix(listen_url, l.take_error()).message}});
    listen_pooled = l && l.value();
  }
  if (!listen_pooled) return;
  polling_ = true;
  log::warn(fmt::format("{} leads to a transaction-mode pooler, where LISTEN does not work: other instances' changes "
                        "are polled for every {} ms; fix: set --database-listen-url to the direct or session-mode URL",
                        listen_url == options_.url ? "--database-url" : "--database-listen-url",
                        options_.poll_interval.count()));
}

void PgStore::listen(EventHub& hub) {
  if (notify_done_.valid() || stopping_) return;
  notify_done_ = notify_ended_.get_future();
  asio::post(ioc_, [this, &hub] {
    notify_running_ = true;
    auto ended = [this](std::exception_ptr e) {
      notify_running_ = false;
      if (e && !stopping_) log::error("the notification loop failed");
      notify_ended_.set_value();
    };
    auto loop = polling_ ? poll_loop(hub) : listen_loop(hub);
    asio::co_spawn(ioc_, std::move(loop), asio::bind_cancellation_slot(notify_stop_.slot(), std::move(ended)));
  });
}

std::optional<Store::PoolUse> PgStore::pool_use() const {
  auto st = pool_->stats();
  PoolUse u{st.max, st.open, st.in_use, st.waiting, st.waited, st.timed_out, ""};
  u.notifications = polling_ ? "polling" : listening_ ? "listen" : "reconnecting";
  return u;
}

std::optional<Store::Latency> PgStore::latency() const {
  auto st = pool_->stats();
  return Latency{"postgresql_connection", std::move(st.wait), std::move(st.hold)};
}

// Without LISTEN: every active job's topic and every waiting queue's topic is woken each
// interval, plus jobs that finished since the last look; a woken stream or dispatcher reads the
// store and finds whatever changed. Costs one indexed query per interval (jobs_active,
// jobs_finished).
asio::awaitable<Result<Unit>> PgStore::poll_once(EventHub& hub, int64_t since_ms) {
  auto rows = co_await with_conn<Rows>([since_ms](Connection& c) -> asio::awaitable<Result<Rows>> {
    co_return co_await q(c,
                         "SELECT id, queue, state IN ('queued', 'scheduled', 'retrying') FROM creatord.jobs "
                         "WHERE state IN ('queued', 'scheduled', 'running', 'retrying') "
                         "UNION ALL SELECT id, queue, false FROM creatord.jobs WHERE finished_at >= $1 LIMIT 5000",
                         since_ms);
  });
  if (!rows) co_return rows.take_error();
  for (int i = 0; i < rows->size(); ++i) {
    hub.notify(EventHub::job_topic(rows->int64(i, 0)));
    if (rows->text(i, 2) == "t") hub.notify(EventHub::queue_topic(std::string(rows->text(i, 1))));
  }
  co_return Unit{};
}

asio::awaitable<void> PgStore::poll_loop(EventHub& hub) {
  asio::steady_timer timer(ioc_);
  int64_t since = now_ms();
  while (!stopping_) {
    timer.expires_after(options_.poll_interval);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (stopping_) break;
    int64_t started = now_ms();
    if (auto r = co_await poll_once(hub, since); r) since = started - 1000;  // overlap: commits in flight
  }
}

asio::awaitable<void> PgStore::listen_loop(EventHub& hub) {
  asio::steady_timer backoff(ioc_);
  while (!stopping_) {
    const std::string& url = options_.listen_url.empty() ? options_.url : options_.listen_url;
    // The statement deadline too: a session pooler with no free server connection answers LISTEN late.
    auto c = co_await Connection::connect(url, ioc_.get_executor(), std::chrono::seconds(5), options_.statement_timeout);
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
    cr.updated_at_ms = now_ms();
    cr.created_at_ms = f.created_at_ms.value_or(cr.updated_at_ms);
    std::string tags = tags_to_json_text(cr.tags);
    auto r = co_await q(c,
                        "INSERT INTO creatord.creators (name, handle, email, bio, tags, created_at, updated_at, owner, "
                        "external_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
                        cr.name, cr.handle, cr.email, cr.bio, tags, cr.created_at_ms, cr.updated_at_ms, cr.owner,
                        cr.external_id);
    if (!r) {
      if (r.error().code == ErrorCode::conflict && r.error().message.find("owner") != std::string::npos)
        co_return Error::make(ErrorCode::conflict, "this user has a creator already; one per user", "owner");
      if (r.error().code == ErrorCode::conflict) co_return creator_conflict(cr, r.error().message);
      co_return r.take_error();
    }
    cr.id = r->int64(0, 0);
    co_return cr;
  });
}

Async<Creator> PgStore::get_creator(int64_t id) {
  return with_conn<Creator>([id](Connection& c) -> asio::awaitable<Result<Creator>> {
    auto r = co_await q(c, "SELECT " CREATOR_COLS " FROM creatord.creators WHERE id = $1", id);
    if (!r) co_return r.take_error();
    if (r->size() == 0) co_return not_found(fmt::format("creator {} does not exist", id));
    co_return creator_at(r.value(), 0);
  });
}

Async<Creator> PgStore::update_creator(int64_t id, CreatorFields f) {
  return data_tx<Creator>([id, f = std::move(f)](Connection& c) -> asio::awaitable<Result<Creator>> {
    auto r = co_await q(c, "SELECT " CREATOR_COLS " FROM creatord.creators WHERE id = $1 FOR UPDATE", id);
    if (!r) co_return r.take_error();
    if (r->size() == 0) co_return not_found(fmt::format("creator {} does not exist", id));
    Creator cr = creator_at(r.value(), 0);
    apply_fields(cr, f);
    cr.updated_at_ms = std::max(now_ms(), cr.updated_at_ms);
    std::string tags = tags_to_json_text(cr.tags);
    auto u = co_await q(c,
                        "UPDATE creatord.creators SET name = $2, handle = $3, email = $4, bio = $5, tags = $6, updated_at = $7, "
                        "external_id = $8 WHERE id = $1",
                        id, cr.name, cr.handle, cr.email, cr.bio, tags, cr.updated_at_ms, cr.external_id);
    if (!u) {
      if (u.error().code == ErrorCode::conflict) co_return creator_conflict(cr, u.error().message);
      co_return u.take_error();
    }
    co_return cr;
  });
}

Async<Unit> PgStore::delete_creator(int64_t id) {
  return data_tx<Unit>([id](Connection& c) -> asio::awaitable<Result<Unit>> {
    auto r = co_await q(c, "DELETE FROM creatord.creators WHERE id = $1", id);
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
      r = co_await q(c, "SELECT " CREATOR_COLS " FROM creatord.creators WHERE id < $1 ORDER BY id DESC LIMIT $2", before, limit);
    } else {
      std::string pattern = "%";
      for (char ch : pq.q) {
        if (ch == '%' || ch == '_' || ch == '\\') pattern.push_back('\\');
        pattern.push_back(ch);
      }
      pattern.push_back('%');
      // Planned per call: the trigram indexes answer a rare pattern, walking the ids down answers
      // a common one sooner, and only the pattern tells which.
      r = co_await q_planned(c,
                             "SELECT " CREATOR_COLS " FROM creatord.creators WHERE id < $1 AND (name ILIKE $3 OR handle ILIKE $3 "
                             "OR external_id = $4) ORDER BY id DESC LIMIT $2",
                             before, limit, pattern, pq.q);
    }
    if (!r) co_return r.take_error();
    Page<Creator> page;
    for (int i = 0; i < r->size(); ++i) page.items.push_back(creator_at(r.value(), i));
    page.trim_to(pq.limit);
    co_return page;
  });
}

Async<std::vector<int64_t>> PgStore::creator_ids_after(int64_t after_id, int limit) {
  return with_conn<std::vector<int64_t>>([after_id, limit](Connection& c) -> asio::awaitable<Result<std::vector<int64_t>>> {
    auto r = co_await q(c, "SELECT id FROM creatord.creators WHERE id > $1 ORDER BY id LIMIT $2", after_id, limit);
    if (!r) co_return r.take_error();
    std::vector<int64_t> ids;
    for (int i = 0; i < r->size(); ++i) ids.push_back(r->int64(i, 0));
    co_return ids;
  });
}

Async<int64_t> PgStore::count_creators() {
  return with_conn<int64_t>([](Connection& c) -> asio::awaitable<Result<int64_t>> {
    auto r = co_await q(c, "SELECT count(*) FROM creatord.creators");
    if (!r) co_return r.take_error();
    co_return r->int64(0, 0);
  });
}

// Images are not in a creators list: a plain transaction, the list caches stay.
Async<Image> PgStore::add_image(NewImage n) {
  return in_tx<Image>([n = std::move(n)](Connection& c) -> asio::awaitable<Result<Image>> {
    int64_t now = now_ms();
    auto r = co_await q(c,
                        "INSERT INTO creatord.images (creator_id, sha256, content_type, width, height, size_bytes, source, "
                        "created_at, origin_key, job_id, source_url) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
                        "ON CONFLICT (origin_key) DO NOTHING RETURNING " IMAGE_COLS,
                        n.creator_id, n.sha256, n.content_type, n.width, n.height, n.size_bytes, n.source, now,
                        n.origin_key, n.job_id, n.source_url);
    if (!r) {
      if (r.error().code == ErrorCode::not_found)
        co_return not_found(fmt::format("creator {} does not exist", n.creator_id));
      co_return r.take_error();
    }
    if (r->size() == 1) co_return image_at(r.value(), 0);
    auto old = co_await q(c, "SELECT " IMAGE_COLS " FROM creatord.images WHERE origin_key = $1", n.origin_key);
    if (!old) co_return old.take_error();
    if (old->size() == 0) co_return Error::make(ErrorCode::unavailable, "image is being stored; retry");
    co_return image_at(old.value(), 0);
  });
}

Async<Image> PgStore::get_image(int64_t id) {
  return with_conn<Image>([id](Connection& c) -> asio::awaitable<Result<Image>> {
    auto r = co_await q(c, "SELECT " IMAGE_COLS " FROM creatord.images WHERE id = $1", id);
    if (!r) co_return r.take_error();
    if (r->size() == 0) co_return not_found(fmt::format("image {} does not exist", id));
    co_return image_at(r.value(), 0);
  });
}

Async<Unit> PgStore::delete_image(int64_t id) {
  return in_tx<Unit>([id](Connection& c) -> asio::awaitable<Result<Unit>> {
    auto r = co_await q(c, "DELETE FROM creatord.images WHERE id = $1", id);
    if (!r) co_return r.take_error();
    if (r->affected() == 0) co_return not_found(fmt::format("image {} does not exist", id));
    co_return Unit{};
  });
}

Async<Page<Image>> PgStore::list_images(int64_t creator_id, PageQuery pq) {
  return with_conn<Page<Image>>([creator_id, pq = std::move(pq)](Connection& c) -> asio::awaitable<Result<Page<Image>>> {
    auto exists = co_await q(c, "SELECT 1 FROM creatord.creators WHERE id = $1", creator_id);
    if (!exists) co_return exists.take_error();
    if (exists->size() == 0) co_return not_found(fmt::format("creator {} does not exist", creator_id));
    int64_t before = pq.before_id.value_or(INT64_MAX);
    int64_t limit = pq.limit + 1;
    auto r = co_await q(c,
                        "SELECT " IMAGE_COLS " FROM creatord.images WHERE creator_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
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
          auto r = co_await q(c, "SELECT 1 FROM creatord.images WHERE sha256 = $1 LIMIT 1", h);
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

}  // namespace creatord
