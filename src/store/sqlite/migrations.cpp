#include "store/sqlite/migrations.hpp"

#include <sqlite3.h>

#include <fmt/format.h>

#include "core/log.hpp"

namespace creatord::sqlite {
namespace {

// Append only: a shipped migration is never edited.
constexpr const char* kMigrations[] = {
    // 1: creators and images
    R"sql(
CREATE TABLE creators (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  name        TEXT NOT NULL,
  handle      TEXT NOT NULL UNIQUE,
  email       TEXT,
  bio         TEXT NOT NULL DEFAULT '',
  tags        TEXT NOT NULL DEFAULT '[]',
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
);
CREATE TABLE images (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  creator_id    INTEGER NOT NULL REFERENCES creators(id) ON DELETE CASCADE,
  sha256        TEXT NOT NULL,
  content_type  TEXT NOT NULL,
  width         INTEGER NOT NULL,
  height        INTEGER NOT NULL,
  size_bytes    INTEGER NOT NULL,
  source        TEXT NOT NULL DEFAULT 'upload',
  created_at    INTEGER NOT NULL
);
CREATE INDEX images_by_creator ON images(creator_id, id DESC);
CREATE INDEX images_by_sha256 ON images(sha256);
)sql",
    // 2: durable jobs, their steps and events; images made by a job step are keyed so that a
    // retried step does not store them twice.
    R"sql(
CREATE TABLE jobs (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  kind              TEXT NOT NULL,
  queue             TEXT NOT NULL,
  payload           TEXT NOT NULL DEFAULT '{}',
  state             TEXT NOT NULL,
  priority          INTEGER NOT NULL DEFAULT 0,
  run_at            INTEGER NOT NULL,
  attempt           INTEGER NOT NULL DEFAULT 0,
  max_attempts      INTEGER NOT NULL DEFAULT 3,
  timeout_ms        INTEGER NOT NULL,
  progress          REAL NOT NULL DEFAULT 0,
  result            TEXT,
  last_error        TEXT,
  idempotency_key   TEXT,
  creator_id        INTEGER,
  cancel_requested  INTEGER NOT NULL DEFAULT 0,
  lease_owner       TEXT,
  lease_expires_at  INTEGER,
  created_at        INTEGER NOT NULL,
  updated_at        INTEGER NOT NULL,
  started_at        INTEGER,
  finished_at       INTEGER
);
CREATE UNIQUE INDEX jobs_idempotency ON jobs(kind, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_runnable ON jobs(queue, priority DESC, run_at, id) WHERE state IN ('queued', 'retrying');
CREATE INDEX jobs_leases ON jobs(lease_owner, lease_expires_at) WHERE state = 'running';
CREATE INDEX jobs_finished ON jobs(finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX jobs_by_creator ON jobs(creator_id, id DESC);
CREATE TABLE job_steps (
  job_id       INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  position     INTEGER NOT NULL,
  name         TEXT NOT NULL,
  state        TEXT NOT NULL DEFAULT 'pending',
  attempt      INTEGER NOT NULL DEFAULT 0,
  runs         INTEGER NOT NULL DEFAULT 0,
  started_at   INTEGER,
  finished_at  INTEGER,
  output       TEXT,
  error        TEXT,
  PRIMARY KEY (job_id, name)
) WITHOUT ROWID;
CREATE TABLE job_events (
  job_id      INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  seq         INTEGER NOT NULL,
  type        TEXT NOT NULL,
  data        TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;
ALTER TABLE images ADD COLUMN origin_key TEXT;
ALTER TABLE images ADD COLUMN job_id INTEGER;
CREATE UNIQUE INDEX images_by_origin ON images(origin_key) WHERE origin_key IS NOT NULL;
)sql",
    // 3: the email outbox
    R"sql(
CREATE TABLE emails (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  state            TEXT NOT NULL DEFAULT 'queued',
  from_addr        TEXT NOT NULL,
  recipients       TEXT NOT NULL,
  reply_to         TEXT,
  subject          TEXT NOT NULL,
  text_body        TEXT,
  html_body        TEXT,
  message_id       TEXT NOT NULL,
  idempotency_key  TEXT UNIQUE,
  job_id           INTEGER,
  attempts         INTEGER NOT NULL DEFAULT 0,
  last_error       TEXT,
  smtp_reply       TEXT,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  sent_at          INTEGER
);
CREATE INDEX emails_by_state ON emails(state, id DESC);
)sql",
    // 4: what a step printed (exec steps' stderr), kept with the step
    R"sql(
ALTER TABLE job_steps ADD COLUMN log TEXT;
)sql",
    // 5: the queue module: scoped idempotency (unique_key + request_hash), manual retries,
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
CREATE TABLE queues (name TEXT PRIMARY KEY, paused INTEGER NOT NULL DEFAULT 0, updated_at INTEGER NOT NULL);
CREATE TABLE schedules (name TEXT PRIMARY KEY, last_slot INTEGER NOT NULL);
)sql",
    // 6: quotas: who enqueued a job, and partial indexes that count a principal's and a
    // creator's unfinished jobs cheaply (the expression is queue/transitions.hpp's)
    R"sql(
ALTER TABLE jobs ADD COLUMN enqueued_by TEXT;
CREATE INDEX jobs_unfinished_by_principal ON jobs(enqueued_by)
  WHERE enqueued_by IS NOT NULL AND state IN ('queued', 'scheduled', 'running', 'retrying');
CREATE INDEX jobs_unfinished_by_creator ON jobs(creator_id)
  WHERE creator_id IS NOT NULL AND state IN ('queued', 'scheduled', 'running', 'retrying');
)sql",
    // 7: API keys (only a hash of each secret), and creators' owners (signed-in users, one each)
    R"sql(
CREATE TABLE api_keys (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  name          TEXT NOT NULL,
  prefix        TEXT NOT NULL,
  key_hash      TEXT NOT NULL UNIQUE,
  scopes        TEXT NOT NULL,
  created_at    INTEGER NOT NULL,
  revoked_at    INTEGER,
  last_used_at  INTEGER
);
ALTER TABLE creators ADD COLUMN owner TEXT;
CREATE UNIQUE INDEX creators_by_owner ON creators(owner) WHERE owner IS NOT NULL;
)sql",
    // 8: creators keep the id they had elsewhere (imports); images where they were downloaded from
    R"sql(
ALTER TABLE creators ADD COLUMN external_id TEXT;
CREATE UNIQUE INDEX creators_by_external_id ON creators(external_id) WHERE external_id IS NOT NULL;
ALTER TABLE images ADD COLUMN source_url TEXT;
)sql",
    // 9: a trigram index over name and handle for `q` (a substring search). It only narrows the
    // candidates: the LIKE of the scan still decides, so the answers stay the scan's. External
    // content (no second copy of the text) and detail=none (a trigram's rows, no positions): the
    // query asks for every trigram of the text. 'rebuild' indexes the rows already there.
    R"sql(
CREATE VIRTUAL TABLE creators_fts USING fts5(name, handle, content='creators', content_rowid='id',
                                             tokenize='trigram', detail=none);
CREATE TRIGGER creators_fts_insert AFTER INSERT ON creators BEGIN
  INSERT INTO creators_fts(rowid, name, handle) VALUES (new.id, new.name, new.handle);
END;
CREATE TRIGGER creators_fts_delete AFTER DELETE ON creators BEGIN
  INSERT INTO creators_fts(creators_fts, rowid, name, handle) VALUES ('delete', old.id, old.name, old.handle);
END;
CREATE TRIGGER creators_fts_update AFTER UPDATE OF name, handle ON creators BEGIN
  INSERT INTO creators_fts(creators_fts, rowid, name, handle) VALUES ('delete', old.id, old.name, old.handle);
  INSERT INTO creators_fts(rowid, name, handle) VALUES (new.id, new.name, new.handle);
END;
INSERT INTO creators_fts(creators_fts) VALUES ('rebuild');
)sql",
    // 10: when a queue's dispatcher must look again: the earliest scheduled or retrying job (queued
    // ones are due), without walking every queued job of the queue. Idempotent (a test re-runs it).
    R"sql(
CREATE INDEX IF NOT EXISTS jobs_timed ON jobs(queue, run_at) WHERE state IN ('scheduled', 'retrying');
)sql",
};

}  // namespace

int latest_schema_version() { return static_cast<int>(std::size(kMigrations)); }

Result<int> migrate(Db& db) {
  int version = 0;
  {
    auto st = db.prepare("PRAGMA user_version");
    if (st.step()) version = static_cast<int>(st.int64(0));
  }
  if (version > latest_schema_version()) {
    return Error::make(ErrorCode::internal,
                       fmt::format("database schema version {} is newer than this creatord ({}); "
                                   "upgrade creatord",
                                   version, latest_schema_version()));
  }
  for (int v = version + 1; v <= latest_schema_version(); ++v) {
    std::string sql = fmt::format("BEGIN IMMEDIATE; {} PRAGMA user_version={}; COMMIT;", kMigrations[v - 1], v);
    if (auto s = db.exec(sql.c_str()); !s) {
      (void)db.exec("ROLLBACK");
      return Error::make(ErrorCode::internal, fmt::format("migration {} failed: {}", v, s.error().message));
    }
    log::info("migration applied", {{"version", v}});
  }
  return latest_schema_version();
}

}  // namespace creatord::sqlite
