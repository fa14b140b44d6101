// A fixed set of threads for blocking work (SQLite reads, file I/O, rendering) so that the I/O
// threads never block. The queue is bounded: when it is full, submit() fails at once and the
// caller answers 503 instead of letting memory grow without limit.
#pragma once
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

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

 private:
  void run(size_t index, int nice_increment, bool idle_policy);

  std::string name_;
  size_t max_queue_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Task> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace creatord
