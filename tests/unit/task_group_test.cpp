#include "core/task_group.hpp"

#include <stdexcept>

#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>

using namespace creatord;
namespace asio = boost::asio;

namespace {

asio::awaitable<void> sleep_ms(int ms) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer t(ex, std::chrono::milliseconds(ms));
  co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
}

}  // namespace

// The owner's frame resumes only after every task has ended, a failing one included.
TEST(TaskGroup, WaitReturnsAfterEveryTaskEndedFailuresIncluded) {
  asio::io_context ioc;
  std::vector<int> ended;
  auto owner = [&]() -> asio::awaitable<size_t> {
    auto ex = co_await asio::this_coro::executor;
    TaskGroup group(ex);
    for (int i = 0; i < 3; ++i)
      group.spawn([&ended, i]() -> asio::awaitable<void> {
        co_await sleep_ms(10 * (3 - i));
        ended.push_back(i);
      });
    group.spawn([]() -> asio::awaitable<void> {
      co_await sleep_ms(5);
      throw std::runtime_error("boom");
    });
    EXPECT_EQ(group.running(), 4u);
    co_await group.wait();
    co_return group.running();
  };
  auto left = asio::co_spawn(ioc, owner(), asio::use_future);
  ioc.run();
  EXPECT_EQ(left.get(), 0u);
  EXPECT_EQ(ended, (std::vector<int>{2, 1, 0}));
}

TEST(TaskGroup, WaitWithALimitReturnsFalseWhileATaskRuns) {
  asio::io_context ioc;
  asio::steady_timer release(ioc, std::chrono::hours(1));
  auto owner = [&]() -> asio::awaitable<std::pair<bool, bool>> {
    auto ex = co_await asio::this_coro::executor;
    TaskGroup group(ex);
    group.spawn([&]() -> asio::awaitable<void> { co_await release.async_wait(asio::as_tuple(asio::use_awaitable)); });
    bool early = co_await group.wait(std::chrono::milliseconds(20));
    release.cancel();
    bool late = co_await group.wait();
    co_return std::make_pair(early, late);
  };
  auto r = asio::co_spawn(ioc, owner(), asio::use_future);
  ioc.run();
  auto [early, late] = r.get();
  EXPECT_FALSE(early);
  EXPECT_TRUE(late);
}
