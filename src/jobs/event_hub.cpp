#include "jobs/event_hub.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace creatord {

namespace asio = boost::asio;

Subscription::Subscription(EventHub& hub, std::string topic, asio::any_io_executor ex)
    : hub_(hub), topic_(std::move(topic)), ex_(ex), timer_(ex) {}

Subscription::~Subscription() { hub_.remove(topic_, this); }

void Subscription::wake() {
  notified_.store(true);
  // The timer belongs to the subscriber's executor: cancel it there.
  asio::post(ex_, [w = self_] {
    if (auto s = w.lock()) s->timer_.cancel();
  });
}

asio::awaitable<bool> Subscription::wait(std::chrono::milliseconds timeout) {
  if (notified_.exchange(false)) co_return true;
  timer_.expires_after(timeout);
  co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
  co_return notified_.exchange(false);
}

std::shared_ptr<Subscription> EventHub::subscribe(const std::string& topic, asio::any_io_executor ex) {
  std::shared_ptr<Subscription> sub(new Subscription(*this, topic, ex));
  sub->self_ = sub;
  std::lock_guard lock(mutex_);
  auto& list = topics_[topic];
  std::erase_if(list, [](const auto& w) { return w.expired(); });
  list.push_back(sub);
  return sub;
}

void EventHub::notify(const std::string& topic) {
  std::vector<std::shared_ptr<Subscription>> subs;
  {
    std::lock_guard lock(mutex_);
    auto it = topics_.find(topic);
    if (it == topics_.end()) return;
    for (auto& w : it->second)
      if (auto s = w.lock()) subs.push_back(std::move(s));
  }
  for (auto& s : subs) s->wake();
}

void EventHub::remove(const std::string& topic, Subscription* sub) {
  std::lock_guard lock(mutex_);
  auto it = topics_.find(topic);
  if (it == topics_.end()) return;
  std::erase_if(it->second, [sub](const auto& w) {
    auto s = w.lock();
    return !s || s.get() == sub;
  });
  if (it->second.empty()) topics_.erase(it);
}

}  // namespace creatord
