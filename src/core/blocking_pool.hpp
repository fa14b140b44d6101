// A fixed set of threads for blocking work (SQLite reads, file I/O, rendering) so that the I/O
// threads never block. The queue is bounded: when it is full, submit() fails at once and the
// caller answers 503 instead of letting memory grow without limit.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "metrics/histogram.hpp"

namespace creatord {

class BlockingPool {
 public:
  // A task receives the index (0..threads-1) of the thread running it, so callers can keep
  // per-thread state such as a database connection.
  using Task = std::function<void(size_t worker)>;

  // Background pools: nice_increment > 0 lowers the threads' priority; idle_policy puts them in
  // SCHED_IDLE (they run only on otherwise idle CPU, preempted at once by any normal thread).
  BlockingPool(std::string name, size_t threads, size_t max_queue, int nice_increment = 0, bool idle_policy = false);
  ~BlockingPool();
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  // False when the queue is full or the pool is stopping.
  bool submit(Task task);
  // Runs what is queued, then joins the threads. Idempotent.
  void stop();
  size_t size() const { return threads_.size(); }
  size_t queued() const;
  const std::string& name() const { return name_; }

  // What /metrics shows of a pool: recorded with relaxed atomics, read at scrape time.
  struct Stats {
    size_t threads = 0, queued = 0, busy = 0;
    uint64_t completed = 0, rejected = 0;
    metrics::HistogramSnapshot wait;  // from submit() to a thread taking the task
    metrics::HistogramSnapshot run;   // the task itself
  };
  Stats stats() const;
  // Every pool alive now, in construction order (for /metrics); fn must not create or destroy pools.
  static void for_each(const std::function<void(const BlockingPool&)>& fn);

 private:
  struct Queued {
    Task task;
    std::chrono::steady_clock::time_point since;
  };
  void run(size_t index, int nice_increment, bool idle_policy);

  std::string name_;
  size_t max_queue_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Queued> queue_;
  std::atomic<size_t> busy_{0};
  std::atomic<uint64_t> completed_{0}, rejected_{0};
  metrics::Histogram wait_{metrics::latency_bounds()};
  metrics::Histogram run_{metrics::latency_bounds()};
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace creatord
