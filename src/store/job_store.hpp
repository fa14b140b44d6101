// The durable job queue. Every change a worker makes is fenced by (job id, attempt, owner):
// a worker that lost its lease cannot overwrite the job.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "jobs/job.hpp"
#include "store/store.hpp"

namespace creatord {

struct EnqueueResult {
  Job job;
  bool created = true;  // false: the idempotency key named an existing job
};

class JobStore {
 public:
  virtual ~JobStore() = default;

  // Errors: conflict never (an existing key returns that job with created = false).
  virtual Async<EnqueueResult> enqueue(NewJob job) = 0;
  // Many jobs in one transaction; returns how many were created.
  virtual Async<int64_t> enqueue_many(std::vector<NewJob> jobs) = 0;
  virtual Async<Job> get_job(int64_t id) = 0;  // with its steps
  virtual Async<Page<Job>> list_jobs(JobFilter filter, PageQuery page) = 0;

  // Claims up to n runnable jobs of the queue (queued or retrying, run_at reached) in one
  // statement: they become running, attempt + 1, leased to owner until now + lease.
  virtual Async<std::vector<Job>> claim(std::string queue, std::string owner, int n, int64_t lease_ms) = 0;
  // Renews the owner's leases; returns the ids of its jobs whose cancellation was requested.
  virtual Async<std::vector<int64_t>> heartbeat(std::string owner, int64_t lease_ms) = 0;
  // Fenced; false when the job is no longer this attempt's (lease lost, cancelled).
  virtual Async<bool> update_step(std::string owner, StepUpdate update) = 0;
  // Fenced; one result per finish, in order.
  virtual Async<std::vector<bool>> finish(std::string owner, std::vector<JobFinish> finishes) = 0;

  // Queued or retrying: cancelled at once. Running: cancel_requested (the worker stops it).
  // Finished: conflict.
  virtual Async<Job> request_cancel(int64_t id) = 0;
  // Failed or cancelled jobs run again (attempts start over; finished steps are kept).
  virtual Async<Job> retry_job(int64_t id) = 0;

  // Running jobs whose lease expired (or, with all_running, every running job: used at start-up
  // when this process owns the store alone) go back to the queue with the attempt counted, or
  // fail when attempts are used up. Returns how many.
  virtual Async<int64_t> recover_jobs(bool all_running, int64_t retry_base_ms) = 0;
  // Deletes finished jobs older than the cutoff (with steps and events). Returns how many.
  virtual Async<int64_t> prune_jobs(int64_t finished_before_ms) = 0;
  // Earliest run_at of the queue's waiting jobs (to sleep until then); 0 when none.
  virtual Async<int64_t> next_run_at(std::string queue) = 0;
  virtual Async<std::vector<JobEvent>> job_events(int64_t job_id, int64_t after_seq, int limit) = 0;
};

}  // namespace creatord
