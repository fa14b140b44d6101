// The job queue as a service: the one place that decides what happens to a job (through the
// pure rules in transitions.hpp), has a driver apply it, and wakes whoever waits for it: the
// queue's workers after an enqueue, a retry or a resume; a job's SSE clients and ?wait= requests
// after any change; the worker running a job when its cancellation is asked. No caller pokes a
// worker.
#pragma once
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/clock.hpp"
#include "queue/driver.hpp"

namespace creatord {
class EventHub;
}

namespace creatord::queue {

// A run's end, as the engine reports it.
struct Finished {
  Job job;  // as claimed
  RunOutcome outcome;
};

// Told of the runs this instance claims and ends, and of their steps, for metrics. Called on the
// threads that call the queue, after the write: must be quick and must not throw.
class RunObserver {
 public:
  virtual ~RunObserver() = default;
  virtual void claimed(const Job& job, int64_t now_ms) = 0;
  virtual void step_recorded(const StepUpdate& update, int64_t now_ms) = 0;
  virtual void finished(const Job& job, RunOutcome::Kind outcome, int64_t now_ms) = 0;
};

class JobQueue {
 public:
  JobQueue(Driver& driver, EventHub& hub, const Clock& clock, RetryPolicy retry = {});

  // Errors: validation `idempotency_key_reused` when the unique key names a job that another
  // request created (a different request_hash).
  Async<Inserted> enqueue(NewJob job);
  // A job was inserted inside another aggregate's transaction (the outbox), now committed:
  // wakes the queue's workers.
  void enqueued_elsewhere(const std::string& queue) { woke_queue(queue); }
  // Many jobs in one transaction (replays included); returns how many were created.
  Async<int64_t> enqueue_many(std::vector<NewJob> jobs);
  Async<Job> get_job(int64_t id);
  Async<Page<Job>> list_jobs(JobFilter filter, PageQuery page);
  Async<std::vector<JobEvent>> job_events(int64_t job_id, int64_t after_seq, int limit);

  // Errors: not_found; conflict when the job already finished (cancel) or is not failed or
  // cancelled (retry).
  Async<Job> cancel(int64_t id);
  Async<Job> retry(int64_t id);

  // Every queue with jobs or a paused flag, plus `known` (name -> concurrency here), counts of
  // finished jobs over the last `window_ms`.
  Async<std::vector<QueueInfo>> queues(std::vector<std::pair<std::string, int>> known, int64_t window_ms);
  Async<Unit> pause(std::string queue);
  Async<Unit> resume(std::string queue);

  // For workers.
  Async<std::vector<Job>> claim(std::string queue, std::string owner, int n, int64_t lease_ms);
  Async<std::vector<int64_t>> heartbeat(std::string owner, int64_t lease_ms);
  Async<bool> record_step(std::string owner, StepUpdate update);
  // One write per run end, applied together; one result per run, in order (false: the worker had
  // lost the job).
  Async<std::vector<bool>> finish(std::string owner, std::vector<Finished> runs);
  // Running jobs whose lease expired (all running ones with all_running) go back to the queue,
  // or fail when their attempts are used up. Returns how many.
  Async<int64_t> recover(bool all_running);
  Async<int64_t> prune(int64_t retention_ms);
  // The next time a waiting job of the queue becomes due (Driver::next_run_at); 0 when none.
  Async<int64_t> next_run_at(std::string queue);

  // The engine says which jobs it runs here, so a cancel request stops them at once.
  void watch(int64_t job_id, std::function<void()> on_cancel);
  void unwatch(int64_t job_id);

  // Set once, before the engine starts; not owned.
  void set_observer(RunObserver* observer) { observer_ = observer; }

  Driver& driver() { return driver_; }
  const Clock& clock() const { return clock_; }
  const RetryPolicy& retry_policy() const { return retry_; }

 private:
  // Reads, decides, applies; a decision made on a stale read is made again.
  Async<Job> decide_and_apply(int64_t id, std::function<Result<JobWrite>(const Job&, int64_t)> rule);
  void woke_job(int64_t id);
  void woke_queue(const std::string& queue);

  Driver& driver_;
  EventHub& hub_;
  const Clock& clock_;
  RetryPolicy retry_;
  RunObserver* observer_ = nullptr;
  std::mutex mutex_;
  std::unordered_map<int64_t, std::function<void()>> watched_;
};

}  // namespace creatord::queue
