// Every store and queue call is an awaitable Result: it never blocks the caller's thread.
#pragma once
#include <boost/asio/awaitable.hpp>

#include "core/result.hpp"

namespace creatord {

template <class T>
using Async = boost::asio::awaitable<Result<T>>;

}  // namespace creatord
