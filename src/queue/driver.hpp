// What the queue needs of a database: SQL only, no decisions. SQLite and PostgreSQL implement it;
// one conformance suite (tests/unit/queue_driver_test.cpp) runs against both. Every time is an
// argument, so tests drive the queue with a manual clock.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/async.hpp"
#include "core/clock.hpp"
#include "domain/paging.hpp"
#include "queue/job.hpp"
#include "queue/transitions.hpp"

namespace creatord::queue {

struct Inserted {
  Job job;              // the new job, or the one its unique key named
  bool created = true;  // false: the unique key named an existing job
};

// A schedule's bookkeeping: the last slot enqueued for it.
struct ScheduleMark {
  std::string name;
  int64_t last_slot_ms = 0;
};

class Driver {
 public:
  virtual ~Driver() = default;

  // Inserts jobs in one transaction, each `initial_state(run_at, now)` with its first event.
  // A job whose unique key names a live job (created within its TTL) is not inserted: that job
  // is returned with created = false. Expired keys are released first.
  virtual Async<std::vector<Inserted>> insert(std::vector<NewJob> jobs, int64_t now) = 0;
  virtual Async<Job> get_job(int64_t id) = 0;  // with its steps
  virtual Async<Page<Job>> list_jobs(JobFilter filter, PageQuery page) = 0;

  // Claims up to n waiting jobs of an unpaused queue whose run_at has come, highest priority
  // first, in one statement (no job to two workers): running, attempt + 1, leased to owner for
  // lease_ms, a job.started event each. The clock is read once the statement can run (after any
  // wait for a connection), so a wait never eats into the lease.
  virtual Async<std::vector<Job>> claim(std::string queue, std::string owner, int n, int64_t lease_ms,
                                        const Clock& clock) = 0;
  // Renews the owner's leases for lease_ms from when it runs; returns the ids of its jobs whose
  // cancellation was requested.
  virtual Async<std::vector<int64_t>> heartbeat(std::string owner, int64_t lease_ms, const Clock& clock) = 0;
  // Fenced by (job id, attempt, owner); false when the job is no longer this attempt's.
  virtual Async<bool> update_step(std::string owner, StepUpdate update, int64_t now) = 0;
  // Applies each write where its fence holds, with its event, in one transaction; one result per
  // write, in order. Wakes the queues of jobs that became claimable (other instances too).
  virtual Async<std::vector<bool>> apply(std::vector<JobWrite> writes) = 0;
  // Running jobs whose lease expired before `now` (all running ones with all_running).
  virtual Async<std::vector<Job>> running_jobs(int64_t now, bool all_running, int limit) = 0;
  // Deletes finished jobs older than the cutoff (with steps and events). Returns how many.
  virtual Async<int64_t> prune(int64_t finished_before_ms) = 0;
  // When the dispatcher must look again: the earliest run_at after `after_ms` of the queue's
  // waiting jobs, when the queue is not paused; 0 when none. A job already due is not a reason
  // (a claim that left it was outrun by another worker, or the queue is paused: a resume wakes it).
  virtual Async<int64_t> next_run_at(std::string queue, int64_t after_ms) = 0;
  virtual Async<std::vector<JobEvent>> job_events(int64_t job_id, int64_t after_seq, int limit) = 0;

  // Counts by queue and state: waiting and running jobs now, finished ones since `since_ms`;
  // with each queue's paused flag. Queues with no jobs and no flag are absent.
  virtual Async<std::vector<QueueInfo>> queue_counts(int64_t since_ms) = 0;
  // Paused queues claim nothing, on every instance; the flag is durable.
  virtual Async<Unit> set_paused(std::string queue, bool paused, int64_t now) = 0;

  virtual Async<std::vector<ScheduleMark>> schedule_marks() = 0;
  virtual Async<Unit> set_schedule_mark(std::string name, int64_t slot_ms) = 0;
};

}  // namespace creatord::queue
