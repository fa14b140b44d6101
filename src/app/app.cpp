#include "app/app.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <iostream>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/address.hpp>

#include "api/auth.hpp"
#include "api/middleware.hpp"
#include "api/observe.hpp"
#include "api/routes.hpp"
#include "app/demo.hpp"
#include "app/jobs_print.hpp"
#include "auth/jwks_cache.hpp"
#include "auth/keyring.hpp"
#include "core/build_info.hpp"
#include "core/clock.hpp"
#include "core/log.hpp"
#include "core/log_console.hpp"
#include "core/offload.hpp"
#include "core/redact.hpp"
#include "core/sd_notify.hpp"
#include "http/server.hpp"
#include "store/blob_store.hpp"
#include "jobs/builtin.hpp"
#include "jobs/engine.hpp"
#include "jobs/event_hub.hpp"
#include "jobs/pipeline_config.hpp"
#include "queue/cron.hpp"
#include "mail/delivery.hpp"
#include "mail/outbox.hpp"
#include "mail/transport.hpp"
#include "queue/job_queue.hpp"
#include "queue/scheduler.hpp"
#include "store/pg/pg_migrations.hpp"
#include "store/pg/pg_store.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace creatord {

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

std::chrono::milliseconds secs(double s) {
  return std::chrono::milliseconds(static_cast<int64_t>(s * 1000));
}

size_t cores() { return std::max(1u, std::thread::hardware_concurrency()); }

SqliteOptions sqlite_options(const Config& cfg) {
  SqliteOptions o;
  o.path = (fs::path(cfg.data_dir) / "creatord.db").string();
  if (cfg.database_url.rfind("sqlite://", 0) == 0) o.path = cfg.database_url.substr(9);
  o.readers = cfg.store_readers ? cfg.store_readers : std::max<size_t>(2, cores());
  o.queue_limit = cfg.store_queue_limit;
  o.synchronous = cfg.sqlite_synchronous;
  return o;
}

// The store the configuration names: embedded SQLite, or PostgreSQL shared by several instances
// (image bytes then live in PostgreSQL too, where every instance reads them).
struct Stores {
  std::unique_ptr<Store> owner;
  Store* store = nullptr;
  queue::Driver* jobs = nullptr;
  MailStore* mail = nullptr;
  auth::KeyStore* keys = nullptr;
  PgStore* pg = nullptr;  // set on PostgreSQL
  std::unique_ptr<BlobStore> blobs;
};

template <class S>
Stores stores_of(std::unique_ptr<S> s) {
  Stores out;
  out.store = s.get();
  out.jobs = s.get();
  out.mail = s.get();
  out.keys = s.get();
  out.owner = std::move(s);
  return out;
}

Result<Stores> open_stores(const Config& cfg) {
  if (pg::is_postgres_url(cfg.database_url)) {
    PgOptions po;
    po.url = cfg.database_url;
    po.max_connections = cfg.database_connections;
    po.acquire_timeout = secs(cfg.database_acquire_timeout);
    po.statement_timeout = secs(cfg.database_statement_timeout);
    po.listen_url = cfg.database_listen_url;
    po.poll_interval = secs(cfg.job_poll);
    auto r = PgStore::open(po);
    if (!r) return r.take_error();
    PgStore* pg = r.value().get();
    Stores out = stores_of(std::move(r.value()));
    out.pg = pg;
    out.blobs = std::make_unique<PgBlobStore>(*pg);
    return out;
  }
  auto r = SqliteStore::open(sqlite_options(cfg));
  if (!r) return r.take_error();
  Stores out = stores_of(std::move(r.value()));
  out.blobs = std::make_unique<FileBlobStore>(fs::path(cfg.data_dir) / "blobs");
  return out;
}

// A name that resolves to loopback only (localhost, 127.x, ::1) is safe without tokens.
bool is_loopback_host(const std::string& host) {
  if (host == "localhost") return true;
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  return !ec && addr.is_loopback();
}

// Removes image files that no record names, once they are older than the grace period.
asio::awaitable<void> sweep_blobs(Store& store, BlobStore& blobs, BlockingPool& files,
                                  std::chrono::seconds interval, std::chrono::seconds grace) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer timer(ex);
  for (;;) {
    auto list_old = [&blobs, grace](size_t) -> Result<std::vector<std::string>> { return blobs.older_than(grace); };
    auto old = co_await offload<std::vector<std::string>>(files, list_old);
    if (old && !old->empty()) {
      auto orphans = co_await store.unreferenced_blobs(std::move(old.value()));
      if (orphans && !orphans->empty()) {
        auto list = std::make_shared<std::vector<std::string>>(std::move(orphans.value()));
        auto remove_all = [&blobs, list](size_t) -> Result<Unit> {
          for (const auto& h : *list) (void)blobs.remove(h);
          return Unit{};
        };
        co_await offload<Unit>(files, remove_all);
        log::info("unreferenced image files removed", {{"count", static_cast<int64_t>(list->size())}});
      }
    }
    timer.expires_after(interval);
    auto ec_result = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    auto ec = std::move(std::get<0>(ec_result));
    if (ec) co_return;
  }
}

// Every queue this instance runs, with how many of its jobs run at once: --queues, plus each
// configured pipeline's queue (its `concurrency`, else 2) unless --queues names it.
std::map<std::string, int> queue_concurrency(const Config& cfg, const PipelineRegistry& pipelines) {
  auto queues = parse_queues(cfg.queues).value();
  for (const Pipeline* p : pipelines.all()) {
    std::string q = p->queue.empty() ? p->name : p->queue;
    if (!queues.count(q)) queues[q] = p->concurrency > 0 ? p->concurrency : 2;
  }
  return queues;
}

// A scheduled slot's job: what `POST /api/creators/{id}/generate` with the schedule's pipeline
// and params would enqueue, keyed by schedule, slot and creator so it is enqueued once.
queue::ScheduledJob scheduled_job(const PipelineRegistry& pipelines) {
  return [&pipelines](const queue::ScheduleDef& s, int64_t creator_id, int64_t slot_ms) {
    const Pipeline* p = pipelines.find(s.pipeline);
    NewJob n;
    n.kind = s.pipeline;
    n.queue = p && !p->queue.empty() ? p->queue : s.pipeline;
    n.payload = boost::json::object{{"pipeline", s.pipeline}, {"params", s.params}, {"schedule", s.name},
                                    {"slot", format_rfc3339(slot_ms)}};
    n.creator_id = creator_id;
    n.unique_key = fmt::format("schedule:{}:{}:{}", s.name, slot_ms, creator_id);
    n.unique_ttl_ms = 30LL * 24 * 3600 * 1000;
    if (p)
      for (const auto& step : p->steps) n.steps.push_back(step.name);
    return n;
  };
}

// --metrics-listen: /metrics alone on an address of its own (e.g. one only the monitoring
// network reaches), served by one thread; no token there, the address is the access control.
class MetricsListener {
 public:
  static Result<std::unique_ptr<MetricsListener>> start(const std::string& listen, api::Context& ctx,
                                                        const api::MetricsSources& sources) {
    auto hp = parse_listen(listen);
    if (!hp) return hp.take_error();
    http::Router router;
    api::add_metrics_route(router, ctx, sources, false);
    auto self = std::unique_ptr<MetricsListener>(new MetricsListener(std::move(router)));
    http::ServerOptions so;
    so.host = hp->first;
    so.port = hp->second;
    so.threads = 1;
    so.access_log = false;
    self->server_ = std::make_unique<http::Server>(so, self->app_);
    if (auto s = self->server_->listen(); !s) return s.take_error();
    log::info("metrics listening", {{"address", so.host}, {"port", static_cast<int64_t>(self->server_->port())}});
    self->thread_ = std::thread([s = self->server_.get()] { s->run(); });
    return self;
  }
  ~MetricsListener() {
    server_->shutdown();
    if (thread_.joinable()) thread_.join();
  }

 private:
  explicit MetricsListener(http::Router router) : app_(std::move(router), api::SecurityOptions{}) {}
  api::ApiApp app_;
  std::unique_ptr<http::Server> server_;
  std::thread thread_;
};

queue::CreatorIds creator_ids(Store& store) {
  return [&store](int64_t after_id, int limit) -> Async<std::vector<int64_t>> {
    return store.creator_ids_after(after_id, limit);
  };
}

}  // namespace

void use_log_format(const Config& cfg) {
  bool terminal = ::isatty(1) == 1;
  log::Format format = log::Format::json;
  if (log::parse_format(cfg.log_format, terminal, format)) log::set_format(format, terminal);
}

int run_migrate(Config cfg) {
  log::init(log::parse_level(cfg.log_level, log::Level::info));
  use_log_format(cfg);
  if (pg::is_postgres_url(cfg.database_url)) {
    auto v = pg::migrate_blocking(cfg.database_url);
    if (!v) {
      log::error("migration failed", {{"error", v.error().message}});
      log::shutdown();
      return 1;
    }
    log::info("database is up to date", {{"schema_version", v.value()}, {"database", "postgresql"}});
    log::shutdown();
    return 0;
  }
  std::error_code ec;
  fs::create_directories(cfg.data_dir, ec);
  auto v = SqliteStore::migrate_only(sqlite_options(cfg));
  if (!v) {
    log::error("migration failed", {{"error", v.error().message}});
    log::shutdown();
    return 1;
  }
  log::info("database is up to date", {{"schema_version", v.value()}});
  log::shutdown();
  return 0;
}

namespace {

int command_failed(const Error& e) {
  std::cerr << "creatord: " << e.message << "\n";
  return e.code == ErrorCode::not_found ? 3 : e.code == ErrorCode::conflict ? 4 : 1;
}

// `creatord jobs watch ID`: follows the job's events as the store records them (polled, so it
// works against a server running anywhere on the same store). On a terminal the progress bars
// are redrawn in place, in colour; otherwise each event is a line, then the final bars. Exit
// status: 0 when the job succeeds, 1 when it fails or is cancelled, 3 when there is no such job.
asio::awaitable<int> watch_job(queue::JobQueue& jobs, int64_t id) {
  auto job = co_await jobs.get_job(id);
  if (!job) co_return command_failed(job.error());
  const bool tty = use_color(stdout);
  WatchView view(job.value());
  asio::steady_timer timer(co_await asio::this_coro::executor);
  int64_t after = 0;
  size_t drawn = 0;  // lines of the frame on screen
  for (bool first = true;; first = false) {
    constexpr int kPage = 200;
    auto events = co_await jobs.job_events(id, after, kPage);
    if (!events) co_return command_failed(events.error());
    for (const auto& e : events.value()) {
      view.apply(e);
      after = e.seq;
      if (!tty) std::cout << event_line(e);
    }
    if (tty) {
      std::string frame = view.frame(true);
      if (drawn) std::cout << "\x1b[" << drawn << "F\x1b[J";  // back to the frame's first line, clear below
      std::cout << frame;
      drawn = static_cast<size_t>(std::count(frame.begin(), frame.end(), '\n'));
    }
    std::cout.flush();
    // A finished job whose events were pruned has no job.finished to wait for.
    if (view.finished() || (first && events->empty() && is_terminal(job->state))) break;
    if (static_cast<int>(events->size()) == kPage) continue;
    timer.expires_after(std::chrono::milliseconds(250));
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  if (!tty) std::cout << view.frame(false);
  bool ok = view.finished() ? view.succeeded() : job->state == JobState::succeeded;
  co_return ok ? 0 : 1;
}

// `creatord jobs ...` and `creatord queues ...`, through the same queue the server uses.
asio::awaitable<int> jobs_action(queue::JobQueue& jobs, const JobsCommand& cmd) {
  auto fail = [](const Error& e) { return command_failed(e); };
  if (cmd.action == "watch") {
    int rc = co_await watch_job(jobs, cmd.id);
    co_return rc;
  }
  if (cmd.action == "list") {
    JobFilter f;
    if (!cmd.state.empty()) f.state = parse_job_state(cmd.state);
    PageQuery q;
    q.limit = cmd.limit;
    auto page = co_await jobs.list_jobs(f, q);
    if (!page) co_return fail(page.error());
    std::cout << (cmd.json ? jobs_json(page->items) : jobs_table(page->items, use_color(stdout)));
    co_return 0;
  }
  if (cmd.action == "queues") {
    auto queues = co_await jobs.queues({}, 3600 * 1000);
    if (!queues) co_return fail(queues.error());
    std::cout << fmt::format("{:<16} {:<7} {:>8} {:>9} {:>8} {:>8}  finished in the last hour\n", "QUEUE", "PAUSED",
                             "QUEUED", "SCHEDULED", "RUNNING", "RETRYING");
    for (const auto& q : queues.value())
      std::cout << fmt::format("{:<16} {:<7} {:>8} {:>9} {:>8} {:>8}  {} succeeded, {} failed, {} cancelled\n", q.name,
                               q.paused ? "yes" : "no", q.queued, q.scheduled, q.running, q.retrying, q.succeeded,
                               q.failed, q.cancelled);
    co_return 0;
  }
  if (cmd.action == "pause" || cmd.action == "resume") {
    Status r = Error{};  // not a ?: with co_await in its arms (GCC 12)
    if (cmd.action == "pause") r = co_await jobs.pause(cmd.queue);
    else r = co_await jobs.resume(cmd.queue);
    if (!r) co_return fail(r.error());
    std::cout << "queue " << cmd.queue << (cmd.action == "pause" ? " paused" : " resumed") << "\n";
    co_return 0;
  }
  Result<Job> r = Error::make(ErrorCode::bad_request, "unknown action " + cmd.action);
  if (cmd.action == "show") r = co_await jobs.get_job(cmd.id);
  else if (cmd.action == "cancel") r = co_await jobs.cancel(cmd.id);
  else if (cmd.action == "retry") r = co_await jobs.retry(cmd.id);
  if (!r) co_return fail(r.error());
  std::cout << job_details(r.value(), use_color(stdout));
  co_return 0;
}

}  // namespace

namespace {

// Runs a coroutine to its end on an event loop of its own (commands and start-up work). The loop
// outlives the call: a PostgreSQL store may finish a socket wait on its own thread afterwards.
template <class T>
T run_to_end(asio::awaitable<T> work, T on_crash) {
  static asio::io_context ioc;
  ioc.restart();
  T out = on_crash;
  asio::co_spawn(ioc, std::move(work), [&](std::exception_ptr e, T value) {
    if (!e) out = std::move(value);
    ioc.stop();
  });
  ioc.run();
  return out;
}

std::string key_time(const std::optional<int64_t>& ms) { return ms ? format_rfc3339(*ms) : "-"; }

asio::awaitable<int> keys_action(auth::KeyStore& keys, const KeysCommand& cmd) {
  if (cmd.action == "create") {
    auto scopes = auth::parse_scopes(cmd.scopes);
    if (!scopes) co_return command_failed(scopes.error());
    if (cmd.name.empty() || cmd.name.size() > 200)
      co_return command_failed(Error::make(ErrorCode::validation, "give the key a --name of 1 to 200 characters"));
    std::string secret = auth::generate_key_secret();
    auth::NewApiKey n{cmd.name, auth::key_prefix(secret), auth::key_hash(secret), scopes.value()};
    auto created = co_await keys.create_key(std::move(n), now_ms());
    if (!created) co_return command_failed(created.error());
    // The secret is shown this once: only its hash is stored.
    std::cout << secret << "\n";
    std::cerr << fmt::format("key {} \"{}\" created with scopes {}; keep the line above, it is not shown again\n",
                             created->id, created->name, auth::scopes_text(created->scopes));
    co_return 0;
  }
  if (cmd.action == "revoke") {
    auto revoked = co_await keys.revoke_key(cmd.id, now_ms());
    if (!revoked) co_return command_failed(revoked.error());
    std::cout << fmt::format("key {} \"{}\" revoked\n", revoked->id, revoked->name);
    co_return 0;
  }
  auto list = co_await keys.list_keys();
  if (!list) co_return command_failed(list.error());
  std::cout << fmt::format("{:<5} {:<24} {:<12} {:<28} {:<24} {:<24} {}\n", "ID", "NAME", "PREFIX", "SCOPES", "CREATED",
                           "LAST USED", "REVOKED");
  for (const auto& k : list.value())
    std::cout << fmt::format("{:<5} {:<24} {:<12} {:<28} {:<24} {:<24} {}\n", k.id, k.name, k.prefix,
                             auth::scopes_text(k.scopes), format_rfc3339(k.created_at_ms), key_time(k.last_used_at_ms),
                             key_time(k.revoked_at_ms));
  co_return 0;
}

}  // namespace

int run_keys_command(Config cfg, const KeysCommand& cmd) {
  auto opened = open_stores(cfg);
  if (!opened) {
    std::cerr << "creatord: cannot open the store: " << opened.error().message << "\n";
    return 1;
  }
  std::unique_ptr<Store> owner = std::move(opened->owner);
  int rc = run_to_end(keys_action(*opened->keys, cmd), 1);
  owner->close();
  return rc;
}

int run_jobs_command(Config cfg, const JobsCommand& cmd) {
  auto opened = open_stores(cfg);
  if (!opened) {
    std::cerr << "creatord: cannot open the store: " << opened.error().message << "\n";
    return 1;
  }
  std::unique_ptr<Store> owner = std::move(opened->owner);
  EventHub hub;
  queue::JobQueue jobs(*opened->jobs, hub, system_clock());
  asio::io_context ioc;
  int rc = 1;
  asio::co_spawn(ioc, jobs_action(jobs, cmd), [&](std::exception_ptr e, int code) {
    rc = e ? 1 : code;
    ioc.stop();
  });
  ioc.run();
  owner->close();
  return rc;
}

int run_pipelines_check(const std::string& file) {
  auto loaded = load_pipeline_file(file);
  if (!loaded) {
    std::cerr << loaded.error().message << "\n";
    return 1;
  }
  std::cout << file << ": ok, " << loaded->size() << " pipeline(s):";
  PipelineRegistry registry;
  add_builtin_pipelines(registry);
  for (auto& p : loaded.value()) {
    std::cout << " " << p.name << " (";
    for (size_t i = 0; i < p.steps.size(); ++i) std::cout << (i ? ", " : "") << p.steps[i].name;
    std::cout << ")";
    (void)registry.add(std::move(p));
  }
  std::cout << "\n";
  auto schedules = load_schedules(file, registry);
  if (!schedules) {
    std::cerr << schedules.error().message << "\n";
    return 1;
  }
  for (const auto& s : schedules.value())
    std::cout << fmt::format("  schedule {}: {} `{}` ({}), next run {}\n", s.name, s.pipeline, s.cron, s.timezone,
                             format_rfc3339(queue::next_after(s.schedule, now_ms())));
  return 0;
}

// The configured passwords are secrets: redacted wherever text reaches a client or the log.
static void add_config_secrets(const Config& cfg) {
  add_secret(cfg.smtp_password);
  add_secret(cfg.jwt_secret);
  for (const std::string* url : {&cfg.database_url, &cfg.database_listen_url, &cfg.smtp_url}) add_url_password_secret(*url);
}

namespace {
std::string auth_summary(const Config& cfg, const api::Authenticator& auth) {
  if (!auth.required()) return "off (loopback only)";
  std::string out = cfg.public_read ? "public reads" : "no anonymous reads";
  if (!cfg.api_tokens.empty()) out += ", shared tokens";
  out += ", API keys";
  if (!cfg.jwt_secret.empty()) out += ", HS256 JWTs";
  if (!cfg.jwks_url.empty()) out += ", JWKS JWTs";
  return out;
}

// SIGHUP: the configuration read again (on the file pool: it reads files), then its tokens and
// log level applied. Anything else that changed needs a restart, and the log says so. A reload
// that fails, or would drop every token of a server that had some, keeps what runs.
void reload_config(const std::function<Result<Config>()>& reread, BlockingPool& files, api::Authenticator& auth) {
  bool queued = files.submit([&reread, &auth](size_t) {
    auto cfg = reread();
    if (!cfg) {
      log::error("reload failed, configuration kept", {{"error", cfg.error().message}});
      return;
    }
    if (auth.has_tokens() && cfg->api_tokens.empty()) {
      log::error("reload refused, configuration kept", {{"error", "the new configuration has no API tokens"}});
      return;
    }
    auth.set_tokens(cfg->api_tokens);
    // Said before the new level applies, so it shows whatever that level is.
    log::info("configuration reloaded", {{"api_tokens", static_cast<int64_t>(cfg->api_tokens.size())},
                                         {"log_level", cfg->log_level},
                                         {"note", "other settings take effect at the next restart"}});
    log::set_level(log::parse_level(cfg->log_level, log::Level::info));
  });
  if (!queued) log::error("reload failed, configuration kept", {{"error", "the file pool is full"}});
}

}  // namespace

int run_serve(Config cfg, std::function<Result<Config>()> reread) {
  log::init(log::parse_level(cfg.log_level, log::Level::info), {.access_buffer_bytes = cfg.access_log_buffer});
  use_log_format(cfg);
  add_config_secrets(cfg);
  std::signal(SIGPIPE, SIG_IGN);
  auto fail = [](std::string_view what, std::string_view why) {
    log::error(what, {{"error", why}});
    log::shutdown();
    return 2;
  };

  auto listen = parse_listen(cfg.listen);
  if (!listen) return fail("bad configuration", listen.error().message);
  auto [host, port] = listen.value();

  std::error_code ec;
  fs::create_directories(fs::path(cfg.data_dir) / "blobs", ec);
  if (ec) return fail("cannot create data folder", ec.message());
  // One serving process per data folder: it may then treat every running job it finds at
  // start as orphaned by a crash.
  std::string lock_path = (fs::path(cfg.data_dir) / "creatord.lock").string();
  int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0 || ::flock(lock_fd, LOCK_EX | LOCK_NB) != 0)
    return fail("data folder in use", "another creatord serves " + cfg.data_dir + " (lock " + lock_path + ")");

  auto opened = open_stores(cfg);
  if (!opened) return fail("cannot open the store", opened.error().message);
  Stores stores = std::move(opened.value());
  bool postgres = stores.pg != nullptr;
  Store* store = stores.store;
  queue::Driver* jobs = stores.jobs;
  MailStore* mail = stores.mail;
  PgStore* pg_store = stores.pg;
  BlobStore& blobs = *stores.blobs;
  BlockingPool files("files", cfg.file_threads, cfg.store_queue_limit);
  // CPU-heavy steps run niced, so the API keeps answering while every core renders.
  BlockingPool render("render", cfg.render_threads ? cfg.render_threads : cores(), cfg.store_queue_limit,
                      cfg.render_nice, cfg.render_idle);

  SmtpOptions smtp;
  smtp.url = cfg.smtp_url;
  smtp.user = cfg.smtp_user;
  smtp.password = cfg.smtp_password;
  smtp.starttls = cfg.smtp_starttls;
  smtp.ca_file = cfg.smtp_ca_file;
  smtp.verify_tls = cfg.smtp_verify_tls;
  smtp.connect_timeout = secs(cfg.smtp_connect_timeout);
  smtp.timeout = secs(cfg.smtp_timeout);
  auto transport_r = make_transport(smtp, fs::path(cfg.data_dir) / "outbox");
  if (!transport_r) return fail("bad email configuration", transport_r.error().message);
  std::unique_ptr<MailTransport> transport = std::move(transport_r.value());
  BlockingPool mail_pool("mail", cfg.mail_threads, cfg.store_queue_limit);
  api::RateLimiter mail_rate(cfg.mail_rate, cfg.mail_burst);
  api::RateLimiter enqueue_rate(cfg.enqueue_rate, cfg.enqueue_burst);
  api::RateLimiter user_enqueue_rate(cfg.user_enqueue_rate, cfg.user_enqueue_burst);

  BlockingPool http_pool("http", cfg.http_threads, cfg.store_queue_limit);
  auth::Keyring keyring(*stores.keys);
  if (auto loaded = run_to_end(keyring.refresh(), Status(Error::make(ErrorCode::internal, "crashed"))); !loaded)
    return fail("cannot load the API keys", loaded.error().message);
  std::unique_ptr<auth::JwksCache> jwks;
  if (!cfg.jwks_url.empty())
    jwks = std::make_unique<auth::JwksCache>(
        auth::JwksOptions{cfg.jwks_url, secs(cfg.jwks_refresh), secs(cfg.jwks_min_refresh), std::chrono::seconds(10)},
        http_pool);
  api::Authenticator authenticator(
      api::AuthOptions{cfg.api_tokens, cfg.public_read,
                       auth::JwtOptions{cfg.jwt_secret, cfg.jwt_issuer, cfg.jwt_audience, static_cast<int64_t>(cfg.jwt_leeway)}},
      &keyring, jwks.get());
  if (!authenticator.required() && !is_loopback_host(host)) {
    return fail("refusing to start",
                "no credentials are configured, so creatord listens only on loopback; set CREATORD_API_TOKENS "
                "(or --api-tokens / --api-tokens-file), JWT settings (--jwt-secret, --jwks-url), or create an API "
                "key with `creatord keys create`, to listen on " + host);
  }
  EventHub hub;
  PipelineRegistry pipelines;
  add_builtin_pipelines(pipelines);
  if (!cfg.pipelines_file.empty()) {
    auto loaded = load_pipeline_file(cfg.pipelines_file);
    if (!loaded) return fail("bad pipelines file", loaded.error().message);
    for (auto& p : loaded.value()) {
      if (pipelines.find(p.name)) return fail("bad pipelines file", "pipeline " + p.name + " is built in; pick another name");
      std::string name = p.name;
      (void)pipelines.add(std::move(p));
      log::info("pipeline loaded", {{"name", name}, {"file", cfg.pipelines_file}});
    }
  }
  std::vector<queue::ScheduleDef> schedule_defs;
  if (!cfg.pipelines_file.empty()) {
    auto loaded = load_schedules(cfg.pipelines_file, pipelines);
    if (!loaded) return fail("bad pipelines file", loaded.error().message);
    schedule_defs = std::move(loaded.value());
  }
  queue::JobQueue job_queue(*jobs, hub, system_clock(),
                            queue::RetryPolicy{secs(cfg.job_retry_base).count(), secs(cfg.job_retry_cap).count()});
  Outbox outbox(*mail, job_queue,
                OutboxOptions{cfg.mail_from, cfg.mail_max_attempts, 5 * 60 * 1000, secs(cfg.idempotency_ttl).count()});
  Services services{*store, blobs, files, render};
  services.outbox = &outbox;
  services.http = &http_pool;
  services.outgoing.connect_timeout = secs(cfg.step_connect_timeout);
  services.outgoing.download_timeout = secs(cfg.step_download_timeout);
  services.outgoing.download_stall_timeout = secs(cfg.step_download_stall_timeout);
  services.outgoing.download_min_rate = cfg.step_download_min_rate;
  services.outgoing.allow_internal = AddressPolicy::parse(cfg.step_allow_internal).value();  // checked in finalize
  services.image_limits = DecodeLimits{cfg.max_image_pixels, cfg.max_image_decode_bytes};
  EngineOptions eo;
  eo.queues = queue_concurrency(cfg, pipelines);
  eo.lease_ms = secs(cfg.job_lease).count();
  eo.heartbeat_ms = secs(cfg.job_heartbeat).count();
  eo.poll_ms = secs(cfg.job_poll).count();
  eo.retention_ms = secs(cfg.job_retention).count();
  eo.shutdown_grace_ms = secs(cfg.shutdown_grace).count();
  // SQLite: this process owns the store (the data folder's lock says so), so running jobs found
  // at start are orphans. PostgreSQL: other instances may be running them; leases decide.
  eo.exclusive = !postgres;
  eo.run_jobs = cfg.run_jobs;
  JobEngine engine(eo, job_queue, hub);
  if (pg_store) pg_store->listen(hub);  // other instances' commits wake our dispatchers and streams
  // A job's kind is its pipeline's name.
  for (const Pipeline* p : pipelines.all()) engine.handle(p->name, pipeline_job_handler(pipelines, job_queue, services));
  engine.handle("noop", noop_job_handler());
  DeliveryCounters delivery_counters;
  engine.handle("email", email_job_handler(*mail, *transport, mail_pool, &delivery_counters));
  queue::Scheduler scheduler(std::move(schedule_defs), job_queue, scheduled_job(pipelines), creator_ids(*store));

  // One byte budget for every cached answer, whichever I/O thread serves it.
  ResponseCache response_cache(cfg.response_cache_bytes, cfg.list_cache_entries);
  api::Context ctx{*store, blobs, files, PagingLimits{cfg.page_limit_default, cfg.page_limit_max},
                   cfg.max_upload_bytes, &response_cache};
  ctx.image_limits = services.image_limits;
  ctx.jobs = &job_queue;
  ctx.hub = &hub;
  for (const auto& [name, concurrency] : eo.queues) ctx.queues.emplace_back(name, cfg.run_jobs ? concurrency : 0);
  ctx.scheduler = &scheduler;
  ctx.idempotency_ttl_ms = secs(cfg.idempotency_ttl).count();
  ctx.pipelines = &pipelines;
  ctx.max_wait_seconds = cfg.max_wait;
  ctx.sse_heartbeat_ms = static_cast<int>(secs(cfg.sse_heartbeat).count());
  ctx.job_limits = api::JobLimits{cfg.max_job_timeout, cfg.max_job_attempts, cfg.max_unfinished_jobs_per_token,
                                  cfg.max_unfinished_jobs_per_creator, cfg.max_unfinished_jobs_per_user,
                                  GenerateLimits{cfg.max_generate_pixels, cfg.max_generate_shapes}};
  if (cfg.enqueue_rate > 0) ctx.enqueue_rate = &enqueue_rate;
  if (cfg.user_enqueue_rate > 0) ctx.user_enqueue_rate = &user_enqueue_rate;
  ctx.outbox = &outbox;
  ctx.mail_rate = &mail_rate;
  ctx.mail_limits = MailLimits{cfg.mail_max_recipients, cfg.mail_max_subject, cfg.mail_max_body_bytes};
  http::Router router(cfg.max_json_bytes);
  api::add_api_routes(router, ctx);
  if (cfg.ui) api::add_ui_routes(router);
  metrics::JobMetrics job_metrics;
  api::MetricsSources metric_sources{nullptr, &job_metrics, build_info::kVersion, build_info::kCommit,
                                     postgres ? "postgresql" : "sqlite"};
  metric_sources.mail = &delivery_counters;
  if (cfg.metrics) job_queue.set_observer(&job_metrics);
  if (cfg.metrics && cfg.metrics_listen.empty())
    api::add_metrics_route(router, ctx, metric_sources, authenticator.required() && !cfg.metrics_public);
  std::vector<std::string> route_names;
  for (const auto& r : router.routes()) route_names.push_back(r.pattern);
  metrics::HttpMetrics http_metrics(std::move(route_names));
  if (cfg.metrics) metric_sources.http = &http_metrics;
  api::ApiApp app(std::move(router), api::SecurityOptions{cfg.cors_origins, &authenticator});

  http::ServerOptions so;
  so.host = host;
  so.port = port;
  so.threads = cfg.threads;
  so.max_connections = cfg.max_connections;
  so.max_connections_per_ip = cfg.max_connections_per_ip;
  so.header_limit = cfg.max_header_bytes;
  so.max_body_memory = cfg.max_body_memory;
  so.header_timeout = secs(cfg.header_timeout);
  so.body_timeout = secs(cfg.body_timeout);
  so.idle_timeout = secs(cfg.idle_timeout);
  so.write_timeout = secs(cfg.write_timeout);
  so.min_send_rate = cfg.min_send_rate;
  so.shutdown_grace = secs(cfg.shutdown_grace);
  so.access_log = cfg.access_log;
  if (cfg.metrics) so.observer = &http_metrics;
  if (reread) so.on_reload = [&] { reload_config(reread, files, authenticator); };

  // Each connection holds a descriptor: make sure the cap, not the OS limit, is what bites.
  struct rlimit rl {};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }

  http::Server server(so, app);
  if (auto s = server.listen(); !s) return fail("cannot listen", s.error().message);
  std::unique_ptr<MetricsListener> metrics_listener;
  if (cfg.metrics && !cfg.metrics_listen.empty()) {
    auto started = MetricsListener::start(cfg.metrics_listen, ctx, metric_sources);
    if (!started) return fail("cannot listen for metrics", started.error().message);
    metrics_listener = std::move(started.value());
  }

  std::string shown_host = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  std::string url = fmt::format("http://{}:{}", shown_host, server.port());
  services.public_url = public_base_url(cfg, host, server.port());
  log::info("listening", {{"address", host},
                          {"port", static_cast<int64_t>(server.port())},
                          {"url", url},
                          {"public_url", services.public_url},
                          {"threads", static_cast<int64_t>(server.threads())},
                          {"data_dir", cfg.data_dir},
                          {"store", postgres ? "postgresql" : "sqlite"},
                          {"auth", auth_summary(cfg, authenticator)},
                          {"email", transport->describe()}});
  // One write, so the background log thread cannot split it.
  std::string banner = "creatord is listening on " + url + "\n  try: curl '" + url + "/api/creators?limit=5'\n";
  std::fwrite(banner.data(), 1, banner.size(), stderr);

  if (cfg.demo) server.spawn_background([&]() { return seed_demo(*store); });
  server.spawn_background([&keyring, every = secs(cfg.api_key_refresh)]() { return keyring.run(every); });
  if (jwks) server.spawn_background([j = jwks.get()]() { return j->run(); });
  server.spawn_background([&, interval = std::chrono::seconds(static_cast<int64_t>(cfg.blob_sweep_interval)),
                           grace = std::chrono::seconds(static_cast<int64_t>(cfg.blob_sweep_grace))]() {
    return sweep_blobs(*store, blobs, files, std::max(interval, std::chrono::seconds(1)), grace);
  });
  if (!scheduler.schedules().empty())
    server.spawn_background([&scheduler, poll = eo.poll_ms]() { return scheduler.run(std::max<int64_t>(poll, 1000)); });

  engine.start();
  sd_notify("READY=1");  // Type=notify: systemd counts the service as started from here
  server.run();
  sd_notify("STOPPING=1");
  metrics_listener.reset();
  // The key uses noted since the last refresh are written before the store closes.
  if (auto flushed = run_to_end(keyring.refresh(), Status(Error::make(ErrorCode::internal, "crashed"))); !flushed)
    log::warn("the last API key uses were not written", {{"error", flushed.error().message}});
  // Jobs first (running ones go back to the queue, their finished steps kept), then every
  // accepted write, before the event loops (and their pending handlers) go away.
  engine.stop();
  job_queue.set_observer(nullptr);
  render.stop();
  mail_pool.stop();
  http_pool.stop();
  store->close();
  files.stop();
  ::close(lock_fd);
  log::info("stopped");
  log::shutdown();
  return 0;
}

}  // namespace creatord
