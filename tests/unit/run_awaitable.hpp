// Runs one awaitable to completion on a private io_context (tests and benchmarks).
#pragma once
#include <exception>
#include <optional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

template <class T>
T run(boost::asio::awaitable<T> aw) {
  boost::asio::io_context ioc;
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
