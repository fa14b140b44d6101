// Coroutines that a frame spawns and waits for before it returns: their owner. A helper that
// uses its spawner's locals (a pipe reader, a step) cannot outlive them, and an exception it
// throws is logged instead of lost. Single-threaded: spawn, wait and the tasks all run on one
// executor (an io_context run by one thread, or a strand).
#pragma once
#include <chrono>
#include <cstddef>
#include <exception>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/log.hpp"

namespace creatord {

class TaskGroup {
 public:
  explicit TaskGroup(boost::asio::any_io_executor ex) : ex_(std::move(ex)), idle_(ex_) {}
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;

  template <class Task>
  void spawn(Task task) {
    ++running_;
    boost::asio::co_spawn(ex_, std::move(task), [this](std::exception_ptr e) {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          log::error("task failed", {{"error", ex.what()}});
        } catch (...) {
          log::error("task failed", {{"error", "unknown exception"}});
        }
      }
      if (--running_ == 0) idle_.cancel();
    });
  }

  size_t running() const { return running_; }

  // Until every task spawned has ended, or `limit` has passed; true when none runs.
  boost::asio::awaitable<bool> wait(std::chrono::steady_clock::duration limit = std::chrono::hours(24 * 365)) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (running_ > 0 && std::chrono::steady_clock::now() < until) {
      idle_.expires_at(until);
      co_await idle_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    }
    co_return running_ == 0;
  }

 private:
  boost::asio::any_io_executor ex_;
  boost::asio::steady_timer idle_;
  size_t running_ = 0;
};

}  // namespace creatord
