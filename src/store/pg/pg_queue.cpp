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

const char* step_reset_sql(StepReset r) {
  switch (r) {
    case StepReset::running_to_pending:
      return "UPDATE creatord.job_steps SET state = 'pending' WHERE job_id = ANY($1::bigint[]) AND state = 'running'";
    case StepReset::running_to_cancelled:
      return "UPDATE creatord.job_steps SET state = 'cancelled', error = 'cancelled' WHERE job_id = ANY($1::bigint[]) "
             "AND state = 'running'";
    case StepReset::unfinished_to_pending:
      return "UPDATE creatord.job_steps SET state = 'pending', error = NULL WHERE job_id = ANY($1::bigint[]) "
             "AND state <> 'succeeded'";
    case StepReset::none:
      break;
  }
  return nullptr;
}

using Column = std::vector<std::optional<std::string>>;
std::optional<std::string> S(int64_t v) { return std::to_string(v); }
std::optional<std::string> B(bool v) { return std::string(v ? "t" : "f"); }

// The writes as columns for one unnest().
struct WriteColumns {
  Column id, f_state, f_attempt, f_owner, f_expired, state, attempt, run_at, finished, max_attempts, retries, cancel,
      keep_lease, set_result, result, set_error, error, complete;

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
    }
  }
};

// One UPDATE for the whole batch, each row fenced in the WHERE; returns the ids it changed.
asio::awaitable<Result<std::set<int64_t>>> update_jobs(Connection& c, const std::vector<JobWrite>& writes, int64_t now) {
  WriteColumns w(writes);
  std::string a[18] = {text_array(w.id),       text_array(w.f_state),      text_array(w.f_attempt),
                       text_array(w.f_owner),  text_array(w.f_expired),    text_array(w.state),
                       text_array(w.attempt),  text_array(w.run_at),       text_array(w.finished),
                       text_array(w.max_attempts), text_array(w.retries),  text_array(w.cancel),
                       text_array(w.keep_lease), text_array(w.set_result), text_array(w.result),
                       text_array(w.set_error), text_array(w.error),       text_array(w.complete)};
  auto r = co_await q(c,
                      "UPDATE creatord.jobs j SET state = w.state, attempt = w.attempt, run_at = w.run_at, "
                      "finished_at = w.finished, max_attempts = w.max_attempts, manual_retries = w.retries, "
                      "cancel_requested = w.cancel, "
                      "lease_owner = CASE WHEN w.keep_lease THEN j.lease_owner END, "
                      "lease_expires_at = CASE WHEN w.keep_lease THEN j.lease_expires_at END, "
                      "result = CASE WHEN w.set_result THEN w.result ELSE j.result END, "
                      "last_error = CASE WHEN w.set_error THEN w.error ELSE j.last_error END, "
                      "progress = CASE WHEN w.complete THEN 1.0 ELSE j.progress END, updated_at = $19 "
                      "FROM unnest($1::bigint[], $2::text[], $3::int[], $4::text[], $5::bigint[], $6::text[], "
                      "$7::int[], $8::bigint[], $9::bigint[], $10::int[], $11::int[], $12::bool[], $13::bool[], "
                      "$14::bool[], $15::text[], $16::bool[], $17::text[], $18::bool[]) AS w(id, f_state, f_attempt, "
                      "f_owner, f_expired, state, attempt, run_at, finished, max_attempts, retries, cancel, keep_lease, "
                      "set_result, result, set_error, error, complete) "
                      "WHERE j.id = w.id AND j.state = w.f_state AND j.attempt = w.f_attempt "
                      "AND (w.f_owner IS NULL OR j.lease_owner = w.f_owner) "
                      "AND (w.f_expired = 0 OR j.lease_expires_at < w.f_expired) RETURNING j.id",
                      a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13], a[14],
                      a[15], a[16], a[17], now);
  if (!r) co_return r.take_error();
  std::set<int64_t> changed;
  for (int i = 0; i < r->size(); ++i) changed.insert(r->int64(i, 0));
  co_return changed;
}

// For the writes that applied: their steps, their events, one NOTIFY for their SSE clients and
// one per queue that has a job to claim again.
asio::awaitable<Status> after_update(Connection& c, const std::vector<JobWrite>& writes, const std::vector<bool>& applied) {
  std::map<StepReset, Column> resets;
  Column ev_ids, ev_types, ev_datas, ev_at, waking;
  std::string notify;
  for (size_t i = 0; i < writes.size(); ++i) {
    if (!applied[i]) continue;
    const auto& w = writes[i];
    if (w.steps != StepReset::none) resets[w.steps].push_back(S(w.job_id));
    if (!w.event_type.empty()) {
      ev_ids.push_back(S(w.job_id));
      ev_types.push_back(w.event_type);
      ev_datas.push_back(json::serialize(w.event_data));
      ev_at.push_back(S(w.at_ms));
    }
    if (is_waiting(w.state)) waking.push_back(S(w.job_id));
    notify += (notify.empty() ? "" : ",") + std::to_string(w.job_id);
  }
  for (const auto& [kind, ids] : resets) {
    std::string arr = text_array(ids);
    auto r = co_await q(c, step_reset_sql(kind), arr);
    if (!r) co_return r.take_error();
  }
  if (!ev_ids.empty()) {
    std::string i = text_array(ev_ids), t = text_array(ev_types), d = text_array(ev_datas), at = text_array(ev_at);
    auto ev = co_await q(c,
                         "INSERT INTO creatord.job_events (job_id, seq, type, data, created_at) "
                         "SELECT e.id, (SELECT COALESCE(MAX(x.seq), 0) + 1 FROM creatord.job_events x WHERE x.job_id = e.id), "
                         "e.type, e.data, e.at FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[]) "
                         "WITH ORDINALITY AS e(id, type, data, at, n) ORDER BY e.n",
                         i, t, d, at);
    if (!ev) co_return ev.take_error();
  }
  if (!notify.empty()) {
    auto n = co_await q(c, "SELECT pg_notify('creatord_job', $1)", notify);
    if (!n) co_return n.take_error();
  }
  if (!waking.empty()) {
    std::string arr = text_array(waking);
    auto w = co_await q(c, "SELECT pg_notify('creatord_queue', queue) FROM (SELECT DISTINCT queue FROM creatord.jobs "
                           "WHERE id = ANY($1::bigint[])) qs", arr);
    if (!w) co_return w.take_error();
  }
  co_return ok_status();
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
  std::string payload = json::serialize(n.payload);
  int64_t run_at = n.run_at_ms > 0 ? n.run_at_ms : now;
  JobState initial = queue::initial_state(run_at, now);
  std::string state(to_string(initial));
  std::optional<std::string> enqueued_by;
  if (!n.enqueued_by.empty()) enqueued_by = n.enqueued_by;
  auto r = co_await q(c,
                      "INSERT INTO creatord.jobs (kind, queue, payload, state, priority, run_at, max_attempts, timeout_ms, "
                      "idempotency_key, creator_id, created_at, updated_at, unique_key, request_hash, enqueued_by) "
                      "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13, $14) "
                      "ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL DO NOTHING RETURNING id",
                      n.kind, n.queue, payload, state, n.priority, run_at, n.max_attempts, n.timeout_ms,
                      n.idempotency_key, n.creator_id, now, n.unique_key, n.request_hash, enqueued_by);
  if (!r) co_return r.take_error();
  if (r->size() == 0) co_return Error::make(ErrorCode::unavailable, "a job with this idempotency key is being created; retry");
  int64_t id = r->int64(0, 0);
  for (size_t i = 0; i < n.steps.size(); ++i) {
    auto s = co_await q(c, "INSERT INTO creatord.job_steps (job_id, position, name) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", id,
                        static_cast<int64_t>(i), n.steps[i]);
    if (!s) co_return s.take_error();
  }
  auto ev = co_await q(c,
                       "INSERT INTO creatord.job_events (job_id, seq, type, data, created_at) "
                       "VALUES ($1, 1, $2, json_build_object('state', $3::text)::text, $4)",
                       id, queue::initial_event(initial), state, now);
  if (!ev) co_return ev.take_error();
  auto wake = co_await q(c, "SELECT pg_notify('creatord_queue', $1), pg_notify('creatord_job', $2)", n.queue,
                         std::to_string(id));
  if (!wake) co_return wake.take_error();
  Job j;
  j.id = id;
  j.kind = n.kind;
  j.queue = n.queue;
  j.state = initial;
  co_return Inserted{std::move(j), true};
}

}  // namespace pgx

namespace {

// Many jobs without unique keys, set-based: ids taken from the sequence first (so steps and
// events know theirs), then one INSERT each for the jobs, their steps and their first events,
// and one NOTIFY per queue.
asio::awaitable<Result<std::vector<Inserted>>> insert_batch(Connection& c, const std::vector<NewJob>& jobs, int64_t now) {
  auto ids = co_await q(c, "SELECT nextval('creatord.jobs_id_seq') FROM generate_series(1, $1)", static_cast<int64_t>(jobs.size()));
  if (!ids) co_return ids.take_error();
  Column id, kind, queue, payload, state, priority, run_at, attempts, timeout, key, creator, hash;
  Column step_job, step_pos, step_name;
  std::set<std::string> queues;
  std::vector<Inserted> out;
  for (size_t i = 0; i < jobs.size(); ++i) {
    const NewJob& n = jobs[i];
    int64_t at = n.run_at_ms > 0 ? n.run_at_ms : now;
    JobState initial = queue::initial_state(at, now);
    id.push_back(S(ids->int64(static_cast<int>(i), 0)));
    kind.push_back(n.kind);
    queue.push_back(n.queue);
    payload.push_back(json::serialize(n.payload));
    state.push_back(std::string(to_string(initial)));
    priority.push_back(S(n.priority));
    run_at.push_back(S(at));
    attempts.push_back(S(n.max_attempts));
    timeout.push_back(S(n.timeout_ms));
    key.push_back(n.idempotency_key);
    creator.push_back(n.creator_id ? S(*n.creator_id) : std::nullopt);
    hash.push_back(n.request_hash);
    for (size_t p = 0; p < n.steps.size(); ++p) {
      step_job.push_back(id.back());
      step_pos.push_back(S(static_cast<int64_t>(p)));
      step_name.push_back(n.steps[p]);
    }
    queues.insert(n.queue);
    Job j;
    j.id = ids->int64(static_cast<int>(i), 0);
    j.kind = n.kind;
    j.queue = n.queue;
    j.state = initial;
    out.push_back(Inserted{std::move(j), true});
  }
  std::string a[12] = {text_array(id),      text_array(kind),    text_array(queue),   text_array(payload),
                       text_array(state),   text_array(priority), text_array(run_at), text_array(attempts),
                       text_array(timeout), text_array(key),      text_array(creator), text_array(hash)};
  auto r = co_await q(c,
                      "INSERT INTO creatord.jobs (id, kind, queue, payload, state, priority, run_at, max_attempts, timeout_ms, "
                      "idempotency_key, creator_id, request_hash, created_at, updated_at) "
                      "SELECT *, $13, $13 FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], "
                      "$6::int[], $7::bigint[], $8::int[], $9::bigint[], $10::text[], $11::bigint[], $12::text[])",
                      a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], now);
  if (!r) co_return r.take_error();
  if (!step_job.empty()) {
    std::string sj = text_array(step_job), sp = text_array(step_pos), sn = text_array(step_name);
    auto s = co_await q(c, "INSERT INTO creatord.job_steps (job_id, position, name) SELECT * FROM unnest($1::bigint[], $2::int[], "
                           "$3::text[]) ON CONFLICT DO NOTHING", sj, sp, sn);
    if (!s) co_return s.take_error();
  }
  auto ev = co_await q(c,
                       "INSERT INTO creatord.job_events (job_id, seq, type, data, created_at) "
                       "SELECT e.id, 1, CASE WHEN e.state = 'scheduled' THEN $3 ELSE $4 END, "
                       "json_build_object('state', e.state)::text, $5 FROM unnest($1::bigint[], $2::text[]) AS e(id, state)",
                       a[0], a[4], job_event::scheduled, job_event::queued, now);
  if (!ev) co_return ev.take_error();
  for (const auto& name : queues) {
    auto w = co_await q(c, "SELECT pg_notify('creatord_queue', $1)", name);
    if (!w) co_return w.take_error();
  }
  co_return out;
}

bool any_unique(const std::vector<NewJob>& jobs) {
  return std::any_of(jobs.begin(), jobs.end(), [](const NewJob& n) { return n.unique_key.has_value(); });
}

}  // namespace

Async<std::vector<Inserted>> PgStore::insert(std::vector<NewJob> jobs, int64_t now) {
  return in_tx<std::vector<Inserted>>([jobs = std::move(jobs), now](Connection& c)
                                          -> asio::awaitable<Result<std::vector<Inserted>>> {
    bool quotas = std::any_of(jobs.begin(), jobs.end(), [](const NewJob& n) { return queue::has_quota(n); });
    if (jobs.size() > 1 && !any_unique(jobs) && !quotas) co_return co_await insert_batch(c, jobs, now);
    std::vector<Inserted> out;
    out.reserve(jobs.size());
    for (const auto& n : jobs) {
      auto r = co_await insert_job(c, n, now);
      if (!r) co_return r.take_error();
      if (jobs.size() == 1 && r->created) {  // a single enqueue answers with the whole job
        auto full = co_await load_job(c, r->job.id, true);
        if (!full) co_return full.take_error();
        r->job = std::move(full.value());
      }
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
  return in_tx<std::vector<Job>>([queue = std::move(queue), owner = std::move(owner), n, lease_ms,
                                  &clock](Connection& c) -> asio::awaitable<Result<std::vector<Job>>> {
    int64_t now = clock.now_ms(), lease_until = now + lease_ms;
    auto r = co_await q(c,
                        "UPDATE creatord.jobs SET state = 'running', attempt = attempt + 1, lease_owner = $2, lease_expires_at = $3, "
                        "started_at = COALESCE(started_at, $4), updated_at = $4 "
                        "WHERE id IN (SELECT id FROM creatord.jobs WHERE queue = $1 AND state IN ('queued', 'scheduled', 'retrying') "
                        "AND run_at <= $4 AND NOT EXISTS (SELECT 1 FROM creatord.queues WHERE name = $1 AND paused) "
                        "ORDER BY priority DESC, run_at, id LIMIT $5 FOR UPDATE SKIP LOCKED) "
                        "RETURNING " JOB_COLS,
                        queue, owner, lease_until, now, n);
    if (!r) co_return r.take_error();
    std::vector<Job> out;
    for (int i = 0; i < r->size(); ++i) out.push_back(job_at(r.value(), i));
    if (out.empty()) co_return out;
    std::sort(out.begin(), out.end(), [](const Job& a, const Job& b) {
      return a.priority != b.priority ? a.priority > b.priority : a.id < b.id;
    });
    // One statement for all the batch's events, one notification for all its jobs.
    Column ids;
    std::string list;
    for (const auto& j : out) {
      ids.push_back(S(j.id));
      list += (list.empty() ? "" : ",") + std::to_string(j.id);
    }
    std::string arr = text_array(ids);
    auto ev = co_await q(c,
                         "INSERT INTO creatord.job_events (job_id, seq, type, data, created_at) "
                         "SELECT j.id, (SELECT COALESCE(MAX(e.seq), 0) + 1 FROM creatord.job_events e WHERE e.job_id = j.id), "
                         "$3, json_build_object('attempt', j.attempt)::text, $2 "
                         "FROM creatord.jobs j WHERE j.id = ANY($1::bigint[])",
                         arr, now, job_event::started);
    if (!ev) co_return ev.take_error();
    auto note = co_await q(c, "SELECT pg_notify('creatord_job', $1)", list);
    if (!note) co_return note.take_error();
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
  return in_tx<std::vector<bool>>([writes = std::move(writes)](Connection& c) -> asio::awaitable<Result<std::vector<bool>>> {
    std::vector<bool> out(writes.size(), false);
    if (writes.empty()) co_return out;
    auto changed = co_await update_jobs(c, writes, writes.front().at_ms);
    if (!changed) co_return changed.take_error();
    for (size_t i = 0; i < writes.size(); ++i) out[i] = changed->count(writes[i].job_id) > 0;
    if (auto s = co_await after_update(c, writes, out); !s) co_return s.take_error();
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
    auto r = co_await q(c, "DELETE FROM creatord.jobs WHERE finished_at IS NOT NULL AND finished_at < $1", before);
    if (!r) co_return r.take_error();
    co_return r->affected();
  });
}

Async<int64_t> PgStore::next_run_at(std::string queue) {
  return with_conn<int64_t>([queue = std::move(queue)](Connection& c) -> asio::awaitable<Result<int64_t>> {
    auto r = co_await q(c, "SELECT MIN(run_at) FROM creatord.jobs WHERE queue = $1 AND state IN ('queued', 'scheduled', 'retrying')",
                        queue);
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
