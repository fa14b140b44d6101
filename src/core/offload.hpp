// Awaiting blocking work from a coroutine without blocking its thread: the work runs on a
// BlockingPool and the coroutine resumes on its own executor with the result.
#pragma once
#include <memory>

#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/blocking_pool.hpp"
#include "core/result.hpp"

namespace creatord {

// fn: Result<T>(size_t worker). When the pool's queue is full the result is a 503 error.
//
// GCC 12 destroys a lambda temporary twice when it appears inside a co_await expression (the
// closure lives across the suspension). Pass a named lambda: `co_await offload<T>(pool, fn)`.
// It is taken by reference and moved from before this coroutine first suspends.
template <class T, class F>
boost::asio::awaitable<Result<T>> offload(BlockingPool& pool, F& fn) {
  auto work = std::make_shared<F>(std::move(fn));
  auto initiate = [&pool, work](auto handler) {
    using Handler = decltype(handler);
    auto h = std::make_shared<Handler>(std::move(handler));
    bool queued = pool.submit([h, work](size_t worker) {
      auto result = std::make_shared<Result<T>>((*work)(worker));
      auto ex = boost::asio::get_associated_executor(*h);
      boost::asio::post(ex, [h, result]() mutable { std::move(*h)(std::move(*result)); });
    });
    if (!queued) {
      auto ex = boost::asio::get_associated_executor(*h);
      boost::asio::post(ex, [h]() mutable {
        std::move(*h)(Result<T>(Error::make(ErrorCode::unavailable, "server is overloaded, retry later")));
      });
    }
  };
  co_return co_await boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&,
                                                 void(Result<T>)>(initiate,
                                                                  boost::asio::use_awaitable);
}

}  // namespace creatord
