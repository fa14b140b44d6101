#include "jobs/job.hpp"

#include <algorithm>
#include <cmath>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "core/clock.hpp"

namespace creatord {

std::string_view to_string(JobState s) {
  switch (s) {
    case JobState::queued: return "queued";
    case JobState::running: return "running";
    case JobState::retrying: return "retrying";
    case JobState::succeeded: return "succeeded";
    case JobState::failed: return "failed";
    case JobState::cancelled: return "cancelled";
  }
  return "queued";
}

std::optional<JobState> parse_job_state(std::string_view s) {
  for (auto st : {JobState::queued, JobState::running, JobState::retrying, JobState::succeeded, JobState::failed,
                  JobState::cancelled})
    if (to_string(st) == s) return st;
  return std::nullopt;
}

bool is_terminal(JobState s) {
  return s == JobState::succeeded || s == JobState::failed || s == JobState::cancelled;
}

int64_t retry_delay_ms(int attempt, int64_t base_ms, int64_t cap_ms, double random01) {
  attempt = std::max(1, attempt);
  double d = static_cast<double>(base_ms) * std::pow(2.0, std::min(attempt - 1, 40));
  d = std::min(d, static_cast<double>(cap_ms));
  random01 = std::clamp(random01, 0.0, 1.0);
  return static_cast<int64_t>(d * (0.5 + 0.5 * random01));
}

boost::json::object to_json(const Job& j) {
  boost::json::object o;
  o["id"] = j.id;
  o["kind"] = j.kind;
  o["queue"] = j.queue;
  o["state"] = to_string(j.state);
  o["priority"] = j.priority;
  o["attempt"] = j.attempt;
  o["max_attempts"] = j.max_attempts;
  o["progress"] = j.progress;
  o["payload"] = j.payload;
  o["result"] = j.result;
  if (j.last_error.empty()) o["last_error"] = nullptr;
  else o["last_error"] = j.last_error;
  if (j.creator_id) o["creator_id"] = *j.creator_id;
  else o["creator_id"] = nullptr;
  if (j.idempotency_key) o["idempotency_key"] = *j.idempotency_key;
  else o["idempotency_key"] = nullptr;
  o["cancel_requested"] = j.cancel_requested;
  o["run_at"] = format_rfc3339(j.run_at_ms);
  o["created_at"] = format_rfc3339(j.created_at_ms);
  o["updated_at"] = format_rfc3339(j.updated_at_ms);
  if (j.started_at_ms) o["started_at"] = format_rfc3339(j.started_at_ms);
  else o["started_at"] = nullptr;
  if (j.finished_at_ms) o["finished_at"] = format_rfc3339(j.finished_at_ms);
  else o["finished_at"] = nullptr;
  boost::json::array steps;
  for (const auto& s : j.steps) {
    boost::json::object so;
    so["name"] = s.name;
    so["state"] = s.state;
    so["attempt"] = s.attempt;
    if (s.started_at_ms) so["started_at"] = format_rfc3339(s.started_at_ms);
    else so["started_at"] = nullptr;
    if (s.finished_at_ms) so["finished_at"] = format_rfc3339(s.finished_at_ms);
    else so["finished_at"] = nullptr;
    if (s.started_at_ms && s.finished_at_ms) so["duration_ms"] = s.finished_at_ms - s.started_at_ms;
    else so["duration_ms"] = nullptr;
    so["output"] = s.output;
    if (s.error.empty()) so["error"] = nullptr;
    else so["error"] = s.error;
    if (!s.log.empty()) so["log"] = s.log;
    steps.emplace_back(std::move(so));
  }
  o["steps"] = std::move(steps);
  boost::json::object links;
  links["self"] = fmt::format("/api/jobs/{}", j.id);
  links["events"] = fmt::format("/api/jobs/{}/events", j.id);
  links["cancel"] = fmt::format("/api/jobs/{}/cancel", j.id);
  links["retry"] = fmt::format("/api/jobs/{}/retry", j.id);
  if (j.creator_id) links["images"] = fmt::format("/api/creators/{}/images", *j.creator_id);
  o["links"] = std::move(links);
  return o;
}

}  // namespace creatord
