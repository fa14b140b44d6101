#pragma once
#include <boost/asio/awaitable.hpp>

#include "store/store.hpp"

namespace creatord {
// Seeds a demo set of creators when the store has none (for `make run`).
boost::asio::awaitable<void> seed_demo(Store& store);
}
