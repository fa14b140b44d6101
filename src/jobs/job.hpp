// A job: durable background work with state, progress, retries and cancellation. One concept,
// one name: a job is a job in the table, the API, the logs and the code.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

namespace creatord {

// queued -> running -> succeeded | failed | cancelled; running -> retrying -> running ...
enum class JobState { queued, running, retrying, succeeded, failed, cancelled };
std::string_view to_string(JobState s);
std::optional<JobState> parse_job_state(std::string_view s);
bool is_terminal(JobState s);

struct StepRecord {
  std::string name;
  std::string state;  // pending, running, succeeded, failed
  int attempt = 0;    // the job attempt that last ran it
  int64_t started_at_ms = 0;
  int64_t finished_at_ms = 0;
  boost::json::value output;  // null until succeeded
  std::string error;
  std::string log;  // what the step printed (capped), e.g. an exec step's stderr
};

struct Job {
  int64_t id = 0;
  std::string kind;
  std::string queue;
  boost::json::value payload;
  JobState state = JobState::queued;
  int priority = 0;
  int64_t run_at_ms = 0;
  int attempt = 0;
  int max_attempts = 3;
  int64_t timeout_ms = 0;
  double progress = 0;
  boost::json::value result;
  std::string last_error;
  std::optional<std::string> idempotency_key;
  std::optional<int64_t> creator_id;
  bool cancel_requested = false;
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
  int64_t run_at_ms = 0;  // 0: now
  int max_attempts = 3;
  int64_t timeout_ms = 10 * 60 * 1000;
  std::optional<std::string> idempotency_key;
  std::optional<int64_t> creator_id;
  std::vector<std::string> steps;  // step names, recorded as pending
};

struct JobFilter {
  std::optional<JobState> state;
  std::optional<std::string> kind;
  std::optional<int64_t> creator_id;
};

// How a run ended, as the worker reports it. The store fences it by (id, attempt, owner).
struct JobFinish {
  int64_t job_id = 0;
  int attempt = 0;
  enum class Kind { succeeded, failed, cancelled, released } kind = Kind::succeeded;
  boost::json::value result;
  std::string error;
  int64_t retry_at_ms = 0;  // failed: when to run again; 0 = no retry (final)
};

// A step's change, recorded with an event in one write (fenced like JobFinish).
struct StepUpdate {
  int64_t job_id = 0;
  int attempt = 0;
  std::string step;
  enum class Kind { started, progress, succeeded, failed } kind = Kind::started;
  double progress = 0;       // step progress 0..1 (progress), or job progress (others)
  double job_progress = -1;  // <0: leave the job's progress unchanged
  std::string message;
  boost::json::value output;
  std::string error;
  std::string log;
};

struct JobEvent {
  int64_t seq = 0;
  std::string type;  // job.started, step.started, step.progress, step.finished, job.retrying, job.finished, ...
  std::string data;  // JSON text
  int64_t at_ms = 0;
};

// Exponential backoff with jitter: base * 2^(attempt-1), capped, then scaled into [50%, 100%].
int64_t retry_delay_ms(int attempt, int64_t base_ms, int64_t cap_ms, double random01);

boost::json::object to_json(const Job& job);

}  // namespace creatord
