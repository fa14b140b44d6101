#include "core/blocking_pool.hpp"

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>

#include "core/log.hpp"

namespace creatord {

namespace {

std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}
std::vector<const BlockingPool*>& registry() {
  static std::vector<const BlockingPool*> pools;
  return pools;
}

}  // namespace

void BlockingPool::for_each(const std::function<void(const BlockingPool&)>& fn) {
  std::lock_guard lock(registry_mutex());
  for (const auto* p : registry()) fn(*p);
}

BlockingPool::Stats BlockingPool::stats() const {
  Stats s;
  {
    std::lock_guard lock(mutex_);
    s.threads = threads_.size();
    s.queued = queue_.size();
  }
  s.busy = busy_.load(std::memory_order_relaxed);
  s.completed = completed_.load(std::memory_order_relaxed);
  s.rejected = rejected_.load(std::memory_order_relaxed);
  s.wait = wait_.snapshot();
  s.run = run_.snapshot();
  return s;
}

BlockingPool::BlockingPool(std::string name, size_t threads, size_t max_queue, int nice_increment, bool idle_policy)
    : name_(std::move(name)), max_queue_(max_queue) {
  {
    std::lock_guard lock(registry_mutex());
    registry().push_back(this);
  }
  if (threads == 0) threads = 1;
  threads_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) {
    threads_.emplace_back([this, i, nice_increment, idle_policy] { run(i, nice_increment, idle_policy); });
  }
}

BlockingPool::~BlockingPool() {
  stop();
  std::lock_guard lock(registry_mutex());
  auto& pools = registry();
  pools.erase(std::remove(pools.begin(), pools.end(), this), pools.end());
}

bool BlockingPool::submit(Task task) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || queue_.size() >= max_queue_) {
      rejected_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    queue_.push_back(Queued{std::move(task), std::chrono::steady_clock::now()});
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
    Queued item;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    auto started = std::chrono::steady_clock::now();
    wait_.observe(started - item.since);
    busy_.fetch_add(1, std::memory_order_relaxed);
    try {
      item.task(index);
    } catch (const std::exception& e) {
      log::error("blocking task threw", {{"pool", name_}, {"error", e.what()}});
    }
    busy_.fetch_sub(1, std::memory_order_relaxed);
    run_.observe(std::chrono::steady_clock::now() - started);
    completed_.fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace creatord
