// The job queue on SQLite. All changes go through the single writer; claims and completions
// from many workers are grouped into one transaction by the writer's batching.
#include <sqlite3.h>

#include <boost/json.hpp>

#include "core/clock.hpp"
#include "mail/email.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "store/sqlite/sqlite_store_ops.hpp"

namespace creatord {

using sqlite::Db;
using sqlite::Stmt;

namespace {

#define JOB_COLUMNS                                                                              \
  "id, kind, queue, payload, state, priority, run_at, attempt, max_attempts, timeout_ms, progress, " \
  "result, last_error, idempotency_key, creator_id, cancel_requested, created_at, updated_at, "     \
  "started_at, finished_at"

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
  return j;
}

Error not_found_job(int64_t id) { return Error::make(ErrorCode::not_found, fmt::format("job {} does not exist", id)); }

void add_event(Db& db, int64_t job_id, std::string_view type, const boost::json::object& data, int64_t now) {
  auto st = db.prepare(
      "INSERT INTO job_events (job_id, seq, type, data, created_at) VALUES "
      "(?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM job_events WHERE job_id = ?1), ?2, ?3, ?4)");
  st.bind(1, job_id).bind(2, type).bind(3, boost::json::serialize(data)).bind(4, now);
  st.run();
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
  if (with_steps) {
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
  }
  return j;
}

// The fence: this worker still holds this attempt of a running job.
bool fenced(Db& db, int64_t id, int attempt, const std::string& owner) {
  auto st = db.prepare("SELECT 1 FROM jobs WHERE id = ?1 AND attempt = ?2 AND lease_owner = ?3 AND state = 'running'");
  st.bind(1, id).bind(2, int64_t{attempt}).bind(3, owner);
  return st.step();
}

Result<Job> insert_job(Db& db, const NewJob& n, int64_t now, bool* created) {
  if (n.idempotency_key) {
    auto st = db.prepare("SELECT id FROM jobs WHERE kind = ?1 AND idempotency_key = ?2");
    st.bind(1, n.kind).bind(2, *n.idempotency_key);
    if (st.step()) {
      *created = false;
      return load_job(db, st.int64(0), true);
    }
  }
  auto st = db.prepare(
      "INSERT INTO jobs (kind, queue, payload, state, priority, run_at, max_attempts, timeout_ms, "
      "idempotency_key, creator_id, created_at, updated_at) "
      "VALUES (?1, ?2, ?3, 'queued', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)");
  st.bind(1, n.kind).bind(2, n.queue).bind(3, boost::json::serialize(n.payload)).bind(4, int64_t{n.priority});
  st.bind(5, n.run_at_ms > 0 ? n.run_at_ms : now).bind(6, int64_t{n.max_attempts}).bind(7, n.timeout_ms);
  st.bind(8, n.idempotency_key);
  if (n.creator_id) st.bind(9, *n.creator_id);
  st.bind(10, now);
  int rc = st.run();
  if (rc != SQLITE_DONE) return sqlite::to_error(rc, db.errmsg());
  int64_t id = db.last_insert_rowid();
  for (size_t i = 0; i < n.steps.size(); ++i) {
    auto s = db.prepare("INSERT OR IGNORE INTO job_steps (job_id, position, name) VALUES (?1, ?2, ?3)");
    s.bind(1, id).bind(2, static_cast<int64_t>(i)).bind(3, n.steps[i]);
    s.run();
  }
  *created = true;
  return Job{.id = id};
}


Email email_from_row(const Stmt& st) {
  Email e;
  e.id = st.int64(0);
  e.state = st.text(1);
  e.from = st.text(2);
  auto r = parse_json_text(st.text(3));
  auto list = [&](const char* k) {
    std::vector<std::string> out;
    if (r.is_object() && r.as_object().contains(k))
      for (const auto& v : r.as_object().at(k).as_array()) out.emplace_back(v.as_string());
    return out;
  };
  e.to = list("to");
  e.cc = list("cc");
  e.bcc = list("bcc");
  if (!st.is_null(4)) e.reply_to = st.text(4);
  e.subject = st.text(5);
  if (!st.is_null(6)) e.text = st.text(6);
  if (!st.is_null(7)) e.html = st.text(7);
  e.message_id = st.text(8);
  if (!st.is_null(9)) e.idempotency_key = st.text(9);
  if (!st.is_null(10)) e.job_id = st.int64(10);
  e.attempts = static_cast<int>(st.int64(11));
  e.last_error = st.text(12);
  e.smtp_reply = st.text(13);
  e.created_at_ms = st.int64(14);
  e.updated_at_ms = st.int64(15);
  e.sent_at_ms = st.is_null(16) ? 0 : st.int64(16);
  return e;
}

Result<Email> load_email(Db& db, int64_t id) {
  auto st = db.prepare(
      "SELECT id, state, from_addr, recipients, reply_to, subject, text_body, html_body, message_id, "
      "idempotency_key, job_id, attempts, last_error, smtp_reply, created_at, updated_at, sent_at FROM emails "
      "WHERE id = ?1");
  st.bind(1, id);
  if (st.step()) return email_from_row(st);
  if (st.rc() != SQLITE_DONE) return sqlite::to_error(st.rc(), db.errmsg());
  return Error::make(ErrorCode::not_found, fmt::format("email {} does not exist", id));
}

}  // namespace

Async<EmailAccepted> SqliteStore::create_email(Email e, NewJob delivery) {
  return write<EmailAccepted>([e = std::move(e), delivery = std::move(delivery)](Db& db) mutable -> Result<EmailAccepted> {
    int64_t now = now_ms();
    if (e.idempotency_key) {
      auto st = db.prepare("SELECT id FROM emails WHERE idempotency_key = ?1");
      st.bind(1, *e.idempotency_key);
      if (st.step()) {
        auto old = load_email(db, st.int64(0));
        if (!old) return old.take_error();
        return EmailAccepted{std::move(old.value()), false};
      }
    }
    auto list = [](const std::vector<std::string>& v) {
      boost::json::array a;
      for (const auto& s : v) a.emplace_back(s);
      return a;
    };
    boost::json::object recipients{{"to", list(e.to)}, {"cc", list(e.cc)}, {"bcc", list(e.bcc)}};
    auto st = db.prepare(
        "INSERT INTO emails (state, from_addr, recipients, reply_to, subject, text_body, html_body, message_id, "
        "idempotency_key, created_at, updated_at) VALUES ('queued', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)");
    st.bind(1, e.from).bind(2, boost::json::serialize(recipients)).bind(3, e.reply_to).bind(4, e.subject);
    st.bind(5, e.text).bind(6, e.html).bind(7, e.message_id).bind(8, e.idempotency_key).bind(9, now);
    if (int rc = st.run(); rc != SQLITE_DONE) return sqlite::to_error(rc, db.errmsg());
    int64_t id = db.last_insert_rowid();
    delivery.payload = boost::json::object{{"email_id", id}};
    bool created = false;
    auto job = insert_job(db, delivery, now, &created);
    if (!job) return job.take_error();
    add_event(db, job->id, "job.queued", {{"state", "queued"}}, now);
    auto link = db.prepare("UPDATE emails SET job_id = ?2 WHERE id = ?1");
    link.bind(1, id).bind(2, job->id);
    link.run();
    auto stored = load_email(db, id);
    if (!stored) return stored.take_error();
    return EmailAccepted{std::move(stored.value()), true};
  });
}

Async<Email> SqliteStore::get_email(int64_t id) {
  return read<Email>([id](Db& db) { return load_email(db, id); });
}

Async<Page<Email>> SqliteStore::list_emails(std::optional<std::string> state, PageQuery q) {
  return read<Page<Email>>([state = std::move(state), q = std::move(q)](Db& db) -> Result<Page<Email>> {
    auto st = db.prepare(
        "SELECT id, state, from_addr, recipients, reply_to, subject, text_body, html_body, message_id, "
        "idempotency_key, job_id, attempts, last_error, smtp_reply, created_at, updated_at, sent_at FROM emails "
        "WHERE id < ?1 AND (?2 IS NULL OR state = ?2) ORDER BY id DESC LIMIT ?3");
    st.bind(1, q.before_id.value_or(INT64_MAX)).bind(2, state).bind(3, int64_t{q.limit} + 1);
    Page<Email> page;
    while (st.step()) page.items.push_back(email_from_row(st));
    if (st.rc() != SQLITE_DONE) return sqlite::to_error(st.rc(), db.errmsg());
    page.trim_to(q.limit);
    return page;
  });
}

Async<Email> SqliteStore::update_email(EmailUpdate u) {
  return write<Email>([u = std::move(u)](Db& db) -> Result<Email> {
    int64_t now = now_ms();
    auto st = db.prepare(
        "UPDATE emails SET state = ?2, attempts = attempts + ?3, last_error = COALESCE(?4, last_error), "
        "smtp_reply = COALESCE(?5, smtp_reply), updated_at = ?6, "
        "sent_at = CASE WHEN ?2 = 'sent' THEN ?6 ELSE sent_at END WHERE id = ?1");
    st.bind(1, u.id).bind(2, u.state).bind(3, int64_t{u.count_attempt ? 1 : 0}).bind(4, u.last_error);
    st.bind(5, u.smtp_reply).bind(6, now);
    if (int rc = st.run(); rc != SQLITE_DONE) return sqlite::to_error(rc, db.errmsg());
    return load_email(db, u.id);
  });
}

Async<EnqueueResult> SqliteStore::enqueue(NewJob n) {
  return write<EnqueueResult>([n = std::move(n)](Db& db) -> Result<EnqueueResult> {
    int64_t now = now_ms();
    bool created = false;
    auto r = insert_job(db, n, now, &created);
    if (!r) return r.take_error();
    if (created) add_event(db, r->id, "job.queued", {{"state", "queued"}}, now);
    auto j = created ? load_job(db, r->id, true) : std::move(r);
    if (!j) return j.take_error();
    return EnqueueResult{std::move(j.value()), created};
  });
}

Async<int64_t> SqliteStore::enqueue_many(std::vector<NewJob> jobs) {
  return write<int64_t>([jobs = std::move(jobs)](Db& db) -> Result<int64_t> {
    int64_t now = now_ms(), count = 0;
    for (const auto& n : jobs) {
      bool created = false;
      auto r = insert_job(db, n, now, &created);
      if (!r) return r.take_error();
      count += created;
    }
    return count;
  });
}

Async<Job> SqliteStore::get_job(int64_t id) {
  return read<Job>([id](Db& db) { return load_job(db, id, true); });
}

Async<Page<Job>> SqliteStore::list_jobs(JobFilter f, PageQuery q) {
  return read<Page<Job>>([f = std::move(f), q = std::move(q)](Db& db) -> Result<Page<Job>> {
    auto st = db.prepare("SELECT " JOB_COLUMNS " FROM jobs WHERE id < ?1 AND (?2 IS NULL OR state = ?2) "
                         "AND (?3 IS NULL OR kind = ?3) AND (?4 IS NULL OR creator_id = ?4) "
                         "ORDER BY id DESC LIMIT ?5");
    st.bind(1, q.before_id.value_or(INT64_MAX));
    if (f.state) st.bind(2, to_string(*f.state));
    if (f.kind) st.bind(3, *f.kind);
    if (f.creator_id) st.bind(4, *f.creator_id);
    st.bind(5, int64_t{q.limit} + 1);
    Page<Job> page;
    while (st.step()) {
      page.items.push_back(job_from_row(st));
    }
    if (st.rc() != SQLITE_DONE) return sqlite::to_error(st.rc(), db.errmsg());
    page.trim_to(q.limit);
    return page;
  });
}

Async<std::vector<Job>> SqliteStore::claim(std::string queue, std::string owner, int n, int64_t lease_ms) {
  return write<std::vector<Job>>(
      [queue = std::move(queue), owner = std::move(owner), n, lease_ms](Db& db) -> Result<std::vector<Job>> {
        int64_t now = now_ms();
        auto st = db.prepare(
            "UPDATE jobs SET state = 'running', attempt = attempt + 1, lease_owner = ?2, lease_expires_at = ?3, "
            "started_at = COALESCE(started_at, ?4), updated_at = ?4 "
            "WHERE id IN (SELECT id FROM jobs WHERE queue = ?1 AND state IN ('queued', 'retrying') "
            "AND run_at <= ?4 ORDER BY priority DESC, run_at, id LIMIT ?5) "
            "RETURNING " JOB_COLUMNS);
        st.bind(1, queue).bind(2, owner).bind(3, now + lease_ms).bind(4, now).bind(5, int64_t{n});
        std::vector<Job> out;
        while (st.step()) {
          out.push_back(job_from_row(st));
        }
        if (st.rc() != SQLITE_DONE) return sqlite::to_error(st.rc(), db.errmsg());
        std::sort(out.begin(), out.end(), [](const Job& a, const Job& b) {
          return a.priority != b.priority ? a.priority > b.priority : a.id < b.id;
        });
        for (const auto& j : out) add_event(db, j.id, "job.started", {{"attempt", j.attempt}}, now);
        return out;
      });
}

Async<std::vector<int64_t>> SqliteStore::heartbeat(std::string owner, int64_t lease_ms) {
  return write<std::vector<int64_t>>([owner = std::move(owner), lease_ms](Db& db) -> Result<std::vector<int64_t>> {
    int64_t now = now_ms();
    auto renew = db.prepare("UPDATE jobs SET lease_expires_at = ?2 WHERE lease_owner = ?1 AND state = 'running'");
    renew.bind(1, owner).bind(2, now + lease_ms);
    if (int rc = renew.run(); rc != SQLITE_DONE) return sqlite::to_error(rc, db.errmsg());
    auto st = db.prepare("SELECT id FROM jobs WHERE lease_owner = ?1 AND state = 'running' AND cancel_requested = 1");
    st.bind(1, owner);
    std::vector<int64_t> ids;
    while (st.step()) ids.push_back(st.int64(0));
    return ids;
  });
}

Async<bool> SqliteStore::update_step(std::string owner, StepUpdate u) {
  return write<bool>([owner = std::move(owner), u = std::move(u)](Db& db) -> Result<bool> {
    if (!fenced(db, u.job_id, u.attempt, owner)) return false;
    int64_t now = now_ms();
    boost::json::object ev{{"step", u.step}, {"attempt", u.attempt}};
    switch (u.kind) {
      case StepUpdate::Kind::started: {
        auto st = db.prepare(
            "INSERT INTO job_steps (job_id, position, name, state, attempt, runs, started_at) "
            "VALUES (?1, 1000, ?2, 'running', ?3, 1, ?4) ON CONFLICT (job_id, name) DO UPDATE SET "
            "state = 'running', attempt = ?3, runs = runs + 1, started_at = ?4, finished_at = NULL, error = NULL");
        st.bind(1, u.job_id).bind(2, u.step).bind(3, int64_t{u.attempt}).bind(4, now);
        st.run();
        add_event(db, u.job_id, "step.started", ev, now);
        break;
      }
      case StepUpdate::Kind::progress:
        ev["progress"] = u.progress;
        if (!u.message.empty()) ev["message"] = u.message;
        add_event(db, u.job_id, "step.progress", ev, now);
        break;
      case StepUpdate::Kind::succeeded:
      case StepUpdate::Kind::failed: {
        bool ok = u.kind == StepUpdate::Kind::succeeded;
        auto st = db.prepare(
            "UPDATE job_steps SET state = ?3, finished_at = ?4, output = ?5, error = ?6, log = ?7 "
            "WHERE job_id = ?1 AND name = ?2");
        st.bind(1, u.job_id).bind(2, u.step).bind(3, ok ? "succeeded" : "failed").bind(4, now);
        if (!u.log.empty()) st.bind(7, u.log);
        if (ok) st.bind(5, boost::json::serialize(u.output));
        if (!ok) st.bind(6, u.error);
        st.run();
        ev["state"] = ok ? "succeeded" : "failed";
        if (!ok) ev["error"] = u.error;
        add_event(db, u.job_id, "step.finished", ev, now);
        break;
      }
    }
    if (u.job_progress >= 0) {
      auto st = db.prepare("UPDATE jobs SET progress = ?2, updated_at = ?3 WHERE id = ?1");
      st.bind(1, u.job_id).bind_real(2, u.job_progress).bind(3, now);
      st.run();
    }
    return true;
  });
}

Async<std::vector<bool>> SqliteStore::finish(std::string owner, std::vector<JobFinish> finishes) {
  return write<std::vector<bool>>(
      [owner = std::move(owner), finishes = std::move(finishes)](Db& db) -> Result<std::vector<bool>> {
        int64_t now = now_ms();
        std::vector<bool> out;
        out.reserve(finishes.size());
        for (const auto& f : finishes) {
          if (!fenced(db, f.job_id, f.attempt, owner)) {
            out.push_back(false);
            continue;
          }
          using K = JobFinish::Kind;
          if (f.kind == K::released) {
            // Shutdown: back to the queue, this attempt not counted.
            auto st = db.prepare(
                "UPDATE jobs SET state = 'queued', attempt = attempt - 1, lease_owner = NULL, lease_expires_at = NULL, "
                "run_at = ?2, updated_at = ?2 WHERE id = ?1");
            st.bind(1, f.job_id).bind(2, now);
            st.run();
            auto steps = db.prepare("UPDATE job_steps SET state = 'pending' WHERE job_id = ?1 AND state = 'running'");
            steps.bind(1, f.job_id);
            steps.run();
            add_event(db, f.job_id, "job.released", {{"reason", "shutdown"}}, now);
            out.push_back(true);
            continue;
          }
          bool retry = f.kind == K::failed && f.retry_at_ms > 0;
          const char* state = f.kind == K::succeeded ? "succeeded"
                              : f.kind == K::cancelled ? "cancelled"
                              : retry                  ? "retrying"
                                                       : "failed";
          auto st = db.prepare(
              "UPDATE jobs SET state = ?2, result = ?3, last_error = ?4, run_at = COALESCE(?5, run_at), "
              "finished_at = ?6, progress = CASE WHEN ?2 = 'succeeded' THEN 1.0 ELSE progress END, "
              "lease_owner = NULL, lease_expires_at = NULL, updated_at = ?7 WHERE id = ?1");
          st.bind(1, f.job_id).bind(2, state);
          if (f.kind == K::succeeded) st.bind(3, boost::json::serialize(f.result));
          if (!f.error.empty()) st.bind(4, f.error);
          if (retry) st.bind(5, f.retry_at_ms);
          if (!retry) st.bind(6, now);
          st.bind(7, now);
          if (int rc = st.run(); rc != SQLITE_DONE) return sqlite::to_error(rc, db.errmsg());
          if (f.kind != K::succeeded) {
            auto steps = db.prepare("UPDATE job_steps SET state = 'pending' WHERE job_id = ?1 AND state = 'running'");
            steps.bind(1, f.job_id);
            steps.run();
          }
          boost::json::object ev{{"state", state}, {"attempt", f.attempt}};
          if (!f.error.empty()) ev["error"] = f.error;
          if (retry) ev["run_at"] = format_rfc3339(f.retry_at_ms);
          if (f.kind == K::succeeded) ev["result"] = f.result;
          add_event(db, f.job_id, retry ? "job.retrying" : "job.finished", ev, now);
          out.push_back(true);
        }
        return out;
      });
}

Async<Job> SqliteStore::request_cancel(int64_t id) {
  return write<Job>([id](Db& db) -> Result<Job> {
    auto j = load_job(db, id, false);
    if (!j) return j;
    int64_t now = now_ms();
    if (is_terminal(j->state))
      return Error::make(ErrorCode::conflict, fmt::format("job {} is already {}", id, to_string(j->state)));
    if (j->state == JobState::running) {
      auto st = db.prepare("UPDATE jobs SET cancel_requested = 1, updated_at = ?2 WHERE id = ?1");
      st.bind(1, id).bind(2, now);
      st.run();
      add_event(db, id, "job.cancel_requested", {}, now);
    } else {
      auto st = db.prepare(
          "UPDATE jobs SET state = 'cancelled', cancel_requested = 1, finished_at = ?2, updated_at = ?2 WHERE id = ?1");
      st.bind(1, id).bind(2, now);
      st.run();
      add_event(db, id, "job.finished", {{"state", "cancelled"}}, now);
    }
    return load_job(db, id, true);
  });
}

Async<Job> SqliteStore::retry_job(int64_t id) {
  return write<Job>([id](Db& db) -> Result<Job> {
    auto j = load_job(db, id, false);
    if (!j) return j;
    if (j->state != JobState::failed && j->state != JobState::cancelled)
      return Error::make(ErrorCode::conflict,
                         fmt::format("job {} is {}; only failed or cancelled jobs can be retried", id, to_string(j->state)));
    int64_t now = now_ms();
    auto st = db.prepare(
        "UPDATE jobs SET state = 'queued', attempt = 0, run_at = ?2, cancel_requested = 0, finished_at = NULL, "
        "updated_at = ?2 WHERE id = ?1");
    st.bind(1, id).bind(2, now);
    st.run();
    auto steps = db.prepare("UPDATE job_steps SET state = 'pending', error = NULL WHERE job_id = ?1 AND state <> 'succeeded'");
    steps.bind(1, id);
    steps.run();
    add_event(db, id, "job.queued", {{"state", "queued"}, {"reason", "retry"}}, now);
    return load_job(db, id, true);
  });
}

Async<int64_t> SqliteStore::recover_jobs(bool all_running, int64_t retry_base_ms) {
  return write<int64_t>([all_running, retry_base_ms](Db& db) -> Result<int64_t> {
    int64_t now = now_ms();
    auto st = db.prepare(
        "UPDATE jobs SET "
        "state = CASE WHEN cancel_requested = 1 THEN 'cancelled' WHEN attempt >= max_attempts THEN 'failed' "
        "ELSE 'retrying' END, "
        "finished_at = CASE WHEN cancel_requested = 1 OR attempt >= max_attempts THEN ?1 ELSE NULL END, "
        "run_at = ?1 + ?3, last_error = 'the worker running it stopped (lease expired)', "
        "lease_owner = NULL, lease_expires_at = NULL, updated_at = ?1 "
        "WHERE state = 'running' AND (?2 = 1 OR lease_expires_at < ?1) RETURNING id, state");
    st.bind(1, now).bind(2, int64_t{all_running ? 1 : 0}).bind(3, retry_base_ms);
    std::vector<std::pair<int64_t, std::string>> recovered;
    while (st.step()) recovered.emplace_back(st.int64(0), st.text(1));
    if (st.rc() != SQLITE_DONE) return sqlite::to_error(st.rc(), db.errmsg());
    for (const auto& [id, state] : recovered) {
      auto steps = db.prepare("UPDATE job_steps SET state = 'pending' WHERE job_id = ?1 AND state = 'running'");
      steps.bind(1, id);
      steps.run();
      add_event(db, id, state == "retrying" ? "job.retrying" : "job.finished",
                {{"state", state}, {"error", "the worker running it stopped (lease expired)"}}, now);
    }
    return static_cast<int64_t>(recovered.size());
  });
}

Async<int64_t> SqliteStore::prune_jobs(int64_t before) {
  return write<int64_t>([before](Db& db) -> Result<int64_t> {
    auto st = db.prepare("DELETE FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ?1");
    st.bind(1, before);
    if (int rc = st.run(); rc != SQLITE_DONE) return sqlite::to_error(rc, db.errmsg());
    return static_cast<int64_t>(db.changes());
  });
}

Async<int64_t> SqliteStore::next_run_at(std::string queue) {
  return read<int64_t>([queue = std::move(queue)](Db& db) -> Result<int64_t> {
    auto st = db.prepare("SELECT MIN(run_at) FROM jobs WHERE queue = ?1 AND state IN ('queued', 'retrying')");
    st.bind(1, queue);
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

}  // namespace creatord
