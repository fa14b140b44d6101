#include "store/pg/pg_migrations.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <fmt/format.h>

#include "core/log.hpp"
#include "store/pg/pg_probe.hpp"

namespace creatord::pg {

namespace asio = boost::asio;

namespace {

// Append only: a shipped migration is never edited. Timestamps are Unix milliseconds, as on
// SQLite; JSON is kept as text so both stores read it the same way.
constexpr const char* kMigrations[] = {
    // 1: everything the SQLite store has (creators, images and their bytes, jobs, emails)
    R"sql(
CREATE TABLE creators (
  id          BIGSERIAL PRIMARY KEY,
  name        TEXT NOT NULL,
  handle      TEXT NOT NULL UNIQUE,
  email       TEXT,
  bio         TEXT NOT NULL DEFAULT '',
  tags        TEXT NOT NULL DEFAULT '[]',
  created_at  BIGINT NOT NULL,
  updated_at  BIGINT NOT NULL
);
CREATE TABLE images (
  id            BIGSERIAL PRIMARY KEY,
  creator_id    BIGINT NOT NULL REFERENCES creators(id) ON DELETE CASCADE,
  sha256        TEXT NOT NULL,
  content_type  TEXT NOT NULL,
  width         INTEGER NOT NULL,
  height        INTEGER NOT NULL,
  size_bytes    BIGINT NOT NULL,
  source        TEXT NOT NULL DEFAULT 'upload',
  created_at    BIGINT NOT NULL,
  origin_key    TEXT UNIQUE,
  job_id        BIGINT
);
CREATE INDEX images_by_creator ON images(creator_id, id DESC);
CREATE INDEX images_by_sha256 ON images(sha256);
CREATE TABLE blobs (
  sha256      TEXT PRIMARY KEY,
  bytes       BYTEA NOT NULL,
  created_at  BIGINT NOT NULL
);
CREATE TABLE jobs (
  id                BIGSERIAL PRIMARY KEY,
  kind              TEXT NOT NULL,
  queue             TEXT NOT NULL,
  payload           TEXT NOT NULL DEFAULT '{}',
  state             TEXT NOT NULL,
  priority          INTEGER NOT NULL DEFAULT 0,
  run_at            BIGINT NOT NULL,
  attempt           INTEGER NOT NULL DEFAULT 0,
  max_attempts      INTEGER NOT NULL DEFAULT 3,
  timeout_ms        BIGINT NOT NULL,
  progress          DOUBLE PRECISION NOT NULL DEFAULT 0,
  result            TEXT,
  last_error        TEXT,
  idempotency_key   TEXT,
  creator_id        BIGINT,
  cancel_requested  BOOLEAN NOT NULL DEFAULT FALSE,
  lease_owner       TEXT,
  lease_expires_at  BIGINT,
  created_at        BIGINT NOT NULL,
  updated_at        BIGINT NOT NULL,
  started_at        BIGINT,
  finished_at       BIGINT
);
CREATE UNIQUE INDEX jobs_idempotency ON jobs(kind, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_runnable ON jobs(queue, priority DESC, run_at, id) WHERE state IN ('queued', 'retrying');
CREATE INDEX jobs_leases ON jobs(lease_owner, lease_expires_at) WHERE state = 'running';
CREATE INDEX jobs_finished ON jobs(finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX jobs_by_creator ON jobs(creator_id, id DESC);
CREATE TABLE job_steps (
  job_id       BIGINT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  position     INTEGER NOT NULL,
  name         TEXT NOT NULL,
  state        TEXT NOT NULL DEFAULT 'pending',
  attempt      INTEGER NOT NULL DEFAULT 0,
  runs         INTEGER NOT NULL DEFAULT 0,
  started_at   BIGINT,
  finished_at  BIGINT,
  output       TEXT,
  error        TEXT,
  log          TEXT,
  PRIMARY KEY (job_id, name)
);
CREATE TABLE job_events (
  job_id      BIGINT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  seq         BIGINT NOT NULL,
  type        TEXT NOT NULL,
  data        TEXT NOT NULL,
  created_at  BIGINT NOT NULL,
  PRIMARY KEY (job_id, seq)
);
CREATE TABLE emails (
  id               BIGSERIAL PRIMARY KEY,
  state            TEXT NOT NULL DEFAULT 'queued',
  from_addr        TEXT NOT NULL,
  recipients       TEXT NOT NULL,
  reply_to         TEXT,
  subject          TEXT NOT NULL,
  text_body        TEXT,
  html_body        TEXT,
  message_id       TEXT NOT NULL,
  idempotency_key  TEXT UNIQUE,
  job_id           BIGINT,
  attempts         INTEGER NOT NULL DEFAULT 0,
  last_error       TEXT,
  smtp_reply       TEXT,
  created_at       BIGINT NOT NULL,
  updated_at       BIGINT NOT NULL,
  sent_at          BIGINT
);
CREATE INDEX emails_by_state ON emails(state, id DESC);
)sql",
    // 2: the queue module: scoped idempotency (unique_key + request_hash), manual retries,
    // scheduled jobs, queue counts over partial indexes, paused queues, schedule marks
    R"sql(
ALTER TABLE jobs ADD COLUMN unique_key TEXT;
ALTER TABLE jobs ADD COLUMN request_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN manual_retries INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET unique_key = kind || ':' || idempotency_key WHERE idempotency_key IS NOT NULL;
DROP INDEX jobs_idempotency;
CREATE UNIQUE INDEX jobs_unique ON jobs(unique_key) WHERE unique_key IS NOT NULL;
DROP INDEX jobs_runnable;
CREATE INDEX jobs_runnable ON jobs(queue, priority DESC, run_at, id) WHERE state IN ('queued', 'scheduled', 'retrying');
DROP INDEX jobs_finished;
CREATE INDEX jobs_finished ON jobs(finished_at, queue, state) WHERE finished_at IS NOT NULL;
ALTER TABLE emails ADD COLUMN request_hash TEXT NOT NULL DEFAULT '';
CREATE TABLE queues (name TEXT PRIMARY KEY, paused BOOLEAN NOT NULL DEFAULT FALSE, updated_at BIGINT NOT NULL);
CREATE TABLE schedules (name TEXT PRIMARY KEY, last_slot BIGINT NOT NULL);
)sql",
    // 3: quotas: who enqueued a job, and partial indexes that count a principal's and a
    // creator's unfinished jobs cheaply (the expression is queue/transitions.hpp's)
    R"sql(
ALTER TABLE jobs ADD COLUMN enqueued_by TEXT;
CREATE INDEX jobs_unfinished_by_principal ON jobs(enqueued_by)
  WHERE enqueued_by IS NOT NULL AND state IN ('queued', 'scheduled', 'running', 'retrying');
CREATE INDEX jobs_unfinished_by_creator ON jobs(creator_id)
  WHERE creator_id IS NOT NULL AND state IN ('queued', 'scheduled', 'running', 'retrying');
)sql",
    // 4: API keys (only a hash of each secret), and creators' owners (signed-in users, one each)
    R"sql(
CREATE TABLE api_keys (
  id            BIGSERIAL PRIMARY KEY,
  name          TEXT NOT NULL,
  prefix        TEXT NOT NULL,
  key_hash      TEXT NOT NULL UNIQUE,
  scopes        TEXT NOT NULL,
  created_at    BIGINT NOT NULL,
  revoked_at    BIGINT,
  last_used_at  BIGINT
);
ALTER TABLE creators ADD COLUMN owner TEXT;
CREATE UNIQUE INDEX creators_by_owner ON creators(owner) WHERE owner IS NOT NULL;
)sql",
    // 5: creators keep the id they had elsewhere (imports); images where they were downloaded from
    R"sql(
ALTER TABLE creators ADD COLUMN external_id TEXT;
CREATE UNIQUE INDEX creators_by_external_id ON creators(external_id) WHERE external_id IS NOT NULL;
ALTER TABLE images ADD COLUMN source_url TEXT;
)sql",
    // 6: trigram indexes for `q` (ILIKE '%text%' on name or handle): the ILIKE still decides, the
    // index only finds the candidates. pg_trgm is a trusted extension (a database owner may
    // create it); where it is missing or not permitted the search keeps scanning, as before.
    R"sql(
DO $$
DECLARE
  trgm_schema name;
BEGIN
  BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
  EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'pg_trgm is not available (%): creator search stays a scan', SQLERRM;
  END;
  SELECT n.nspname INTO trgm_schema FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname = 'pg_trgm';
  IF trgm_schema IS NOT NULL THEN
    EXECUTE format('CREATE INDEX creators_name_trgm ON creators USING gin (name %I.gin_trgm_ops)', trgm_schema);
    EXECUTE format('CREATE INDEX creators_handle_trgm ON creators USING gin (handle %I.gin_trgm_ops)', trgm_schema);
  END IF;
END
$$;
)sql",
    // 7: the queue's hot path. Events and steps are written only with their job's row written or
    // locked in the same transaction (the driver's CTEs, update_step's fence) and deleted with it
    // by prune; their foreign keys cost a trigger
    // and a row lock per event (3 events per job run: measured 40% of enqueue, 15-20% of execute),
    // so the driver keeps that integrity instead. jobs_timed: when a queue's dispatcher must look
    // again (the earliest scheduled or retrying job) without walking every queued job. Idempotent
    // (a test re-runs it).
    R"sql(
ALTER TABLE job_events DROP CONSTRAINT IF EXISTS job_events_job_id_fkey;
ALTER TABLE job_steps DROP CONSTRAINT IF EXISTS job_steps_job_id_fkey;
CREATE INDEX IF NOT EXISTS jobs_timed ON jobs(queue, run_at) WHERE state IN ('scheduled', 'retrying');
)sql",
};

// pg_advisory_xact_lock key for migrations: "creatord" as a number.
constexpr int64_t kMigrationLock = 0x63726561746f7264;

}  // namespace

int latest_schema_version() { return static_cast<int>(std::size(kMigrations)); }

bool is_postgres_url(const std::string& url) {
  return url.rfind("postgres://", 0) == 0 || url.rfind("postgresql://", 0) == 0;
}

namespace {

// The schema's version; 0 before the first migration. Needs no privilege beyond reading
// creatord.schema_migrations, so a role without CREATE starts when the schema is up to date.
asio::awaitable<Result<int>> current_version(Connection& c) {
  auto exists = co_await c.exec("SELECT to_regclass('creatord.schema_migrations') IS NOT NULL");
  if (!exists) co_return exists.take_error();
  if (exists->text(0, 0) != "t") co_return 0;
  auto cur = co_await c.exec("SELECT COALESCE(MAX(version), 0) FROM creatord.schema_migrations");
  if (!cur) co_return cur.take_error();
  co_return static_cast<int>(cur->int64(0, 0));
}

// Inside the migration transaction, after its lock: applies what is missing.
asio::awaitable<Result<int>> apply_missing(Connection& c) {
  auto cur = co_await current_version(c);
  if (!cur) co_return cur.take_error();
  int version = cur.value();
  if (version == 0) {
    std::string setup =
        "CREATE SCHEMA IF NOT EXISTS creatord; "
        "CREATE TABLE IF NOT EXISTS creatord.schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)";
    if (auto r = co_await c.exec(setup); !r) co_return r.take_error();
  }
  if (version > latest_schema_version())
    co_return Error::make(ErrorCode::internal, fmt::format("database schema version {} is newer than this creatord ({})",
                                                           version, latest_schema_version()));
  for (int v = version + 1; v <= latest_schema_version(); ++v) {
    // SET LOCAL ends with the transaction: nothing is left on a pooler's server connection.
    std::string sql = fmt::format(
        "SET LOCAL search_path TO creatord; {} "
        "INSERT INTO creatord.schema_migrations (version, applied_at) VALUES ({}, (extract(epoch from now()) * 1000)::bigint)",
        kMigrations[v - 1], v);
    if (auto r = co_await c.exec(sql); !r)
      co_return Error::make(ErrorCode::internal, fmt::format("migration {} failed: {}", v, r.error().message));
    log::info("migration applied", {{"version", v}, {"database", "postgresql"}});
  }
  auto search = co_await c.exec("SELECT to_regclass('creatord.creators_name_trgm') IS NOT NULL");
  if (search && search->text(0, 0) != "t")
    log::warn("creator search has no trigram index (pg_trgm could not be created; a superuser may run "
              "CREATE EXTENSION pg_trgm, then the creators_*_trgm indexes of migration 4): q scans the creators",
              {{"database", "postgresql"}});
  co_return latest_schema_version();
}

}  // namespace

// One transaction holding a transaction-scoped advisory lock: it works through a
// transaction-mode pooler (a session lock could be taken on one server connection and released
// on another), and the lock ends with the transaction, even if this process dies.
asio::awaitable<Result<int>> migrate(Connection& c) {
  std::string lock = fmt::format("BEGIN; SELECT pg_advisory_xact_lock({})", kMigrationLock);
  if (auto r = co_await c.exec(lock); !r) co_return r.take_error();
  auto result = co_await apply_missing(c);
  auto end = co_await c.exec(result ? "COMMIT" : "ROLLBACK");
  if (result && !end) co_return end.take_error();
  co_return result;
}

Result<int> migrate_blocking(const std::string& conninfo) {
  asio::io_context ioc;
  auto guard = asio::make_work_guard(ioc);
  std::optional<Result<int>> out;
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        auto c = co_await Connection::connect(conninfo, ioc.get_executor(), std::chrono::seconds(10));
        if (!c) {
          out.emplace(with_fix(conninfo, c.take_error()));
          co_return;
        }
        auto r = co_await migrate(*c.value());
        out.emplace(std::move(r));
      },
      [&](std::exception_ptr e) {
        if (e && !out) out.emplace(Error::make(ErrorCode::internal, "migration crashed"));
        ioc.stop();
      });
  ioc.run();
  return std::move(*out);
}

}  // namespace creatord::pg
