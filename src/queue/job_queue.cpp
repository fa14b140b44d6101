#include "queue/job_queue.hpp"

#include <map>
#include <random>
#include <set>

#include <fmt/format.h>

#include "core/redact.hpp"
#include "jobs/event_hub.hpp"

namespace creatord::queue {

namespace {

double jitter01() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0, 1)(rng);
}

Error key_reused(const Job& existing) {
  return Error::make(ErrorCode::idempotency_key_reused,
                     fmt::format("this Idempotency-Key was used for a different request (job {}); "
                                 "use a new key for a new request",
                                 existing.id),
                     "Idempotency-Key");
}

}  // namespace

JobQueue::JobQueue(Driver& driver, EventHub& hub, const Clock& clock, RetryPolicy retry)
    : driver_(driver), hub_(hub), clock_(clock), retry_(retry) {}

void JobQueue::woke_job(int64_t id) { hub_.notify(EventHub::job_topic(id)); }
void JobQueue::woke_queue(const std::string& queue) { hub_.notify(EventHub::queue_topic(queue)); }

Async<Inserted> JobQueue::enqueue(NewJob job) {
  std::string hash = job.request_hash;
  std::vector<NewJob> one;
  one.push_back(std::move(job));
  auto r = co_await driver_.insert(std::move(one), clock_.now_ms());
  if (!r) co_return r.take_error();
  Inserted in = std::move(r->front());
  if (!in.created && !hash.empty() && !in.job.request_hash.empty() && in.job.request_hash != hash)
    co_return key_reused(in.job);
  if (in.created) {
    woke_queue(in.job.queue);
    woke_job(in.job.id);
  }
  co_return in;
}

Async<int64_t> JobQueue::enqueue_many(std::vector<NewJob> jobs) {
  auto r = co_await driver_.insert(std::move(jobs), clock_.now_ms());
  if (!r) co_return r.take_error();
  int64_t created = 0;
  std::set<std::string> queues;
  for (const auto& in : r.value()) {
    if (!in.created) continue;
    ++created;
    queues.insert(in.job.queue);
  }
  for (const auto& q : queues) woke_queue(q);
  co_return created;
}

Async<Job> JobQueue::get_job(int64_t id) { return driver_.get_job(id); }
Async<Page<Job>> JobQueue::list_jobs(JobFilter f, PageQuery p) { return driver_.list_jobs(std::move(f), std::move(p)); }
Async<std::vector<JobEvent>> JobQueue::job_events(int64_t id, int64_t after, int limit) {
  return driver_.job_events(id, after, limit);
}

Async<Job> JobQueue::decide_and_apply(int64_t id, std::function<Result<JobWrite>(const Job&, int64_t)> rule) {
  // The fence makes a decision on a stale read change nothing; then read and decide again.
  for (int tries = 0; tries < 5; ++tries) {
    auto job = co_await driver_.get_job(id);
    if (!job) co_return job.take_error();
    auto w = rule(job.value(), clock_.now_ms());
    if (!w) co_return w.take_error();
    std::vector<JobWrite> writes{std::move(w.value())};
    auto applied = co_await driver_.apply(std::move(writes));
    if (!applied) co_return applied.take_error();
    if (!applied->front()) continue;
    auto now = co_await driver_.get_job(id);
    if (now) woke_job(id);
    co_return now;
  }
  co_return Error::make(ErrorCode::unavailable, fmt::format("job {} keeps changing; retry", id));
}

Async<Job> JobQueue::cancel(int64_t id) {
  // Named first: GCC 12 miscompiles temporaries inside a co_await expression.
  std::function<Result<JobWrite>(const Job&, int64_t)> rule = [](const Job& j, int64_t now) { return queue::cancel(j, now); };
  auto job = co_await decide_and_apply(id, std::move(rule));
  if (job && job->state == JobState::running) {
    std::function<void()> stop;
    {
      std::lock_guard lock(mutex_);
      if (auto it = watched_.find(id); it != watched_.end()) stop = it->second;
    }
    if (stop) stop();  // runs here: stop it now; elsewhere its worker's heartbeat sees the flag
  }
  co_return job;
}

Async<Job> JobQueue::retry(int64_t id) {
  std::function<Result<JobWrite>(const Job&, int64_t)> rule = [](const Job& j, int64_t now) { return queue::retry(j, now); };
  auto job = co_await decide_and_apply(id, std::move(rule));
  if (job) woke_queue(job->queue);
  co_return job;
}

Async<std::vector<QueueInfo>> JobQueue::queues(std::vector<std::pair<std::string, int>> known, int64_t window_ms) {
  auto counted = co_await driver_.queue_counts(clock_.now_ms() - window_ms);
  if (!counted) co_return counted.take_error();
  std::map<std::string, QueueInfo> by_name;
  for (auto& q : counted.value()) by_name[q.name] = std::move(q);
  for (const auto& [name, concurrency] : known) {
    auto& q = by_name[name];
    q.name = name;
    q.concurrency = concurrency;
  }
  std::vector<QueueInfo> out;
  for (auto& [_, q] : by_name) out.push_back(std::move(q));
  co_return out;
}

Async<Unit> JobQueue::pause(std::string queue) { return driver_.set_paused(std::move(queue), true, clock_.now_ms()); }

Async<Unit> JobQueue::resume(std::string queue) {
  std::string name = queue;
  auto r = co_await driver_.set_paused(std::move(queue), false, clock_.now_ms());
  if (r) woke_queue(name);
  co_return r;
}

Async<std::vector<Job>> JobQueue::claim(std::string queue, std::string owner, int n, int64_t lease_ms) {
  auto r = co_await driver_.claim(std::move(queue), std::move(owner), n, lease_ms, clock_);
  if (!r) co_return r;
  int64_t now = clock_.now_ms();
  for (const auto& j : r.value()) {
    woke_job(j.id);
    if (observer_) observer_->claimed(j, now);
  }
  co_return r;
}

Async<std::vector<int64_t>> JobQueue::heartbeat(std::string owner, int64_t lease_ms) {
  return driver_.heartbeat(std::move(owner), lease_ms, clock_);
}

Async<bool> JobQueue::record_step(std::string owner, StepUpdate update) {
  // What a step says is stored redacted: no secret reaches the job, its events or its readers.
  update.message = redact(update.message);
  update.error = redact(update.error);
  update.log = redact(update.log);
  redact_json(update.output);
  int64_t id = update.job_id;
  int64_t now = clock_.now_ms();
  std::optional<StepUpdate> seen;
  if (observer_) seen.emplace(StepUpdate{id, update.attempt, update.step, update.kind});
  auto r = co_await driver_.update_step(std::move(owner), std::move(update), now);
  woke_job(id);
  if (seen && r && r.value()) observer_->step_recorded(*seen, now);
  co_return r;
}

Async<std::vector<bool>> JobQueue::finish(std::string owner, std::vector<Finished> runs) {
  int64_t now = clock_.now_ms();
  std::vector<JobWrite> writes;
  writes.reserve(runs.size());
  for (auto& run : runs) {
    run.outcome.error = redact(run.outcome.error);
    redact_json(run.outcome.result);
  }
  for (auto& run : runs) writes.push_back(queue::finish(run.job, owner, std::move(run.outcome), now, retry_, jitter01()));
  std::vector<RunOutcome::Kind> kinds;
  for (const auto& run : runs) kinds.push_back(run.outcome.kind);
  auto r = co_await driver_.apply(std::move(writes));
  for (const auto& run : runs) woke_job(run.job.id);
  if (r && observer_)
    for (size_t i = 0; i < runs.size() && i < r->size(); ++i)
      if ((*r)[i]) observer_->finished(runs[i].job, kinds[i], now);
  co_return r;
}

Async<int64_t> JobQueue::recover(bool all_running) {
  int64_t total = 0;
  for (;;) {
    int64_t now = clock_.now_ms();
    auto stale = co_await driver_.running_jobs(now, all_running, 500);
    if (!stale) co_return stale.take_error();
    if (stale->empty()) co_return total;
    std::vector<JobWrite> writes;
    for (const auto& j : stale.value()) writes.push_back(queue::recover(j, now, !all_running, retry_));
    auto applied = co_await driver_.apply(std::move(writes));
    if (!applied) co_return applied.take_error();
    int64_t n = 0;
    std::set<std::string> queues;
    for (size_t i = 0; i < applied->size(); ++i) {
      if (!(*applied)[i]) continue;
      ++n;
      woke_job(stale.value()[i].id);
      queues.insert(stale.value()[i].queue);
    }
    for (const auto& q : queues) woke_queue(q);
    total += n;
    if (n == 0 || stale->size() < 500) co_return total;
  }
}

Async<int64_t> JobQueue::prune(int64_t retention_ms) { return driver_.prune(clock_.now_ms() - retention_ms); }
Async<int64_t> JobQueue::next_run_at(std::string queue) { return driver_.next_run_at(std::move(queue), clock_.now_ms()); }

void JobQueue::watch(int64_t job_id, std::function<void()> on_cancel) {
  std::lock_guard lock(mutex_);
  watched_[job_id] = std::move(on_cancel);
}

void JobQueue::unwatch(int64_t job_id) {
  std::lock_guard lock(mutex_);
  watched_.erase(job_id);
}

}  // namespace creatord::queue
