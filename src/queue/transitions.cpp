#include "queue/transitions.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "core/clock.hpp"

namespace creatord::queue {

namespace {

constexpr const char* kWorkerStopped = "the worker running it stopped (lease expired)";

// The base of every write: the job as read, fenced on what the decision saw.
JobWrite write_from(const Job& job, int64_t now) {
  JobWrite w;
  w.job_id = job.id;
  w.fence.state = job.state;
  w.fence.attempt = job.attempt;
  if (job.state == JobState::running) w.fence.owner = job.lease_owner;
  w.state = job.state;
  w.attempt = job.attempt;
  w.run_at_ms = job.run_at_ms;
  w.finished_at_ms = job.finished_at_ms;
  w.max_attempts = job.max_attempts;
  w.manual_retries = job.manual_retries;
  w.cancel_requested = job.cancel_requested;
  w.at_ms = now;
  return w;
}

void end_as(JobWrite& w, JobState state, int64_t now) {
  w.state = state;
  w.finished_at_ms = now;
  w.event_type = job_event::finished;
  w.event_data = {{"state", to_string(state)}, {"attempt", w.attempt}};
}

}  // namespace

int64_t retry_delay_ms(int attempt, int64_t base_ms, int64_t cap_ms, double random01) {
  attempt = std::max(1, attempt);
  double d = static_cast<double>(base_ms) * std::pow(2.0, std::min(attempt - 1, 40));
  d = std::min(d, static_cast<double>(cap_ms));
  random01 = std::clamp(random01, 0.0, 1.0);
  return static_cast<int64_t>(d * (0.5 + 0.5 * random01));
}

JobState initial_state(int64_t run_at_ms, int64_t now_ms) {
  return run_at_ms > now_ms ? JobState::scheduled : JobState::queued;
}

const char* initial_event(JobState initial) {
  return initial == JobState::scheduled ? job_event::scheduled : job_event::queued;
}

JobWrite finish(const Job& job, const std::string& owner, RunOutcome outcome, int64_t now, const RetryPolicy& policy,
                double random01) {
  JobWrite w = write_from(job, now);
  w.fence.owner = owner;
  using K = RunOutcome::Kind;
  if (outcome.kind == K::released) {
    // Shutdown: back to the queue, this attempt not counted, finished steps kept.
    w.state = JobState::queued;
    w.attempt = job.attempt - 1;
    w.run_at_ms = now;
    w.steps = StepReset::running_to_pending;
    w.event_type = job_event::released;
    w.event_data = {{"reason", "shutdown"}};
    return w;
  }
  if (outcome.kind == K::succeeded) {
    end_as(w, JobState::succeeded, now);
    w.result = outcome.result;
    w.progress_complete = true;
    w.event_data["result"] = outcome.result;
    return w;
  }
  w.last_error = outcome.error;
  if (outcome.kind == K::cancelled) {
    end_as(w, JobState::cancelled, now);
    w.steps = StepReset::running_to_cancelled;
  } else if (outcome.retryable && job.attempt < job.max_attempts) {
    w.state = JobState::retrying;
    w.run_at_ms = now + retry_delay_ms(job.attempt, policy.base_ms, policy.cap_ms, random01);
    w.steps = StepReset::running_to_pending;
    w.event_type = job_event::retrying;
    w.event_data = {{"state", "retrying"}, {"attempt", job.attempt}, {"run_at", format_rfc3339(w.run_at_ms)}};
  } else {
    end_as(w, JobState::failed, now);
    w.steps = StepReset::running_to_pending;
  }
  if (!outcome.error.empty()) w.event_data["error"] = outcome.error;
  return w;
}

JobWrite recover(const Job& job, int64_t now, bool require_expired, const RetryPolicy& policy) {
  JobWrite w = write_from(job, now);
  if (require_expired) w.fence.lease_expired_before = now;
  w.last_error = kWorkerStopped;
  w.steps = StepReset::running_to_pending;
  if (job.cancel_requested) {
    end_as(w, JobState::cancelled, now);
    w.steps = StepReset::running_to_cancelled;
  } else if (job.attempt >= job.max_attempts) {
    end_as(w, JobState::failed, now);
  } else {
    w.state = JobState::retrying;
    w.run_at_ms = now + policy.base_ms;
    w.event_type = job_event::retrying;
    w.event_data = {{"state", "retrying"}, {"attempt", job.attempt}, {"run_at", format_rfc3339(w.run_at_ms)}};
  }
  w.event_data["error"] = kWorkerStopped;
  return w;
}

Result<JobWrite> cancel(const Job& job, int64_t now) {
  if (is_terminal(job.state))
    return Error::make(ErrorCode::conflict, fmt::format("job {} is already {}", job.id, to_string(job.state)));
  JobWrite w = write_from(job, now);
  w.cancel_requested = true;
  if (job.state == JobState::running) {
    w.keep_lease = true;
    w.event_type = job_event::cancel_requested;
    return w;
  }
  end_as(w, JobState::cancelled, now);
  w.last_error = "cancelled";
  return w;
}

Result<JobWrite> retry(const Job& job, int64_t now) {
  if (job.state != JobState::failed && job.state != JobState::cancelled)
    return Error::make(ErrorCode::conflict, fmt::format("job {} is {}; only failed or cancelled jobs can be retried",
                                                        job.id, to_string(job.state)));
  JobWrite w = write_from(job, now);
  // Each manual retry allows as many attempts as the job was created with.
  int per_run = std::max(1, job.max_attempts / std::max(1, job.manual_retries + 1));
  w.state = JobState::queued;
  w.run_at_ms = now;
  w.finished_at_ms = 0;
  w.cancel_requested = false;
  w.manual_retries = job.manual_retries + 1;
  w.max_attempts = std::max(job.attempt, job.max_attempts) + per_run;
  w.steps = StepReset::unfinished_to_pending;
  w.event_type = job_event::queued;
  w.event_data = {{"state", "queued"}, {"reason", "retry"}, {"manual_retries", w.manual_retries}};
  return w;
}

std::pair<const char*, boost::json::object> step_event(const StepUpdate& u) {
  boost::json::object ev{{"step", u.step}, {"attempt", u.attempt}};
  using K = StepUpdate::Kind;
  switch (u.kind) {
    case K::started:
      return {job_event::step_started, std::move(ev)};
    case K::progress:
      ev["progress"] = u.progress;
      if (!u.message.empty()) ev["message"] = u.message;
      return {job_event::step_progress, std::move(ev)};
    case K::succeeded:
      ev["state"] = "succeeded";
      return {job_event::step_finished, std::move(ev)};
    case K::failed:
    case K::cancelled:
      ev["state"] = u.kind == K::failed ? "failed" : "cancelled";
      ev["error"] = u.error;
      return {job_event::step_finished, std::move(ev)};
  }
  return {job_event::step_progress, std::move(ev)};
}

Status check_quota(const NewJob& job, int64_t by_principal, int64_t by_creator) {
  if (job.max_unfinished_by_principal > 0 && !job.enqueued_by.empty() && by_principal >= job.max_unfinished_by_principal)
    return Error::make(ErrorCode::too_many_requests,
                       fmt::format("this token has {} unfinished jobs, its limit; retry when some have finished", by_principal),
                       "quota");
  if (job.max_unfinished_by_creator > 0 && job.creator_id && by_creator >= job.max_unfinished_by_creator)
    return Error::make(ErrorCode::too_many_requests,
                       fmt::format("creator {} has {} unfinished jobs, its limit; retry when some have finished",
                                   *job.creator_id, by_creator),
                       "quota");
  return ok_status();
}

}  // namespace creatord::queue
