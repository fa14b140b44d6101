// Runs one awaitable to completion (tests and benchmarks). The io_context lives as long as the
// thread, as the server's do: a store may finish a socket wait on its own thread after the
// awaitable returned, and its completion must still find the executor alive.
#pragma once
#include <exception>
#include <optional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

template <class T>
T run(boost::asio::awaitable<T> aw) {
  static thread_local boost::asio::io_context ioc;
  ioc.restart();
  auto guard = boost::asio::make_work_guard(ioc);
  std::optional<T> out;
  std::exception_ptr error;
  boost::asio::co_spawn(
      ioc, [&]() -> boost::asio::awaitable<void> { out.emplace(co_await std::move(aw)); },
      [&](std::exception_ptr e) {
        error = e;
        ioc.stop();
      });
  ioc.run();
  if (error) std::rethrow_exception(error);
  return std::move(*out);
}
