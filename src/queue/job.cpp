#include "queue/job.hpp"

#include <algorithm>
#include <cmath>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "core/clock.hpp"

namespace creatord {

std::string_view to_string(JobState s) {
  switch (s) {
    case JobState::queued: return "queued";
    case JobState::scheduled: return "scheduled";
    case JobState::running: return "running";
    case JobState::retrying: return "retrying";
    case JobState::succeeded: return "succeeded";
    case JobState::failed: return "failed";
    case JobState::cancelled: return "cancelled";
  }
  return "queued";
}

std::optional<JobState> parse_job_state(std::string_view s) {
  for (auto st : {JobState::queued, JobState::scheduled, JobState::running, JobState::retrying, JobState::succeeded, JobState::failed,
                  JobState::cancelled})
    if (to_string(st) == s) return st;
  return std::nullopt;
}

bool is_terminal(JobState s) {
  return s == JobState::succeeded || s == JobState::failed || s == JobState::cancelled;
}

bool is_waiting(JobState s) {
  return s == JobState::queued || s == JobState::scheduled || s == JobState::retrying;
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
  o["manual_retries"] = j.manual_retries;
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
  o["timeout_seconds"] = j.timeout_ms / 1000;
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

namespace {
// The fields anyone may read; everything else needs a token when tokens are configured.
constexpr std::string_view kPublicJobFields[] = {
    "id",       "kind",     "queue",      "state",      "priority",   "attempt",         "max_attempts",
    "manual_retries", "progress", "creator_id", "cancel_requested", "timeout_seconds", "run_at", "created_at",
    "updated_at", "started_at", "finished_at", "steps", "links"};
constexpr std::string_view kPublicStepFields[] = {"name", "state", "attempt", "started_at", "finished_at", "duration_ms"};
constexpr std::string_view kPrivateEventFields[] = {"error", "result", "message", "output"};

template <size_t N>
void keep_only(boost::json::object& o, const std::string_view (&keep)[N]) {
  for (auto it = o.begin(); it != o.end();) {
    if (std::find(std::begin(keep), std::end(keep), it->key()) == std::end(keep)) it = o.erase(it);
    else ++it;
  }
}
}  // namespace

boost::json::object to_public_json(const Job& j) {
  boost::json::object o = to_json(j);
  keep_only(o, kPublicJobFields);
  for (auto& s : o["steps"].as_array()) keep_only(s.as_object(), kPublicStepFields);
  return o;
}

std::string public_event_data(std::string_view data) {
  boost::system::error_code ec;
  auto v = boost::json::parse(data, ec);
  if (ec || !v.is_object()) return "{}";
  for (auto key : kPrivateEventFields) v.as_object().erase(key);
  return boost::json::serialize(v);
}

void set_count(QueueInfo& q, std::string_view state, int64_t n) {
  auto s = parse_job_state(state);
  if (!s) return;
  switch (*s) {
    case JobState::queued: q.queued = n; break;
    case JobState::scheduled: q.scheduled = n; break;
    case JobState::running: q.running = n; break;
    case JobState::retrying: q.retrying = n; break;
    case JobState::succeeded: q.succeeded = n; break;
    case JobState::failed: q.failed = n; break;
    case JobState::cancelled: q.cancelled = n; break;
  }
}

boost::json::object to_json(const QueueInfo& q) {
  boost::json::object counts{{"queued", q.queued},       {"scheduled", q.scheduled}, {"running", q.running},
                             {"retrying", q.retrying},   {"succeeded", q.succeeded}, {"failed", q.failed},
                             {"cancelled", q.cancelled}};
  return boost::json::object{{"name", q.name},
                             {"concurrency", q.concurrency},
                             {"paused", q.paused},
                             {"counts", std::move(counts)},
                             {"links", boost::json::object{{"jobs", fmt::format("/api/jobs?queue={}", q.name)},
                                                           {"pause", fmt::format("/api/queues/{}/pause", q.name)},
                                                           {"resume", fmt::format("/api/queues/{}/resume", q.name)}}}};
}

}  // namespace creatord
