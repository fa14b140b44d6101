// Internal to the SQLite store: how a call becomes a read on the reader pool or a write on the
// writer thread, awaited without blocking. Included by the store's .cpp files only.
#pragma once
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/offload.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace creatord {

template <class T, class F>
Async<T> SqliteStore::read(F fn) {
  auto on_reader = [this, fn = std::move(fn)](size_t worker) -> Result<T> {
    try {
      return fn(*readers_[worker]);
    } catch (const std::exception& e) {
      return Error::make(ErrorCode::internal, e.what());
    }
  };
  // A coroutine itself, so on_reader lives in this frame while offload() takes it.
  co_return co_await offload<T>(*read_pool_, on_reader);
}

// The queue driver's insert (sqlite_queue.cpp), for writes that enqueue inside their own
// transaction (the outbox).
Result<queue::Inserted> sqlite_insert_job(sqlite::Db& db, const NewJob& job, int64_t now);
// first_event = false: the caller records the job's first event (inserts of many jobs do it in
// one statement).
Result<queue::Inserted> sqlite_insert_job(sqlite::Db& db, const NewJob& job, int64_t now, bool first_event);

template <class T, class F>
Async<T> SqliteStore::write(F fn, bool changes_creators) {
  // use_awaitable initiates lazily, after this function returned: own the work.
  auto initiate = [this, changes_creators, work = std::make_shared<F>(std::move(fn))](auto handler) {
    using Handler = decltype(handler);
    auto h = std::make_shared<Handler>(std::move(handler));
    auto result = std::make_shared<std::optional<Result<T>>>();
    auto deliver = [h](Result<T> r) {
      auto ex = boost::asio::get_associated_executor(*h);
      boost::asio::post(ex, [h, r = std::make_shared<Result<T>>(std::move(r))]() mutable {
        std::move(*h)(std::move(*r));
      });
    };
    WriteItem item{
        [work, result](sqlite::Db& db) {
          try {
            result->emplace((*work)(db));
          } catch (const std::exception& e) {
            result->emplace(Error::make(ErrorCode::internal, e.what()));
          }
          return (*result)->ok();
        },
        [result, deliver](const Error* err) {
          if (err) deliver(Result<T>(*err));
          else deliver(std::move(**result));
        },
        changes_creators};
    if (!submit_write(std::move(item))) {
      deliver(Result<T>(Error::make(ErrorCode::unavailable, "store is overloaded or stopping")));
    }
  };
  return boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, void(Result<T>)>(initiate,
                                                                               boost::asio::use_awaitable);
}

}  // namespace creatord
