// The queue's rules, decided once: pure functions that take a job as it was read and what
// happened, and return the write that makes it so (new state, timestamps, the event to record).
// Store drivers only apply these writes, fenced, in their SQL dialect; they decide nothing.
// No clock and no randomness inside: `now` and the jitter are arguments, so every rule is
// unit-tested with exact times.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "core/result.hpp"
#include "queue/job.hpp"

namespace creatord::queue {

// What the write may assume of the row: it applies only when the job still is in `state` at
// `attempt` (and, for running jobs, leased to `owner`, and with `lease_expired_before` set, its
// lease expired before then). A worker that lost its job, or a decision made on a stale read,
// changes nothing.
struct Fence {
  JobState state = JobState::running;
  int attempt = 0;
  std::optional<std::string> owner;
  int64_t lease_expired_before = 0;  // 0: not checked
};

// What happens to the job's steps.
enum class StepReset {
  none,
  running_to_pending,     // an attempt ended: a step it was running will run again
  running_to_cancelled,   // the job was cancelled while a step ran
  unfinished_to_pending,  // a manual retry: everything but succeeded steps runs again
};

// One job's change. Every column is explicit, so a driver writes exactly these values.
struct JobWrite {
  int64_t job_id = 0;
  Fence fence;
  JobState state = JobState::queued;
  int attempt = 0;
  int64_t run_at_ms = 0;
  int64_t finished_at_ms = 0;  // 0: not finished (NULL)
  int max_attempts = 0;
  int manual_retries = 0;
  bool cancel_requested = false;
  bool keep_lease = false;      // true: a running job stays leased (cancel requested)
  std::optional<boost::json::value> result;  // nullopt: unchanged
  std::optional<std::string> last_error;     // nullopt: unchanged
  bool progress_complete = false;            // progress becomes 1
  StepReset steps = StepReset::none;
  std::string event_type;
  boost::json::object event_data;
  int64_t at_ms = 0;  // updated_at and the event's time
};

// How a run ended, as the worker reports it.
struct RunOutcome {
  enum class Kind { succeeded, failed, cancelled, released } kind = Kind::succeeded;
  boost::json::value result;
  std::string error;
  bool retryable = true;
};

struct RetryPolicy {
  int64_t base_ms = 1'000;    // backoff: base * 2^(attempt-1), capped, then jittered
  int64_t cap_ms = 300'000;
};

// Exponential backoff with jitter: base * 2^(attempt-1), capped, then scaled into [50%, 100%].
int64_t retry_delay_ms(int attempt, int64_t base_ms, int64_t cap_ms, double random01);

// The jobs that count against a quota, as SQL (both dialects; the partial indexes that make the
// count cheap are declared with exactly this expression).
#define CREATORD_UNFINISHED_STATES "state IN ('queued', 'scheduled', 'running', 'retrying')"
// Whether a new job fits its quotas, given how many unfinished jobs its principal and its creator
// have: too_many_requests (field `quota`) when not.
Status check_quota(const NewJob& job, int64_t unfinished_by_principal, int64_t unfinished_by_creator);
inline bool has_quota(const NewJob& job) {
  return (job.max_unfinished_by_principal > 0 && !job.enqueued_by.empty()) ||
         (job.max_unfinished_by_creator > 0 && job.creator_id);
}

// The state a new job starts in: scheduled when it may not run yet, else queued.
JobState initial_state(int64_t run_at_ms, int64_t now_ms);
const char* initial_event(JobState initial);

// The end of a run. `job` is the claimed job (state running, its attempt and owner).
// released (shutdown): back to queued, the attempt not counted. failed and retryable with
// attempts left: retrying at now + backoff. Otherwise the final state.
JobWrite finish(const Job& job, const std::string& owner, RunOutcome outcome, int64_t now, const RetryPolicy& policy,
                double random01);

// A running job whose worker stopped (its lease expired, or every running job at start-up when
// this process owns the store alone): cancelled if that was asked, failed when its attempts are
// used up, else retrying after the base delay.
JobWrite recover(const Job& job, int64_t now, bool require_expired, const RetryPolicy& policy);

// A client asks to cancel. Waiting jobs are cancelled at once; a running job is flagged (its
// worker stops it and reports cancelled). Finished jobs: conflict.
Result<JobWrite> cancel(const Job& job, int64_t now);

// A client asks to run a failed or cancelled job again: queued now, attempts counted on from
// where they were with max_attempts more allowed; steps that succeeded keep their outputs.
// Anything else: conflict.
Result<JobWrite> retry(const Job& job, int64_t now);

// The event a step change records.
std::pair<const char*, boost::json::object> step_event(const StepUpdate& update);

}  // namespace creatord::queue
