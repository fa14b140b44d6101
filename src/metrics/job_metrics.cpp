#include "metrics/job_metrics.hpp"

namespace creatord::metrics {

namespace {
// A job claimed here whose end this instance never sees (its lease expired and another took
// it) would stay in the map: past this many, the map is cleared.
constexpr size_t kMaxRunning = 100000;

std::chrono::nanoseconds ms(int64_t v) { return std::chrono::milliseconds(std::max<int64_t>(0, v)); }
}  // namespace

std::string_view outcome_name(queue::RunOutcome::Kind k) {
  switch (k) {
    case queue::RunOutcome::Kind::succeeded: return "succeeded";
    case queue::RunOutcome::Kind::failed: return "failed";
    case queue::RunOutcome::Kind::cancelled: return "cancelled";
    case queue::RunOutcome::Kind::released: return "released";
  }
  return "failed";
}

Histogram& JobMetrics::histogram(std::map<std::string, std::unique_ptr<Histogram>>& family, const std::string& key) {
  auto& h = family[key];
  if (!h) h = std::make_unique<Histogram>(job_bounds());
  return *h;
}

void JobMetrics::claimed(const Job& job, int64_t now_ms) {
  std::lock_guard lock(mutex_);
  if (running_.size() >= kMaxRunning) running_.clear();
  running_[job.id] = Running{job.kind, now_ms, {}};
  int64_t ready_at = std::max(job.run_at_ms, job.created_at_ms);
  histogram(wait_seconds_, job.queue).observe(ms(now_ms - ready_at));
}

void JobMetrics::step_recorded(const StepUpdate& update, int64_t now_ms) {
  using Kind = StepUpdate::Kind;
  if (update.kind == Kind::progress) return;
  std::lock_guard lock(mutex_);
  auto it = running_.find(update.job_id);
  if (it == running_.end()) return;
  auto& started = it->second.steps_started_ms;
  if (update.kind == Kind::started) {
    started[update.step] = now_ms;
    return;
  }
  auto s = started.find(update.step);
  if (s == started.end()) return;
  histogram(step_seconds_, it->second.pipeline + "\n" + update.step).observe(ms(now_ms - s->second));
  started.erase(s);
}

void JobMetrics::finished(const Job& job, queue::RunOutcome::Kind outcome, int64_t now_ms) {
  std::lock_guard lock(mutex_);
  ++finished_[{job.kind, std::string(outcome_name(outcome))}];
  auto it = running_.find(job.id);
  if (it == running_.end()) return;
  histogram(run_seconds_, job.kind).observe(ms(now_ms - it->second.claimed_at_ms));
  running_.erase(it);
}

void JobMetrics::write(Exposition& out) const {
  std::lock_guard lock(mutex_);
  out.family("creatord_job_runs_finished_total", "counter",
             "Job runs ended on this instance, by pipeline and outcome (a failed run may be retried).");
  for (const auto& [key, n] : finished_)
    out.sample("creatord_job_runs_finished_total", {{"pipeline", key.first}, {"outcome", key.second}}, n);
  out.family("creatord_job_run_duration_seconds", "histogram", "Time from a job's claim to the end of that run, by pipeline.");
  for (const auto& [pipeline, h] : run_seconds_)
    out.histogram("creatord_job_run_duration_seconds", {{"pipeline", pipeline}}, h->bounds(), h->snapshot());
  out.family("creatord_job_step_duration_seconds", "histogram", "Step run times, by pipeline and step.");
  for (const auto& [key, h] : step_seconds_) {
    auto nl = key.find('\n');
    out.histogram("creatord_job_step_duration_seconds",
                  {{"pipeline", std::string_view(key).substr(0, nl)}, {"step", std::string_view(key).substr(nl + 1)}},
                  h->bounds(), h->snapshot());
  }
  out.family("creatord_job_queue_wait_seconds", "histogram",
             "Time from when a job could run (created, or its run_at) to its claim, by queue.");
  for (const auto& [q, h] : wait_seconds_)
    out.histogram("creatord_job_queue_wait_seconds", {{"queue", q}}, h->bounds(), h->snapshot());
}

}  // namespace creatord::metrics
