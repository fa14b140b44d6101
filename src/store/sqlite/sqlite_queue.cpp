// The queue driver on SQLite: SQL only; the queue (src/queue/) decides every state. All changes
// go through the single writer, so claims and completions from many workers share transactions.
#include <sqlite3.h>

#include <map>

#include <boost/json.hpp>

#include "store/sqlite/sqlite_store.hpp"
#include "store/sqlite/sqlite_store_ops.hpp"

namespace creatord {

using queue::Fence;
using queue::Inserted;
using queue::JobWrite;
using queue::StepReset;
using sqlite::Db;
using sqlite::Stmt;

namespace {

#define JOB_COLUMNS                                                                                       \
  "id, kind, queue, payload, state, priority, run_at, attempt, max_attempts, timeout_ms, progress, "     \
  "result, last_error, idempotency_key, creator_id, cancel_requested, created_at, updated_at, "         \
  "started_at, finished_at, lease_owner, lease_expires_at, request_hash, manual_retries"

boost::json::value parse_json_text(const std::string& text) {
  if (text.empty()) return nullptr;
  boost::system::error_code ec;
  auto v = boost::json::parse(text, ec);
  return ec ? boost::json::value(nullptr) : v;
}

Job job_from_row(const Stmt& st) {
  Job j;
  j.id = st.int64(0);
  j.kind = st.text(1);
  j.queue = st.text(2);
  j.payload = parse_json_text(st.text(3));
  j.state = parse_job_state(st.text(4)).value_or(JobState::queued);
  j.priority = static_cast<int>(st.int64(5));
  j.run_at_ms = st.int64(6);
  j.attempt = static_cast<int>(st.int64(7));
  j.max_attempts = static_cast<int>(st.int64(8));
  j.timeout_ms = st.int64(9);
  j.progress = st.real(10);
  j.result = st.is_null(11) ? boost::json::value(nullptr) : parse_json_text(st.text(11));
  j.last_error = st.text(12);
  if (!st.is_null(13)) j.idempotency_key = st.text(13);
  if (!st.is_null(14)) j.creator_id = st.int64(14);
  j.cancel_requested = st.int64(15) != 0;
  j.created_at_ms = st.int64(16);
  j.updated_at_ms = st.int64(17);
  j.started_at_ms = st.is_null(18) ? 0 : st.int64(18);
  j.finished_at_ms = st.is_null(19) ? 0 : st.int64(19);
  j.lease_owner = st.text(20);
  j.lease_expires_at_ms = st.is_null(21) ? 0 : st.int64(21);
  j.request_hash = st.text(22);
  j.manual_retries = static_cast<int>(st.int64(23));
  return j;
}

Error not_found_job(int64_t id) { return Error::make(ErrorCode::not_found, fmt::format("job {} does not exist", id)); }

Status done(Db& db, Stmt& st) {
  int rc = st.run();
  if (rc != SQLITE_DONE) return sqlite::to_error(rc, db.errmsg());
  return ok_status();
}

Status add_event(Db& db, int64_t job_id, std::string_view type, const boost::json::object& data, int64_t now) {
  auto st = db.prepare(
      "INSERT INTO job_events (job_id, seq, type, data, created_at) VALUES "
      "(?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM job_events WHERE job_id = ?1), ?2, ?3, ?4)");
  st.bind(1, job_id).bind(2, type).bind(3, boost::json::serialize(data)).bind(4, now);
  return done(db, st);
}

Result<Job> load_job(Db& db, int64_t id, bool with_steps) {
  Job j;
  {
    auto st = db.prepare("SELECT " JOB_COLUMNS " FROM jobs WHERE id = ?1");
    st.bind(1, id);
    if (!st.step()) {
      if (st.rc() != SQLITE_DONE) return sqlite::to_error(st.rc(), db.errmsg());
      return not_found_job(id);
    }
    j = job_from_row(st);
  }
  if (!with_steps) return j;
  auto st = db.prepare(
      "SELECT name, state, attempt, started_at, finished_at, output, error, log FROM job_steps "
      "WHERE job_id = ?1 ORDER BY position, name");
  st.bind(1, id);
  while (st.step()) {
    StepRecord s;
    s.name = st.text(0);
    s.state = st.text(1);
    s.attempt = static_cast<int>(st.int64(2));
    s.started_at_ms = st.is_null(3) ? 0 : st.int64(3);
    s.finished_at_ms = st.is_null(4) ? 0 : st.int64(4);
    s.output = st.is_null(5) ? boost::json::value(nullptr) : parse_json_text(st.text(5));
    s.error = st.text(6);
    s.log = st.text(7);
    j.steps.push_back(std::move(s));
  }
  if (st.rc() != SQLITE_DONE) return sqlite::to_error(st.rc(), db.errmsg());
  return j;
}

// The fence of a worker's write: it still holds this attempt of a running job.
Result<bool> fenced(Db& db, int64_t id, int attempt, const std::string& owner) {
  auto st = db.prepare("SELECT 1 FROM jobs WHERE id = ?1 AND attempt = ?2 AND lease_owner = ?3 AND state = 'running'");
  st.bind(1, id).bind(2, int64_t{attempt}).bind(3, owner);
  if (st.step()) return true;
  if (st.rc() != SQLITE_DONE) return sqlite::to_error(st.rc(), db.errmsg());
  return false;
}

// Counts n's principal's and creator's unfinished jobs (partial indexes) and applies the rule.
// Inside the write transaction: SQLite has one writer, so two inserts cannot both pass.
Status check_quota(Db& db, const NewJob& n) {
  auto count = [&db](const char* sql, auto key) -> Result<int64_t> {
    auto st = db.prepare(sql);
    st.bind(1, key);
    if (!st.step()) return sqlite::to_error(st.rc(), db.errmsg());
    return st.int64(0);
  };
  int64_t by_principal = 0, by_creator = 0;
  if (n.max_unfinished_by_principal > 0 && !n.enqueued_by.empty()) {
    auto c = count("SELECT count(*) FROM jobs WHERE enqueued_by = ?1 AND " CREATORD_UNFINISHED_STATES, n.enqueued_by);
    if (!c) return c.take_error();
    by_principal = c.value();
  }
  if (n.max_unfinished_by_creator > 0 && n.creator_id) {
    auto c = count("SELECT count(*) FROM jobs WHERE creator_id = ?1 AND " CREATORD_UNFINISHED_STATES, *n.creator_id);
    if (!c) return c.take_error();
    by_creator = c.value();
  }
  return queue::check_quota(n, by_principal, by_creator);
}

// A live job holding the unique key, if any; an expired key is released.
Result<std::optional<int64_t>> holder_of(Db& db, const NewJob& n, int64_t now) {
  auto st = db.prepare("SELECT id, created_at FROM jobs WHERE unique_key = ?1");
  st.bind(1, *n.unique_key);
  if (!st.step()) {
    if (st.rc() != SQLITE_DONE) return sqlite::to_error(st.rc(), db.errmsg());
    return std::optional<int64_t>{};
  }
  int64_t id = st.int64(0), created = st.int64(1);
  if (created >= now - n.unique_ttl_ms) return std::optional<int64_t>{id};
  auto release = db.prepare("UPDATE jobs SET unique_key = NULL WHERE id = ?1");
  release.bind(1, id);
  if (auto s = done(db, release); !s) return s.take_error();
  return std::optional<int64_t>{};
}

Status insert_steps(Db& db, int64_t id, const std::vector<std::string>& steps) {
  for (size_t i = 0; i < steps.size(); ++i) {
    auto s = db.prepare("INSERT OR IGNORE INTO job_steps (job_id, position, name) VALUES (?1, ?2, ?3)");
    s.bind(1, id).bind(2, static_cast<int64_t>(i)).bind(3, steps[i]);
    if (auto r = done(db, s); !r) return r;
  }
  return ok_status();
}

const char* step_reset_sql(StepReset r) {
  switch (r) {
    case StepReset::running_to_pending:
      return "UPDATE job_steps SET state = 'pending' WHERE job_id = ?1 AND state = 'running'";
    case StepReset::running_to_cancelled:
      return "UPDATE job_steps SET state = 'cancelled', error = 'cancelled' WHERE job_id = ?1 AND state = 'running'";
    case StepReset::unfinished_to_pending:
      return "UPDATE job_steps SET state = 'pending', error = NULL WHERE job_id = ?1 AND state <> 'succeeded'";
    case StepReset::none:
      break;
  }
  return nullptr;
}

Result<bool> apply_one(Db& db, const JobWrite& w) {
  auto st = db.prepare(
      "UPDATE jobs SET state = ?2, attempt = ?3, run_at = ?4, finished_at = ?5, max_attempts = ?6, "
      "manual_retries = ?7, cancel_requested = ?8, "
      "lease_owner = CASE WHEN ?9 THEN lease_owner END, lease_expires_at = CASE WHEN ?9 THEN lease_expires_at END, "
      "result = CASE WHEN ?10 THEN ?11 ELSE result END, last_error = CASE WHEN ?12 THEN ?13 ELSE last_error END, "
      "progress = CASE WHEN ?14 THEN 1.0 ELSE progress END, updated_at = ?15 "
      "WHERE id = ?1 AND state = ?16 AND attempt = ?17 AND (?18 IS NULL OR lease_owner = ?18) "
      "AND (?19 = 0 OR lease_expires_at < ?19)");
  st.bind(1, w.job_id).bind(2, to_string(w.state)).bind(3, int64_t{w.attempt}).bind(4, w.run_at_ms);
  if (w.finished_at_ms) st.bind(5, w.finished_at_ms);
  st.bind(6, int64_t{w.max_attempts}).bind(7, int64_t{w.manual_retries}).bind(8, int64_t{w.cancel_requested});
  st.bind(9, int64_t{w.keep_lease}).bind(10, int64_t{w.result.has_value()});
  if (w.result) st.bind(11, boost::json::serialize(*w.result));
  st.bind(12, int64_t{w.last_error.has_value()}).bind(13, w.last_error);
  st.bind(14, int64_t{w.progress_complete}).bind(15, w.at_ms);
  st.bind(16, to_string(w.fence.state)).bind(17, int64_t{w.fence.attempt}).bind(18, w.fence.owner);
  st.bind(19, w.fence.lease_expired_before);
  if (auto s = done(db, st); !s) return s.take_error();
  if (db.changes() == 0) return false;
  if (const char* sql = step_reset_sql(w.steps)) {
    auto steps = db.prepare(sql);
    steps.bind(1, w.job_id);
    if (auto s = done(db, steps); !s) return s.take_error();
  }
  if (!w.event_type.empty())
    if (auto s = add_event(db, w.job_id, w.event_type, w.event_data, w.at_ms); !s) return s.take_error();
  return true;
}

Status record_step_state(Db& db, const StepUpdate& u, int64_t now) {
  using K = StepUpdate::Kind;
  if (u.kind == K::started) {
    auto st = db.prepare(
        "INSERT INTO job_steps (job_id, position, name, state, attempt, runs, started_at) "
        "VALUES (?1, 1000, ?2, 'running', ?3, 1, ?4) ON CONFLICT (job_id, name) DO UPDATE SET "
        "state = 'running', attempt = ?3, runs = runs + 1, started_at = ?4, finished_at = NULL, error = NULL");
    st.bind(1, u.job_id).bind(2, u.step).bind(3, int64_t{u.attempt}).bind(4, now);
    return done(db, st);
  }
  if (u.kind == K::progress) return ok_status();
  const char* state = u.kind == K::succeeded ? "succeeded" : u.kind == K::failed ? "failed" : "cancelled";
  auto st = db.prepare(
      "UPDATE job_steps SET state = ?3, finished_at = ?4, output = ?5, error = ?6, log = ?7 "
      "WHERE job_id = ?1 AND name = ?2");
  st.bind(1, u.job_id).bind(2, u.step).bind(3, state).bind(4, now);
  if (u.kind == K::succeeded) st.bind(5, boost::json::serialize(u.output));
  else st.bind(6, u.error);
  if (!u.log.empty()) st.bind(7, u.log);
  return done(db, st);
}

}  // namespace

namespace {

// The first events of jobs inserted together (ids first_id..last_id), in one statement.
Status add_first_events(Db& db, int64_t first_id, int64_t last_id, int64_t now) {
  auto st = db.prepare(
      "INSERT INTO job_events (job_id, seq, type, data, created_at) SELECT id, 1, "
      "CASE state WHEN 'scheduled' THEN 'job.scheduled' ELSE 'job.queued' END, "
      "CASE state WHEN 'scheduled' THEN '{\"state\":\"scheduled\"}' ELSE '{\"state\":\"queued\"}' END, ?3 "
      "FROM jobs WHERE id BETWEEN ?1 AND ?2");
  st.bind(1, first_id).bind(2, last_id).bind(3, now);
  return done(db, st);
}

bool any_unique(const std::vector<NewJob>& jobs) {
  return std::any_of(jobs.begin(), jobs.end(), [](const NewJob& n) { return n.unique_key.has_value(); });
}

}  // namespace

Result<Inserted> sqlite_insert_job(Db& db, const NewJob& n, int64_t now) {
  return sqlite_insert_job(db, n, now, true);
}

Result<Inserted> sqlite_insert_job(Db& db, const NewJob& n, int64_t now, bool first_event) {
  if (n.unique_key) {
    auto holder = holder_of(db, n, now);
    if (!holder) return holder.take_error();
    if (holder.value()) {
      auto existing = load_job(db, *holder.value(), true);
      if (!existing) return existing.take_error();
      return Inserted{std::move(existing.value()), false};
    }
  }
  if (queue::has_quota(n))
    if (auto s = check_quota(db, n); !s) return s.take_error();
  int64_t run_at = n.run_at_ms > 0 ? n.run_at_ms : now;
  JobState initial = queue::initial_state(run_at, now);
  auto st = db.prepare(
      "INSERT INTO jobs (kind, queue, payload, state, priority, run_at, max_attempts, timeout_ms, "
      "idempotency_key, creator_id, created_at, updated_at, unique_key, request_hash, enqueued_by) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12, ?13, ?14)");
  st.bind(1, n.kind).bind(2, n.queue).bind(3, boost::json::serialize(n.payload)).bind(4, to_string(initial));
  st.bind(5, int64_t{n.priority}).bind(6, run_at).bind(7, int64_t{n.max_attempts}).bind(8, n.timeout_ms);
  st.bind(9, n.idempotency_key);
  if (n.creator_id) st.bind(10, *n.creator_id);
  st.bind(11, now).bind(12, n.unique_key).bind(13, n.request_hash);
  if (!n.enqueued_by.empty()) st.bind(14, n.enqueued_by);
  if (auto s = done(db, st); !s) return s.take_error();
  int64_t id = db.last_insert_rowid();
  if (auto s = insert_steps(db, id, n.steps); !s) return s.take_error();
  if (first_event)
    if (auto s = add_first_events(db, id, id, now); !s) return s.take_error();
  Job j;
  j.id = id;
  j.kind = n.kind;
  j.queue = n.queue;
  j.state = initial;
  return Inserted{std::move(j), true};
}

Async<std::vector<Inserted>> SqliteStore::insert(std::vector<NewJob> jobs, int64_t now) {
  return write<std::vector<Inserted>>([jobs = std::move(jobs), now](Db& db) -> Result<std::vector<Inserted>> {
    std::vector<Inserted> out;
    out.reserve(jobs.size());
    bool one = jobs.size() == 1;
    // Without unique keys every job is new: their first events go in one statement at the end.
    bool batch = !one && !any_unique(jobs);
    for (const auto& n : jobs) {
      auto r = sqlite_insert_job(db, n, now, !batch);
      if (!r) return r.take_error();
      if (one && r->created) {  // a single enqueue answers with the whole job
        auto full = load_job(db, r->job.id, true);
        if (!full) return full.take_error();
        r->job = std::move(full.value());
      }
      out.push_back(std::move(r.value()));
    }
    if (batch && !out.empty())
      if (auto s = add_first_events(db, out.front().job.id, out.back().job.id, now); !s) return s.take_error();
    return out;
  }, false);
}

Async<Job> SqliteStore::get_job(int64_t id) {
  return read<Job>([id](Db& db) { return load_job(db, id, true); });
}

Async<Page<Job>> SqliteStore::list_jobs(JobFilter f, PageQuery q) {
  return read<Page<Job>>([f = std::move(f), q = std::move(q)](Db& db) -> Result<Page<Job>> {
    auto st = db.prepare("SELECT " JOB_COLUMNS " FROM jobs WHERE id < ?1 AND (?2 IS NULL OR state = ?2) "
                         "AND (?3 IS NULL OR kind = ?3) AND (?4 IS NULL OR creator_id = ?4) "
                         "AND (?6 IS NULL OR queue = ?6) AND (?7 IS NULL OR kind <> ?7) ORDER BY id DESC LIMIT ?5");
    st.bind(1, q.before_id.value_or(INT64_MAX));
    if (f.state) st.bind(2, to_string(*f.state));
    if (f.kind) st.bind(3, *f.kind);
    if (f.creator_id) st.bind(4, *f.creator_id);
    st.bind(5, int64_t{q.limit} + 1);
    if (f.queue) st.bind(6, *f.queue);
    if (f.exclude_kind) st.bind(7, *f.exclude_kind);
    Page<Job> page;
    while (st.step()) page.items.push_back(job_from_row(st));
    if (st.rc() != SQLITE_DONE) return sqlite::to_error(st.rc(), db.errmsg());
    page.trim_to(q.limit);
    return page;
  });
}

Async<std::vector<Job>> SqliteStore::claim(std::string queue, std::string owner, int n, int64_t lease_ms,
                                           const Clock& clock) {
  return write<std::vector<Job>>(
      [queue = std::move(queue), owner = std::move(owner), n, lease_ms, &clock](Db& db) -> Result<std::vector<Job>> {
        int64_t now = clock.now_ms(), lease_until = now + lease_ms;
        auto st = db.prepare(
            "UPDATE jobs SET state = 'running', attempt = attempt + 1, lease_owner = ?2, lease_expires_at = ?3, "
            "started_at = COALESCE(started_at, ?4), updated_at = ?4 "
            "WHERE id IN (SELECT id FROM jobs WHERE queue = ?1 AND state IN ('queued', 'scheduled', 'retrying') "
            "AND run_at <= ?4 AND NOT EXISTS (SELECT 1 FROM queues WHERE name = ?1 AND paused = 1) "
            "ORDER BY priority DESC, run_at, id LIMIT ?5) "
            "RETURNING " JOB_COLUMNS);
        st.bind(1, queue).bind(2, owner).bind(3, lease_until).bind(4, now).bind(5, int64_t{n});
        std::vector<Job> out;
        while (st.step()) out.push_back(job_from_row(st));
        if (st.rc() != SQLITE_DONE) return sqlite::to_error(st.rc(), db.errmsg());
        std::sort(out.begin(), out.end(), [](const Job& a, const Job& b) {
          return a.priority != b.priority ? a.priority > b.priority : a.id < b.id;
        });
        for (const auto& j : out)
          if (auto s = add_event(db, j.id, job_event::started, {{"attempt", j.attempt}}, now); !s) return s.take_error();
        return out;
      }, false);
}

Async<std::vector<int64_t>> SqliteStore::heartbeat(std::string owner, int64_t lease_ms, const Clock& clock) {
  return write<std::vector<int64_t>>([owner = std::move(owner), lease_ms, &clock](Db& db) -> Result<std::vector<int64_t>> {
    int64_t lease_until = clock.now_ms() + lease_ms;
    auto renew = db.prepare(
        "UPDATE jobs SET lease_expires_at = ?2 WHERE lease_owner = ?1 AND state = 'running' "
        "RETURNING id, cancel_requested");
    renew.bind(1, owner).bind(2, lease_until);
    std::vector<int64_t> ids;
    while (renew.step())
      if (renew.int64(1) != 0) ids.push_back(renew.int64(0));
    if (renew.rc() != SQLITE_DONE) return sqlite::to_error(renew.rc(), db.errmsg());
    return ids;
  }, false);
}

Async<bool> SqliteStore::update_step(std::string owner, StepUpdate u, int64_t now) {
  return write<bool>([owner = std::move(owner), u = std::move(u), now](Db& db) -> Result<bool> {
    auto ours = fenced(db, u.job_id, u.attempt, owner);
    if (!ours || !ours.value()) return ours;
    if (auto s = record_step_state(db, u, now); !s) return s.take_error();
    auto [type, data] = queue::step_event(u);
    if (auto s = add_event(db, u.job_id, type, data, now); !s) return s.take_error();
    if (u.job_progress >= 0) {
      auto st = db.prepare("UPDATE jobs SET progress = ?2, updated_at = ?3 WHERE id = ?1");
      st.bind(1, u.job_id).bind_real(2, u.job_progress).bind(3, now);
      if (auto s = done(db, st); !s) return s.take_error();
    }
    return true;
  }, false);
}

Async<std::vector<bool>> SqliteStore::apply(std::vector<JobWrite> writes) {
  return write<std::vector<bool>>([writes = std::move(writes)](Db& db) -> Result<std::vector<bool>> {
    std::vector<bool> out;
    out.reserve(writes.size());
    for (const auto& w : writes) {
      auto r = apply_one(db, w);
      if (!r) return r.take_error();
      out.push_back(r.value());
    }
    return out;
  }, false);
}

Async<std::vector<Job>> SqliteStore::running_jobs(int64_t now, bool all_running, int limit) {
  return read<std::vector<Job>>([=](Db& db) -> Result<std::vector<Job>> {
    auto st = db.prepare("SELECT " JOB_COLUMNS " FROM jobs WHERE state = 'running' AND (?1 OR lease_expires_at < ?2) "
                         "ORDER BY id LIMIT ?3");
    st.bind(1, int64_t{all_running}).bind(2, now).bind(3, int64_t{limit});
    std::vector<Job> out;
    while (st.step()) out.push_back(job_from_row(st));
    if (st.rc() != SQLITE_DONE) return sqlite::to_error(st.rc(), db.errmsg());
    return out;
  });
}

Async<int64_t> SqliteStore::prune(int64_t before) {
  return write<int64_t>([before](Db& db) -> Result<int64_t> {
    auto st = db.prepare("DELETE FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ?1");
    st.bind(1, before);
    if (auto s = done(db, st); !s) return s.take_error();
    return static_cast<int64_t>(db.changes());
  }, false);
}

Async<int64_t> SqliteStore::next_run_at(std::string queue, int64_t after_ms) {
  return read<int64_t>([queue = std::move(queue), after_ms](Db& db) -> Result<int64_t> {
    // Queued jobs are due when queued: only scheduled and retrying ones wait for a time (their
    // own index, jobs_timed).
    auto st = db.prepare(
        "SELECT MIN(run_at) FROM jobs WHERE queue = ?1 AND state IN ('scheduled', 'retrying') AND run_at > ?2 "
        "AND NOT EXISTS (SELECT 1 FROM queues WHERE name = ?1 AND paused = 1)");
    st.bind(1, queue);
    st.bind(2, after_ms);
    if (st.step()) return st.is_null(0) ? int64_t{0} : st.int64(0);
    return sqlite::to_error(st.rc(), db.errmsg());
  });
}

Async<std::vector<JobEvent>> SqliteStore::job_events(int64_t job_id, int64_t after_seq, int limit) {
  return read<std::vector<JobEvent>>([=](Db& db) -> Result<std::vector<JobEvent>> {
    auto st = db.prepare(
        "SELECT seq, type, data, created_at FROM job_events WHERE job_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3");
    st.bind(1, job_id).bind(2, after_seq).bind(3, int64_t{limit});
    std::vector<JobEvent> out;
    while (st.step()) out.push_back(JobEvent{st.int64(0), st.text(1), st.text(2), st.int64(3)});
    if (st.rc() != SQLITE_DONE) return sqlite::to_error(st.rc(), db.errmsg());
    return out;
  });
}

Async<std::vector<QueueInfo>> SqliteStore::queue_counts(int64_t since_ms) {
  return read<std::vector<QueueInfo>>([since_ms](Db& db) -> Result<std::vector<QueueInfo>> {
    std::map<std::string, QueueInfo> by;
    // Each reads one partial index: waiting jobs (jobs_runnable), running ones (jobs_leases),
    // the window's finished ones (jobs_finished, covering). No index serves counting alone, so
    // claims and finishes pay for none: the cost is in proportion to the active jobs.
    for (const char* sql : {"SELECT queue, state, COUNT(*) FROM jobs INDEXED BY jobs_runnable "
                            "WHERE state IN ('queued', 'scheduled', 'retrying') GROUP BY queue, state",
                            "SELECT queue, state, COUNT(*) FROM jobs INDEXED BY jobs_leases WHERE state = 'running' "
                            "GROUP BY queue, state"}) {
      auto active = db.prepare(sql);
      while (active.step()) set_count(by[active.text(0)], active.text(1), active.int64(2));
      if (active.rc() != SQLITE_DONE) return sqlite::to_error(active.rc(), db.errmsg());
    }
    auto recent = db.prepare(
        "SELECT queue, state, COUNT(*) FROM jobs INDEXED BY jobs_finished "
        "WHERE finished_at IS NOT NULL AND finished_at >= ?1 GROUP BY queue, state");
    recent.bind(1, since_ms);
    while (recent.step()) set_count(by[recent.text(0)], recent.text(1), recent.int64(2));
    if (recent.rc() != SQLITE_DONE) return sqlite::to_error(recent.rc(), db.errmsg());
    auto paused = db.prepare("SELECT name, paused FROM queues");
    while (paused.step()) by[paused.text(0)].paused = paused.int64(1) != 0;
    if (paused.rc() != SQLITE_DONE) return sqlite::to_error(paused.rc(), db.errmsg());
    std::vector<QueueInfo> out;
    for (auto& [name, q] : by) {
      q.name = name;
      out.push_back(std::move(q));
    }
    return out;
  });
}

Async<Unit> SqliteStore::set_paused(std::string queue, bool paused, int64_t now) {
  return write<Unit>([queue = std::move(queue), paused, now](Db& db) -> Result<Unit> {
    auto st = db.prepare(
        "INSERT INTO queues (name, paused, updated_at) VALUES (?1, ?2, ?3) "
        "ON CONFLICT (name) DO UPDATE SET paused = ?2, updated_at = ?3");
    st.bind(1, queue).bind(2, int64_t{paused}).bind(3, now);
    if (auto s = done(db, st); !s) return s.take_error();
    return Unit{};
  }, false);
}

Async<std::vector<queue::ScheduleMark>> SqliteStore::schedule_marks() {
  return read<std::vector<queue::ScheduleMark>>([](Db& db) -> Result<std::vector<queue::ScheduleMark>> {
    auto st = db.prepare("SELECT name, last_slot FROM schedules");
    std::vector<queue::ScheduleMark> out;
    while (st.step()) out.push_back({st.text(0), st.int64(1)});
    if (st.rc() != SQLITE_DONE) return sqlite::to_error(st.rc(), db.errmsg());
    return out;
  });
}

Async<Unit> SqliteStore::set_schedule_mark(std::string name, int64_t slot_ms) {
  return write<Unit>([name = std::move(name), slot_ms](Db& db) -> Result<Unit> {
    auto st = db.prepare(
        "INSERT INTO schedules (name, last_slot) VALUES (?1, ?2) "
        "ON CONFLICT (name) DO UPDATE SET last_slot = MAX(last_slot, ?2)");
    st.bind(1, name).bind(2, slot_ms);
    if (auto s = done(db, st); !s) return s.take_error();
    return Unit{};
  }, false);
}

}  // namespace creatord
