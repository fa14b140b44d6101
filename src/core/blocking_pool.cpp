#include "core/blocking_pool.hpp"

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/log.hpp"

namespace creatord {

BlockingPool::BlockingPool(std::string name, size_t threads, size_t max_queue, int nice_increment, bool idle_policy)
    : name_(std::move(name)), max_queue_(max_queue) {
  if (threads == 0) threads = 1;
  threads_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) {
    threads_.emplace_back([this, i, nice_increment, idle_policy] { run(i, nice_increment, idle_policy); });
  }
}

BlockingPool::~BlockingPool() { stop(); }

bool BlockingPool::submit(Task task) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || queue_.size() >= max_queue_) return false;
    queue_.push_back(std::move(task));
  }
  cv_.notify_one();
  return true;
}

size_t BlockingPool::queued() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

void BlockingPool::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void BlockingPool::run(size_t index, int nice_increment, bool idle_policy) {
  std::string thread_name = (name_ + "-" + std::to_string(index)).substr(0, 15);
  pthread_setname_np(pthread_self(), thread_name.c_str());
  // Linux applies nice per thread: lower this thread's priority only.
  if (nice_increment > 0) setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), nice_increment);
  if (idle_policy) {
    // SCHED_IDLE: the kernel preempts it the moment an I/O thread wakes (a nice value alone
    // still lets it keep a core for a whole time slice).
    sched_param sp{};
    sp.sched_priority = 0;
    if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp) != 0)
      log::warn("SCHED_IDLE refused; background threads only niced", {{"pool", name_}});
  }
  for (;;) {
    Task task;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    try {
      task(index);
    } catch (const std::exception& e) {
      log::error("blocking task threw", {{"pool", name_}, {"error", e.what()}});
    }
  }
}

}  // namespace creatord
