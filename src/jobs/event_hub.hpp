// In-process wake-ups by topic ("job:42", "queue:generate"): a job's progress wakes its SSE
// clients and ?wait= requests; an enqueue wakes the queue's dispatcher. Carries no data: the
// woken side reads what changed from the store, so a missed wake-up loses nothing.
#pragma once
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

namespace creatord {

class EventHub;

class Subscription {
 public:
  ~Subscription();
  Subscription(const Subscription&) = delete;
  // Returns true when notified since the last wait (or during it), false on timeout.
  // Waits on the executor the subscription was made for; holds no thread.
  boost::asio::awaitable<bool> wait(std::chrono::milliseconds timeout);
  // Wakes the waiter now (e.g. its client went away).
  void wake();

 private:
  friend class EventHub;
  Subscription(EventHub& hub, std::string topic, boost::asio::any_io_executor ex);

  EventHub& hub_;
  std::string topic_;
  boost::asio::any_io_executor ex_;
  boost::asio::steady_timer timer_;
  std::atomic<bool> notified_{false};
  std::weak_ptr<Subscription> self_;
};

class EventHub {
 public:
  std::shared_ptr<Subscription> subscribe(const std::string& topic, boost::asio::any_io_executor ex);
  void notify(const std::string& topic);
  static std::string job_topic(int64_t job_id) { return "job:" + std::to_string(job_id); }
  static std::string queue_topic(const std::string& queue) { return "queue:" + queue; }

 private:
  friend class Subscription;
  void remove(const std::string& topic, Subscription* sub);

  std::mutex mutex_;
  std::unordered_map<std::string, std::vector<std::weak_ptr<Subscription>>> topics_;
};

}  // namespace creatord
