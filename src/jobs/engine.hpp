// The job engine: claims jobs from the store in batches, runs them on its own thread (the HTTP
// threads never run job code), renews leases, recovers jobs whose worker died, retries with
// backoff, enforces timeouts and per-queue concurrency, and prunes old jobs.
#pragma once
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include "jobs/event_hub.hpp"
#include "jobs/pipeline.hpp"
#include "queue/job_queue.hpp"

namespace creatord {

struct EngineOptions {
  std::map<std::string, int> queues{{"generate", 2}, {"default", 8}};  // queue -> concurrency
  int64_t lease_ms = 30'000;           // a dead worker's jobs return within this
  int64_t heartbeat_ms = 10'000;       // lease renewal and remote-cancel check
  int64_t poll_ms = 1'000;             // fallback wake-up (delayed jobs, other instances)
  int64_t retention_ms = 7LL * 24 * 3600 * 1000;  // finished jobs kept this long
  int64_t prune_interval_ms = 3'600'000;
  int64_t shutdown_grace_ms = 10'000;  // running jobs get this long to stop at shutdown
  int claim_batch = 64;
  bool exclusive = true;  // this process owns the store alone: running jobs at start are orphans
  bool run_jobs = true;   // false: an API-only instance (enqueues, never claims)
  std::string owner;      // lease owner id; empty: generated
};

// Runs one claimed job. The engine turns the outcome into the job's next state.
struct JobRun {
  const Job& job;
  CancelState& cancel;
  StepRecorder record;
};
using JobHandler = std::function<boost::asio::awaitable<JobOutcome>(JobRun&)>;

class JobEngine {
 public:
  JobEngine(EngineOptions options, queue::JobQueue& queue, EventHub& hub);
  ~JobEngine();

  // Handlers by job kind; register before start().
  void handle(const std::string& kind, JobHandler handler);
  void start();
  // Stops claiming, asks running jobs to stop and hands them back to the queue (their
  // finished steps kept), waits up to the grace period, then stops the thread.
  void stop();

  const std::string& owner() const { return options_.owner; }
  const EngineOptions& options() const { return options_; }

 private:
  boost::asio::awaitable<void> dispatch(std::string queue, int limit);
  boost::asio::awaitable<void> run_job(Job job);
  boost::asio::awaitable<bool> record_step(StepUpdate u);
  // Jobs that end together are recorded in one store call (one transaction).
  boost::asio::awaitable<Result<bool>> finish_batched(queue::Finished f);
  boost::asio::awaitable<void> flush_finishes();
  boost::asio::awaitable<void> heartbeat_loop();
  boost::asio::awaitable<void> maintenance_loop();

  EngineOptions options_;
  queue::JobQueue& queue_;
  EventHub& hub_;
  std::map<std::string, JobHandler> handlers_;
  boost::asio::io_context ioc_{1};
  std::thread thread_;
  bool stopping_ = false;                                           // engine thread only
  std::unordered_map<int64_t, std::shared_ptr<CancelState>> running_;  // engine thread only
  std::map<std::string, int> running_per_queue_;                    // engine thread only
  struct PendingFinish;
  std::vector<std::shared_ptr<PendingFinish>> pending_finishes_;    // engine thread only
  bool flushing_ = false;                                           // engine thread only
};

}  // namespace creatord
