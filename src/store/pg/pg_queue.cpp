// The queue driver on PostgreSQL: SQL only; the queue (src/queue/) decides every state. Claims
// use FOR UPDATE SKIP LOCKED; a batch of writes is one set-based UPDATE fenced in its WHERE, one
// INSERT of their events and one NOTIFY, so other instances' workers and SSE clients wake.
#include <map>
#include <set>

#include <boost/json.hpp>

#include "store/pg/pg_store_ops.hpp"

namespace creatord {

namespace asio = boost::asio;
namespace json = boost::json;
using namespace pgx;
using queue::Inserted;
using queue::JobWrite;
using queue::StepReset;

namespace {

#define JOB_COLS                                                                                       \
  "id, kind, queue, payload, state, priority, run_at, attempt, max_attempts, timeout_ms, progress, "  \
  "result, last_error, idempotency_key, creator_id, cancel_requested, created_at, updated_at, started_at, " \
  "finished_at, lease_owner, lease_expires_at, request_hash, manual_retries"

// A CTE body that sends the ids of the rows of X on creatord_job (other instances' SSE clients
// and ?wait= requests wake), 400 ids per notification so none exceeds PostgreSQL's 8000-byte
// payload. A CTE runs only when read: the statement's last SELECT counts its rows.
#define NOTIFY_JOBS(X)                                                                                           \
  "(SELECT pg_notify('creatord_job', string_agg(id::text, ',')) FROM (SELECT id, (row_number() OVER ()) / 400 AS g " \
  "FROM " X ") z GROUP BY g)"

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
  j.lease_owner = r.text(i, 20);
  j.lease_expires_at_ms = r.is_null(i, 21) ? 0 : r.int64(i, 21);
  j.request_hash = r.text(i, 22);
  j.manual_retries = static_cast<int>(r.int64(i, 23));
  return j;
}

// An event, and a NOTIFY so other instances' SSE clients and ?wait= requests wake.
asio::awaitable<Status> add_event(Connection& c, int64_t job_id, const char* type, const json::object& data, int64_t now) {
  std::string text = json::serialize(data);
  auto r = co_await q(c,
                      "INSERT INTO creatord.job_events (job_id, seq, type, data, created_at) VALUES "
                      "($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM creatord.job_events WHERE job_id = $1), $2, $3, $4)",
                      job_id, type, text, now);
  if (!r) co_return r.take_error();
  auto n = co_await q(c, "SELECT pg_notify('creatord_job', $1)", std::to_string(job_id));
  if (!n) co_return n.take_error();
  co_return ok_status();
}

asio::awaitable<Result<Job>> load_job(Connection& c, int64_t id, bool with_steps) {
  auto r = co_await q(c, "SELECT " JOB_COLS " FROM creatord.jobs WHERE id = $1", id);
  if (!r) co_return r.take_error();
  if (r->size() == 0) co_return not_found(fmt::format("job {} does not exist", id));
  Job j = job_at(r.value(), 0);
  if (!with_steps) co_return j;
  auto s = co_await q(c,
                      "SELECT name, state, attempt, started_at, finished_at, output, error, log FROM creatord.job_steps "
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
  co_return j;
}

// The fence of a worker's write, holding the job's row lock until the transaction ends.
asio::awaitable<Result<bool>> fenced(Connection& c, int64_t id, int attempt, const std::string& owner) {
  auto r = co_await q(c,
                      "SELECT 1 FROM creatord.jobs WHERE id = $1 AND attempt = $2 AND lease_owner = $3 AND state = 'running' "
                      "FOR UPDATE",
                      id, attempt, owner);
  if (!r) co_return r.take_error();
  co_return r->size() == 1;
}

// A live job holding the unique key (locked), if any; an expired holder's key is released.
asio::awaitable<Result<std::optional<int64_t>>> holder_of(Connection& c, const NewJob& n, int64_t now) {
  auto r = co_await q(c, "SELECT id, created_at FROM creatord.jobs WHERE unique_key = $1 FOR UPDATE", n.unique_key);
  if (!r) co_return r.take_error();
  if (r->size() == 0) co_return std::optional<int64_t>{};
  int64_t id = r->int64(0, 0);
  if (r->int64(0, 1) >= now - n.unique_ttl_ms) co_return std::optional<int64_t>{id};
  auto release = co_await q(c, "UPDATE creatord.jobs SET unique_key = NULL WHERE id = $1", id);
  if (!release) co_return release.take_error();
  co_return std::optional<int64_t>{};
}

// Counts n's principal's and creator's unfinished jobs (partial indexes) and applies the rule.
// A transaction-scoped advisory lock per principal and per creator (always in that order, so no
// two inserts wait on each other in a cycle) makes the count and the insert one step for every
// instance: two requests cannot both see the last free place. The count is a statement of its
// own, after the lock: its snapshot (READ COMMITTED) then sees every insert committed before.
template <class Key>
asio::awaitable<Result<int64_t>> locked_count(Connection& c, std::string lock_key, const char* sql, Key key) {
  if (auto l = co_await q(c, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", lock_key); !l) co_return l.take_error();
  auto r = co_await q(c, sql, key);
  if (!r) co_return r.take_error();
  co_return r->int64(0, 0);
}

asio::awaitable<Status> check_quota(Connection& c, const NewJob& n) {
  int64_t by_principal = 0, by_creator = 0;
  if (n.max_unfinished_by_principal > 0 && !n.enqueued_by.empty()) {
    auto counted = co_await locked_count(
        c, "creatord.quota.principal." + n.enqueued_by,
        "SELECT count(*) FROM creatord.jobs WHERE enqueued_by = $1 AND " CREATORD_UNFINISHED_STATES, n.enqueued_by);
    if (!counted) co_return counted.take_error();
    by_principal = counted.value();
  }
  if (n.max_unfinished_by_creator > 0 && n.creator_id) {
    auto counted = co_await locked_count(
        c, "creatord.quota.creator." + std::to_string(*n.creator_id),
        "SELECT count(*) FROM creatord.jobs WHERE creator_id = $1 AND " CREATORD_UNFINISHED_STATES, *n.creator_id);
    if (!counted) co_return counted.take_error();
    by_creator = counted.value();
  }
  co_return queue::check_quota(n, by_principal, by_creator);
}

using Column = std::vector<std::optional<std::string>>;
std::optional<std::string> S(int64_t v) { return std::to_string(v); }
std::optional<std::string> B(bool v) { return std::string(v ? "t" : "f"); }

const char* reset_name(StepReset r) {
  switch (r) {
    case StepReset::running_to_pending: return "running_to_pending";
    case StepReset::running_to_cancelled: return "running_to_cancelled";
    case StepReset::unfinished_to_pending: return "unfinished_to_pending";
    case StepReset::none: break;
  }
  return nullptr;
}

// The writes as columns for one unnest().
struct WriteColumns {
  Column id, f_state, f_attempt, f_owner, f_expired, state, attempt, run_at, finished, max_attempts, retries, cancel,
      keep_lease, set_result, result, set_error, error, complete, steps, ev_type, ev_data, ev_at;

  explicit WriteColumns(const std::vector<JobWrite>& writes) {
    for (const auto& w : writes) {
      id.push_back(S(w.job_id));
      f_state.push_back(std::string(to_string(w.fence.state)));
      f_attempt.push_back(S(w.fence.attempt));
      f_owner.push_back(w.fence.owner);
      f_expired.push_back(S(w.fence.lease_expired_before));
      state.push_back(std::string(to_string(w.state)));
      attempt.push_back(S(w.attempt));
      run_at.push_back(S(w.run_at_ms));
      finished.push_back(w.finished_at_ms ? S(w.finished_at_ms) : std::nullopt);
      max_attempts.push_back(S(w.max_attempts));
      retries.push_back(S(w.manual_retries));
      cancel.push_back(B(w.cancel_requested));
      keep_lease.push_back(B(w.keep_lease));
      set_result.push_back(B(w.result.has_value()));
      result.push_back(w.result ? std::optional<std::string>(json::serialize(*w.result)) : std::nullopt);
      set_error.push_back(B(w.last_error.has_value()));
      error.push_back(w.last_error);
      complete.push_back(B(w.progress_complete));
      const char* reset = reset_name(w.steps);
      steps.push_back(reset ? std::optional<std::string>(reset) : std::nullopt);
      bool event = !w.event_type.empty();
      ev_type.push_back(event ? std::optional<std::string>(w.event_type) : std::nullopt);
      ev_data.push_back(event ? std::optional<std::string>(json::serialize(w.event_data)) : std::nullopt);
      ev_at.push_back(S(w.at_ms));
    }
  }
};

// The whole batch as one statement (atomic on its own, one round trip): one UPDATE, each row
// fenced in its WHERE; for the rows it changed, their steps, their events, one NOTIFY for their
// SSE clients and one per queue that has a job to claim again. Returns the ids it changed.
asio::awaitable<Result<std::set<int64_t>>> apply_writes(Connection& c, const std::vector<JobWrite>& writes, int64_t now) {
  WriteColumns w(writes);
  std::string a[22] = {text_array(w.id),       text_array(w.f_state),      text_array(w.f_attempt),
                       text_array(w.f_owner),  text_array(w.f_expired),    text_array(w.state),
                       text_array(w.attempt),  text_array(w.run_at),       text_array(w.finished),
                       text_array(w.max_attempts), text_array(w.retries),  text_array(w.cancel),
                       text_array(w.keep_lease), text_array(w.set_result), text_array(w.result),
                       text_array(w.set_error), text_array(w.error),       text_array(w.complete),
                       text_array(w.steps),    text_array(w.ev_type),      text_array(w.ev_data),
                       text_array(w.ev_at)};
  auto r = co_await q(c,
                      "WITH w AS (SELECT * FROM unnest($1::bigint[], $2::text[], $3::int[], $4::text[], $5::bigint[], "
                      "$6::text[], $7::int[], $8::bigint[], $9::bigint[], $10::int[], $11::int[], $12::bool[], $13::bool[], "
                      "$14::bool[], $15::text[], $16::bool[], $17::text[], $18::bool[], $19::text[], $20::text[], $21::text[], "
                      "$22::bigint[]) AS w(id, f_state, f_attempt, f_owner, f_expired, state, attempt, run_at, finished, "
                      "max_attempts, retries, cancel, keep_lease, set_result, result, set_error, error, complete, steps, "
                      "ev_type, ev_data, ev_at)), "
                      "u AS (UPDATE creatord.jobs j SET state = w.state, attempt = w.attempt, run_at = w.run_at, "
                      "finished_at = w.finished, max_attempts = w.max_attempts, manual_retries = w.retries, "
                      "cancel_requested = w.cancel, "
                      "lease_owner = CASE WHEN w.keep_lease THEN j.lease_owner END, "
                      "lease_expires_at = CASE WHEN w.keep_lease THEN j.lease_expires_at END, "
                      "result = CASE WHEN w.set_result THEN w.result ELSE j.result END, "
                      "last_error = CASE WHEN w.set_error THEN w.error ELSE j.last_error END, "
                      "progress = CASE WHEN w.complete THEN 1.0 ELSE j.progress END, updated_at = $23 FROM w "
                      "WHERE j.id = w.id AND j.state = w.f_state AND j.attempt = w.f_attempt "
                      "AND (w.f_owner IS NULL OR j.lease_owner = w.f_owner) "
                      "AND (w.f_expired = 0 OR j.lease_expires_at < w.f_expired) RETURNING j.id, j.queue, j.state), "
                      "s1 AS (UPDATE creatord.job_steps s SET state = 'pending' FROM w JOIN u ON u.id = w.id "
                      "WHERE w.steps = 'running_to_pending' AND s.job_id = w.id AND s.state = 'running'), "
                      "s2 AS (UPDATE creatord.job_steps s SET state = 'cancelled', error = 'cancelled' FROM w JOIN u ON u.id = w.id "
                      "WHERE w.steps = 'running_to_cancelled' AND s.job_id = w.id AND s.state = 'running'), "
                      "s3 AS (UPDATE creatord.job_steps s SET state = 'pending', error = NULL FROM w JOIN u ON u.id = w.id "
                      "WHERE w.steps = 'unfinished_to_pending' AND s.job_id = w.id AND s.state <> 'succeeded'), "
                      "ev AS (INSERT INTO creatord.job_events (job_id, seq, type, data, created_at) "
                      "SELECT w.id, (SELECT COALESCE(MAX(x.seq), 0) + 1 FROM creatord.job_events x WHERE x.job_id = w.id), "
                      "w.ev_type, w.ev_data, w.ev_at FROM w JOIN u ON u.id = w.id WHERE w.ev_type IS NOT NULL), "
                      "told AS " NOTIFY_JOBS("u") ", "
                      "wake AS (SELECT pg_notify('creatord_queue', queue) FROM (SELECT DISTINCT queue FROM u "
                      "WHERE state IN ('queued', 'scheduled', 'retrying')) qs) "
                      "SELECT id FROM u WHERE (SELECT count(*) FROM told) >= 0 AND (SELECT count(*) FROM wake) >= 0",
                      a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13], a[14],
                      a[15], a[16], a[17], a[18], a[19], a[20], a[21], now);
  if (!r) co_return r.take_error();
  std::set<int64_t> changed;
  for (int i = 0; i < r->size(); ++i) changed.insert(r->int64(i, 0));
  co_return changed;
}

// Jobs as one statement (no transaction of its own, no round trip per job): ids from the
// sequence, the jobs, their steps and first events, and one NOTIFY per queue. A job whose unique
// key is taken is not inserted (it is absent from the answer). Returns, in the order given, the
// inserted jobs' JOB_COLS for one job, their id, kind, queue and state for a batch.
asio::awaitable<Result<Rows>> insert_rows(Connection& c, const std::vector<NewJob>& jobs, int64_t now) {
  Column kind, queue, payload, state, priority, run_at, attempts, timeout, key, creator, hash, unique, by;
  Column step_n, step_pos, step_name;
  for (size_t i = 0; i < jobs.size(); ++i) {
    const NewJob& n = jobs[i];
    int64_t at = n.run_at_ms > 0 ? n.run_at_ms : now;
    kind.push_back(n.kind);
    queue.push_back(n.queue);
    payload.push_back(json::serialize(n.payload));
    state.push_back(std::string(to_string(queue::initial_state(at, now))));
    priority.push_back(S(n.priority));
    run_at.push_back(S(at));
    attempts.push_back(S(n.max_attempts));
    timeout.push_back(S(n.timeout_ms));
    key.push_back(n.idempotency_key);
    creator.push_back(n.creator_id ? S(*n.creator_id) : std::nullopt);
    hash.push_back(n.request_hash);
    unique.push_back(n.unique_key);
    by.push_back(n.enqueued_by.empty() ? std::nullopt : std::optional<std::string>(n.enqueued_by));
    for (size_t p = 0; p < n.steps.size(); ++p) {
      step_n.push_back(S(static_cast<int64_t>(i + 1)));
      step_pos.push_back(S(static_cast<int64_t>(p)));
      step_name.push_back(n.steps[p]);
    }
  }
  std::string a[16] = {text_array(kind),    text_array(queue),   text_array(payload),  text_array(state),
                       text_array(priority), text_array(run_at), text_array(attempts), text_array(timeout),
                       text_array(key),     text_array(creator), text_array(hash),     text_array(unique),
                       text_array(by),      text_array(step_n),  text_array(step_pos), text_array(step_name)};
  // A batch answers with what enqueue_many reads (id, kind, queue, state): not every column of
  // every job back over the wire.
  static const std::string head =
      "WITH src AS (SELECT nextval('creatord.jobs_id_seq') AS id, u.* FROM unnest($1::text[], $2::text[], $3::text[], "
      "$4::text[], $5::int[], $6::bigint[], $7::int[], $8::bigint[], $9::text[], $10::bigint[], $11::text[], $12::text[], "
      "$13::text[]) WITH ORDINALITY AS u(kind, queue, payload, state, priority, run_at, max_attempts, timeout_ms, "
      "idempotency_key, creator_id, request_hash, unique_key, enqueued_by, n)), "
      "ins AS (INSERT INTO creatord.jobs (id, kind, queue, payload, state, priority, run_at, max_attempts, timeout_ms, "
      "idempotency_key, creator_id, request_hash, unique_key, enqueued_by, created_at, updated_at) "
      "SELECT id, kind, queue, payload, state, priority, run_at, max_attempts, timeout_ms, idempotency_key, creator_id, "
      "request_hash, unique_key, enqueued_by, $14, $14 FROM src ORDER BY n "
      "ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL DO NOTHING RETURNING " JOB_COLS "), "
      "st AS (INSERT INTO creatord.job_steps (job_id, position, name) SELECT ins.id, s.position, s.name FROM ins "
      "JOIN src ON src.id = ins.id JOIN unnest($15::bigint[], $16::int[], $17::text[]) AS s(n, position, name) "
      "ON s.n = src.n ON CONFLICT DO NOTHING), "
      "ev AS (INSERT INTO creatord.job_events (job_id, seq, type, data, created_at) SELECT id, 1, "
      "CASE WHEN state = 'scheduled' THEN $18 ELSE $19 END, json_build_object('state', state)::text, $14 FROM ins), "
      "wake AS (SELECT pg_notify('creatord_queue', queue) FROM (SELECT DISTINCT queue FROM ins) qs) "
      "SELECT ";
  static const std::string tail = " FROM ins JOIN src ON src.id = ins.id WHERE (SELECT count(*) FROM wake) >= 0 ORDER BY src.n";
  static const std::string one = head + "ins.*" + tail, many = head + "ins.id, ins.kind, ins.queue, ins.state" + tail;
  const char* sql = jobs.size() == 1 ? one.c_str() : many.c_str();
  co_return co_await q(c, sql,
      a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], now, a[13], a[14], a[15],
      job_event::scheduled, job_event::queued);
}

// The steps of a job just inserted, as load_job reads them (pending; a repeated name once).
std::vector<StepRecord> new_steps(const NewJob& n) {
  std::vector<StepRecord> out;
  std::set<std::string> seen;
  for (const auto& name : n.steps) {
    if (!seen.insert(name).second) continue;
    StepRecord st;
    st.name = name;
    st.state = "pending";
    out.push_back(std::move(st));
  }
  return out;
}

}  // namespace

namespace pgx {

asio::awaitable<Result<Inserted>> insert_job(Connection& c, const NewJob& n, int64_t now) {
  if (n.unique_key) {
    auto holder = co_await holder_of(c, n, now);
    if (!holder) co_return holder.take_error();
    if (holder.value()) {
      auto existing = co_await load_job(c, *holder.value(), true);
      if (!existing) co_return existing.take_error();
      co_return Inserted{std::move(existing.value()), false};
    }
  }
  if (queue::has_quota(n))
    if (auto s = co_await check_quota(c, n); !s) co_return s.take_error();
  std::vector<NewJob> one{n};
  auto r = co_await insert_rows(c, one, now);
  if (!r) co_return r.take_error();
  if (r->size() == 0) co_return Error::make(ErrorCode::unavailable, "a job with this idempotency key is being created; retry");
  Job j = job_at(r.value(), 0);
  j.steps = new_steps(n);
  co_return Inserted{std::move(j), true};
}

}  // namespace pgx

namespace {

bool any_unique(const std::vector<NewJob>& jobs) {
  return std::any_of(jobs.begin(), jobs.end(), [](const NewJob& n) { return n.unique_key.has_value(); });
}

bool any_quota(const std::vector<NewJob>& jobs) {
  return std::any_of(jobs.begin(), jobs.end(), [](const NewJob& n) { return queue::has_quota(n); });
}

}  // namespace

Async<std::vector<Inserted>> PgStore::insert(std::vector<NewJob> jobs, int64_t now) {
  if (!any_unique(jobs) && !any_quota(jobs)) {
    // One statement: atomic on its own, one round trip for the whole batch.
    co_return co_await with_conn<std::vector<Inserted>>([&jobs, now](Connection& c)
                                                           -> asio::awaitable<Result<std::vector<Inserted>>> {
      auto r = co_await insert_rows(c, jobs, now);
      if (!r) co_return r.take_error();
      std::vector<Inserted> out;
      out.reserve(jobs.size());
      for (int i = 0; i < r->size(); ++i) {
        Job j;
        if (jobs.size() == 1) {  // a single enqueue answers with the whole job
          j = job_at(r.value(), i);
          j.steps = new_steps(jobs[0]);
        } else {
          j.id = r->int64(i, 0);
          j.kind = r->text(i, 1);
          j.queue = r->text(i, 2);
          j.state = parse_job_state(r->text(i, 3)).value_or(JobState::queued);
        }
        out.push_back(Inserted{std::move(j), true});
      }
      co_return out;
    });
  }
  // Unique keys and quotas take locks and read before they insert: a transaction, job by job.
  co_return co_await in_tx<std::vector<Inserted>>([&jobs, now](Connection& c)
                                                     -> asio::awaitable<Result<std::vector<Inserted>>> {
    std::vector<Inserted> out;
    out.reserve(jobs.size());
    for (const auto& n : jobs) {
      auto r = co_await insert_job(c, n, now);
      if (!r) co_return r.take_error();
      out.push_back(std::move(r.value()));
    }
    co_return out;
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
                        "SELECT " JOB_COLS " FROM creatord.jobs WHERE id < $1 AND ($2::text IS NULL OR state = $2) "
                        "AND ($3::text IS NULL OR kind = $3) AND ($4::bigint IS NULL OR creator_id = $4) "
                        "AND ($6::text IS NULL OR queue = $6) AND ($7::text IS NULL OR kind <> $7) ORDER BY id DESC LIMIT $5",
                        before, state, f.kind, f.creator_id, limit, f.queue, f.exclude_kind);
    if (!r) co_return r.take_error();
    Page<Job> page;
    for (int i = 0; i < r->size(); ++i) page.items.push_back(job_at(r.value(), i));
    page.trim_to(pq.limit);
    co_return page;
  });
}

Async<std::vector<Job>> PgStore::claim(std::string queue, std::string owner, int n, int64_t lease_ms,
                                       const Clock& clock) {
  // One statement, one round trip: the claim, a job.started event per job, the notification.
  return with_conn<std::vector<Job>>([queue = std::move(queue), owner = std::move(owner), n, lease_ms,
                                      &clock](Connection& c) -> asio::awaitable<Result<std::vector<Job>>> {
    int64_t now = clock.now_ms(), lease_until = now + lease_ms;
    auto r = co_await q(c,
                        "WITH c AS (UPDATE creatord.jobs SET state = 'running', attempt = attempt + 1, lease_owner = $2, "
                        "lease_expires_at = $3, started_at = COALESCE(started_at, $4), updated_at = $4 "
                        "WHERE id IN (SELECT id FROM creatord.jobs WHERE queue = $1 AND state IN ('queued', 'scheduled', 'retrying') "
                        "AND run_at <= $4 AND NOT EXISTS (SELECT 1 FROM creatord.queues WHERE name = $1 AND paused) "
                        "ORDER BY priority DESC, run_at, id LIMIT $5 FOR UPDATE SKIP LOCKED) "
                        "RETURNING " JOB_COLS "), "
                        "ev AS (INSERT INTO creatord.job_events (job_id, seq, type, data, created_at) "
                        "SELECT c.id, (SELECT COALESCE(MAX(e.seq), 0) + 1 FROM creatord.job_events e WHERE e.job_id = c.id), "
                        "$6, json_build_object('attempt', c.attempt)::text, $4 FROM c), "
                        "told AS " NOTIFY_JOBS("c") " "
                        "SELECT c.* FROM c WHERE (SELECT count(*) FROM told) >= 0",
                        queue, owner, lease_until, now, n, job_event::started);
    if (!r) co_return r.take_error();
    std::vector<Job> out;
    for (int i = 0; i < r->size(); ++i) out.push_back(job_at(r.value(), i));
    std::sort(out.begin(), out.end(), [](const Job& a, const Job& b) {
      return a.priority != b.priority ? a.priority > b.priority : a.id < b.id;
    });
    co_return out;
  });
}

Async<std::vector<int64_t>> PgStore::heartbeat(std::string owner, int64_t lease_ms, const Clock& clock) {
  return in_tx<std::vector<int64_t>>([owner = std::move(owner), lease_ms, &clock](Connection& c)
                                         -> asio::awaitable<Result<std::vector<int64_t>>> {
    int64_t lease_until = clock.now_ms() + lease_ms;
    auto r = co_await q(c,
                        "UPDATE creatord.jobs SET lease_expires_at = $2 WHERE lease_owner = $1 AND state = 'running' "
                        "RETURNING id, cancel_requested",
                        owner, lease_until);
    if (!r) co_return r.take_error();
    std::vector<int64_t> ids;
    for (int i = 0; i < r->size(); ++i)
      if (r->text(i, 1) == "t") ids.push_back(r->int64(i, 0));
    co_return ids;
  });
}

Async<bool> PgStore::update_step(std::string owner, StepUpdate u, int64_t now) {
  return in_tx<bool>([owner = std::move(owner), u = std::move(u), now](Connection& c) -> asio::awaitable<Result<bool>> {
    auto ours = co_await fenced(c, u.job_id, u.attempt, owner);
    if (!ours || !ours.value()) co_return ours;
    using K = StepUpdate::Kind;
    if (u.kind == K::started) {
      auto r = co_await q(c,
                          "INSERT INTO creatord.job_steps (job_id, position, name, state, attempt, runs, started_at) "
                          "VALUES ($1, 1000, $2, 'running', $3, 1, $4) ON CONFLICT (job_id, name) DO UPDATE SET "
                          "state = 'running', attempt = $3, runs = job_steps.runs + 1, started_at = $4, "
                          "finished_at = NULL, error = NULL",
                          u.job_id, u.step, u.attempt, now);
      if (!r) co_return r.take_error();
    } else if (u.kind != K::progress) {
      std::optional<std::string> output, error, log;
      if (u.kind == K::succeeded) output = json::serialize(u.output);
      else error = u.error;
      if (!u.log.empty()) log = u.log;
      const char* state = u.kind == K::succeeded ? "succeeded" : u.kind == K::failed ? "failed" : "cancelled";
      auto r = co_await q(c,
                          "UPDATE creatord.job_steps SET state = $3, finished_at = $4, output = $5, error = $6, log = $7 "
                          "WHERE job_id = $1 AND name = $2",
                          u.job_id, u.step, state, now, output, error, log);
      if (!r) co_return r.take_error();
    }
    auto [type, data] = queue::step_event(u);
    if (auto e = co_await add_event(c, u.job_id, type, data, now); !e) co_return e.take_error();
    if (u.job_progress >= 0) {
      auto r = co_await q(c, "UPDATE creatord.jobs SET progress = $2, updated_at = $3 WHERE id = $1", u.job_id, u.job_progress, now);
      if (!r) co_return r.take_error();
    }
    co_return true;
  });
}

Async<std::vector<bool>> PgStore::apply(std::vector<JobWrite> writes) {
  return with_conn<std::vector<bool>>([writes = std::move(writes)](Connection& c) -> asio::awaitable<Result<std::vector<bool>>> {
    std::vector<bool> out(writes.size(), false);
    if (writes.empty()) co_return out;
    auto changed = co_await apply_writes(c, writes, writes.front().at_ms);
    if (!changed) co_return changed.take_error();
    for (size_t i = 0; i < writes.size(); ++i) out[i] = changed->count(writes[i].job_id) > 0;
    co_return out;
  });
}

Async<std::vector<Job>> PgStore::running_jobs(int64_t now, bool all_running, int limit) {
  return with_conn<std::vector<Job>>([=](Connection& c) -> asio::awaitable<Result<std::vector<Job>>> {
    auto r = co_await q(c,
                        "SELECT " JOB_COLS " FROM creatord.jobs WHERE state = 'running' AND ($1 OR lease_expires_at < $2) "
                        "ORDER BY id LIMIT $3",
                        all_running, now, limit);
    if (!r) co_return r.take_error();
    std::vector<Job> out;
    for (int i = 0; i < r->size(); ++i) out.push_back(job_at(r.value(), i));
    co_return out;
  });
}

Async<int64_t> PgStore::prune(int64_t before) {
  return in_tx<int64_t>([before](Connection& c) -> asio::awaitable<Result<int64_t>> {
    // Events and steps have no foreign key (migration 7): deleted here, with their jobs.
    auto r = co_await q(c,
                        "WITH d AS (DELETE FROM creatord.jobs WHERE finished_at IS NOT NULL AND finished_at < $1 RETURNING id), "
                        "e AS (DELETE FROM creatord.job_events WHERE job_id IN (SELECT id FROM d)), "
                        "s AS (DELETE FROM creatord.job_steps WHERE job_id IN (SELECT id FROM d)) "
                        "SELECT count(*) FROM d",
                        before);
    if (!r) co_return r.take_error();
    co_return r->int64(0, 0);
  });
}

Async<int64_t> PgStore::next_run_at(std::string queue, int64_t after_ms) {
  return with_conn<int64_t>([queue = std::move(queue), after_ms](Connection& c) -> asio::awaitable<Result<int64_t>> {
    // Queued jobs are due when queued: only scheduled and retrying ones wait for a time (their
    // own index, jobs_timed).
    auto r = co_await q(c,
                        "SELECT MIN(run_at) FROM creatord.jobs WHERE queue = $1 AND state IN ('scheduled', 'retrying') "
                        "AND run_at > $2 AND NOT EXISTS (SELECT 1 FROM creatord.queues WHERE name = $1 AND paused)",
                        queue, after_ms);
    if (!r) co_return r.take_error();
    co_return r->is_null(0, 0) ? int64_t{0} : r->int64(0, 0);
  });
}

Async<std::vector<JobEvent>> PgStore::job_events(int64_t job_id, int64_t after_seq, int limit) {
  return with_conn<std::vector<JobEvent>>([=](Connection& c) -> asio::awaitable<Result<std::vector<JobEvent>>> {
    auto r = co_await q(c, "SELECT seq, type, data, created_at FROM creatord.job_events WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                        job_id, after_seq, limit);
    if (!r) co_return r.take_error();
    std::vector<JobEvent> out;
    for (int i = 0; i < r->size(); ++i)
      out.push_back(JobEvent{r->int64(i, 0), std::string(r->text(i, 1)), std::string(r->text(i, 2)), r->int64(i, 3)});
    co_return out;
  });
}

Async<std::vector<QueueInfo>> PgStore::queue_counts(int64_t since_ms) {
  return with_conn<std::vector<QueueInfo>>([since_ms](Connection& c) -> asio::awaitable<Result<std::vector<QueueInfo>>> {
    // Each part reads one partial index: jobs_runnable (waiting), jobs_leases (running),
    // jobs_finished (the window's finished ones); none exists for counting alone.
    auto r = co_await q(c,
                        "SELECT queue, state, COUNT(*) FROM creatord.jobs WHERE state IN ('queued', 'scheduled', 'retrying') "
                        "GROUP BY queue, state UNION ALL "
                        "SELECT queue, state, COUNT(*) FROM creatord.jobs WHERE state = 'running' GROUP BY queue, state UNION ALL "
                        "SELECT queue, state, COUNT(*) FROM creatord.jobs WHERE finished_at IS NOT NULL AND finished_at >= $1 "
                        "GROUP BY queue, state UNION ALL "
                        "SELECT name, CASE WHEN paused THEN 'paused' ELSE '' END, 0 FROM creatord.queues",
                        since_ms);
    if (!r) co_return r.take_error();
    std::map<std::string, QueueInfo> by;
    for (int i = 0; i < r->size(); ++i) {
      auto& info = by[std::string(r->text(i, 0))];
      if (r->text(i, 1) == "paused") info.paused = true;
      else set_count(info, r->text(i, 1), r->int64(i, 2));
    }
    std::vector<QueueInfo> out;
    for (auto& [name, info] : by) {
      info.name = name;
      out.push_back(std::move(info));
    }
    co_return out;
  });
}

Async<Unit> PgStore::set_paused(std::string queue, bool paused, int64_t now) {
  return in_tx<Unit>([queue = std::move(queue), paused, now](Connection& c) -> asio::awaitable<Result<Unit>> {
    auto r = co_await q(c,
                        "INSERT INTO creatord.queues (name, paused, updated_at) VALUES ($1, $2, $3) "
                        "ON CONFLICT (name) DO UPDATE SET paused = $2, updated_at = $3",
                        queue, paused, now);
    if (!r) co_return r.take_error();
    if (!paused) {
      auto w = co_await q(c, "SELECT pg_notify('creatord_queue', $1)", queue);
      if (!w) co_return w.take_error();
    }
    co_return Unit{};
  });
}

Async<std::vector<queue::ScheduleMark>> PgStore::schedule_marks() {
  return with_conn<std::vector<queue::ScheduleMark>>([](Connection& c)
                                                         -> asio::awaitable<Result<std::vector<queue::ScheduleMark>>> {
    auto r = co_await x(c, "SELECT name, last_slot FROM creatord.schedules");
    if (!r) co_return r.take_error();
    std::vector<queue::ScheduleMark> out;
    for (int i = 0; i < r->size(); ++i) out.push_back({std::string(r->text(i, 0)), r->int64(i, 1)});
    co_return out;
  });
}

Async<Unit> PgStore::set_schedule_mark(std::string name, int64_t slot_ms) {
  return in_tx<Unit>([name = std::move(name), slot_ms](Connection& c) -> asio::awaitable<Result<Unit>> {
    auto r = co_await q(c,
                        "INSERT INTO creatord.schedules (name, last_slot) VALUES ($1, $2) "
                        "ON CONFLICT (name) DO UPDATE SET last_slot = GREATEST(schedules.last_slot, $2)",
                        name, slot_ms);
    if (!r) co_return r.take_error();
    co_return Unit{};
  });
}

}  // namespace creatord
