// The queue's records: a job, its steps and events. Leaves: they depend on nothing of ours, so
// the store drivers, the engine and the API all include them without including each other.
// One concept, one name: a job is a job in the table, the API, the logs and the code.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

namespace creatord {

// scheduled -> queued is implicit (a scheduled job is claimable once run_at has passed);
// queued | scheduled | retrying -> running -> succeeded | failed | cancelled | retrying.
enum class JobState { queued, scheduled, running, retrying, succeeded, failed, cancelled };
std::string_view to_string(JobState s);
std::optional<JobState> parse_job_state(std::string_view s);
bool is_terminal(JobState s);
// Waiting to be claimed (queued, scheduled or retrying).
bool is_waiting(JobState s);
inline constexpr std::string_view kJobStateNames = "queued, scheduled, running, retrying, succeeded, failed, cancelled";

// The SSE contract: every event type a job's stream can carry. Defined here, once.
namespace job_event {
inline constexpr const char* queued = "job.queued";
inline constexpr const char* scheduled = "job.scheduled";
inline constexpr const char* started = "job.started";
inline constexpr const char* retrying = "job.retrying";
inline constexpr const char* finished = "job.finished";
inline constexpr const char* released = "job.released";
inline constexpr const char* cancel_requested = "job.cancel_requested";
inline constexpr const char* step_started = "step.started";
inline constexpr const char* step_progress = "step.progress";
inline constexpr const char* step_finished = "step.finished";
}  // namespace job_event

struct StepRecord {
  std::string name;
  std::string state;  // pending, running, succeeded, failed, cancelled
  int attempt = 0;    // the job attempt that last ran it
  int64_t started_at_ms = 0;
  int64_t finished_at_ms = 0;
  boost::json::value output;  // null until succeeded
  std::string error;
  std::string log;  // what the step printed (capped), e.g. an exec step's stderr
};

struct Job {
  int64_t id = 0;
  std::string kind;   // the pipeline (or built-in handler) that runs it
  std::string queue;
  boost::json::value payload;
  JobState state = JobState::queued;
  int priority = 0;
  int64_t run_at_ms = 0;
  int attempt = 0;
  int max_attempts = 3;  // attempts allowed in all; a manual retry allows as many again
  int manual_retries = 0;
  int64_t timeout_ms = 0;
  double progress = 0;
  boost::json::value result;
  std::string last_error;
  std::optional<std::string> idempotency_key;
  std::optional<int64_t> creator_id;
  bool cancel_requested = false;
  std::string lease_owner;       // running jobs: the worker holding it
  int64_t lease_expires_at_ms = 0;
  std::string request_hash;      // of the request that created it (idempotency checks)
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
  int64_t started_at_ms = 0;
  int64_t finished_at_ms = 0;
  std::vector<StepRecord> steps;  // filled by get_job
};

struct NewJob {
  std::string kind;
  std::string queue = "default";
  boost::json::value payload = boost::json::object{};
  int priority = 0;
  int64_t run_at_ms = 0;  // 0: now; later than now: the job starts `scheduled`
  int max_attempts = 3;
  int64_t timeout_ms = 10 * 60 * 1000;
  // Shown to clients as the job's idempotency key.
  std::optional<std::string> idempotency_key;
  // The identity that makes an insert idempotent: a second insert with the same key returns the
  // first job while the key lives. Callers scope it (route, target, principal).
  std::optional<std::string> unique_key;
  int64_t unique_ttl_ms = 24LL * 3600 * 1000;
  std::string request_hash;  // compared on a replay: a different request with the same key is refused
  std::optional<int64_t> creator_id;
  std::vector<std::string> steps;  // step names, recorded as pending
  // Who asked for it (a token's principal, api/auth.hpp); empty for jobs the system makes.
  std::string enqueued_by;
  // Quotas, checked in the insert's transaction (so concurrent requests, on any instance, cannot
  // pass together): refused when enqueued_by, or creator_id, already has this many unfinished
  // jobs (queued, scheduled, running, retrying). 0: no limit. A replay is never refused.
  int64_t max_unfinished_by_principal = 0;
  int64_t max_unfinished_by_creator = 0;
};

struct JobFilter {
  std::optional<JobState> state;
  std::optional<std::string> kind;
  std::optional<std::string> queue;
  std::optional<int64_t> creator_id;
  std::optional<std::string> exclude_kind;  // e.g. "email" for callers who may not see email jobs
};

// A step's change, recorded with its event in one write (fenced by job id, attempt and owner).
struct StepUpdate {
  int64_t job_id = 0;
  int attempt = 0;
  std::string step;
  enum class Kind { started, progress, succeeded, failed, cancelled } kind = Kind::started;
  double progress = 0;       // step progress 0..1 (progress), or job progress (others)
  double job_progress = -1;  // <0: leave the job's progress unchanged
  std::string message;
  boost::json::value output;
  std::string error;
  std::string log;
};

struct JobEvent {
  int64_t seq = 0;
  std::string type;  // one of job_event::*
  std::string data;  // JSON text
  int64_t at_ms = 0;
};

// A queue as an operator sees it.
struct QueueInfo {
  std::string name;
  int concurrency = 0;  // 0: no instance here runs it
  bool paused = false;
  int64_t queued = 0, scheduled = 0, running = 0, retrying = 0;
  int64_t succeeded = 0, failed = 0, cancelled = 0;  // finished within the window
};

// Sets the count of jobs in `state` (a state's name) on the queue.
void set_count(QueueInfo& queue, std::string_view state, int64_t n);

boost::json::object to_json(const Job& job);
// What anyone may read of a job when tokens are configured: to_json() without the private fields
// (payload, result, last_error, idempotency_key; each step's output, error and log).
boost::json::object to_public_json(const Job& job);
// An event's data (JSON text) without the private fields (error, result, message, output).
std::string public_event_data(std::string_view data);
boost::json::object to_json(const QueueInfo& queue);

}  // namespace creatord
