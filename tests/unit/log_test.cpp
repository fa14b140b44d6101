#include "core/log.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <string>
#include <thread>

#include <gtest/gtest.h>

using namespace creatord;

namespace {

// Reads a pipe to its end (every writer closed) on a thread of its own.
class PipeReader {
 public:
  explicit PipeReader(int fd) : fd_(fd) {}
  void start() {
    thread_ = std::thread([this] {
      char buf[65536];
      for (;;) {
        ssize_t n = ::read(fd_, buf, sizeof buf);
        if (n <= 0) return;
        text_.append(buf, static_cast<size_t>(n));
      }
    });
  }
  std::string finish() {
    thread_.join();
    return text_;
  }

 private:
  int fd_;
  std::string text_;
  std::thread thread_;
};

size_t count_lines(const std::string& text, const std::string& needle, std::set<int64_t>* ids = nullptr) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++n;
    if (ids) ids->insert(std::stoll(text.substr(at + needle.size())));
  }
  return n;
}

// The output blocked (a pipe nobody reads): access lines beyond the thread's buffer are dropped
// and counted instead of stopping the thread; what was kept all arrives once the output moves,
// and shutdown writes the rest.
TEST(Log, AccessLinesAreDroppedAndCountedWhileTheOutputIsBlockedAndTheRestArrive) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  log::init(log::Level::info, {.fd = fds[1], .access_buffer_bytes = 64 * 1024});
  uint64_t dropped_before = log::dropped_lines();
  constexpr int64_t kLines = 20000;  // about 2 MB: far more than the pipe and the buffer hold
  for (int64_t i = 0; i < kLines; ++i) log::access("request", {{"n", i}, {"path", "/api/creators?limit=50"}});
  uint64_t dropped = log::dropped_lines() - dropped_before;
  EXPECT_GT(dropped, 0u);
  EXPECT_LT(dropped, static_cast<uint64_t>(kLines));
  log::info("an ordinary line is never dropped");
  PipeReader reader(fds[0]);
  reader.start();
  log::shutdown();
  ::close(fds[1]);
  std::string text = reader.finish();
  ::close(fds[0]);
  std::set<int64_t> ids;
  EXPECT_EQ(count_lines(text, "\"msg\":\"request\",\"n\":", &ids) + dropped, static_cast<uint64_t>(kLines));
  EXPECT_EQ(ids.size() + dropped, static_cast<uint64_t>(kLines));  // each kept line once
  EXPECT_EQ(count_lines(text, "an ordinary line is never dropped"), 1u);
}

// Shutdown writes every line from every thread: nothing waits for the next flush.
TEST(Log, ShutdownWritesEveryLineOfEveryThread) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  PipeReader reader(fds[0]);
  reader.start();
  log::init(log::Level::info, {.fd = fds[1]});
  uint64_t dropped_before = log::dropped_lines();
  constexpr int kThreads = 4, kEach = 5000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([t] {
      for (int i = 0; i < kEach; ++i) log::access("request", {{"n", int64_t{t} * kEach + i}});
    });
  for (auto& th : threads) th.join();
  log::access("request", {{"n", int64_t{kThreads} * kEach}});  // this thread's, just before shutdown
  log::shutdown();
  ::close(fds[1]);
  std::string text = reader.finish();
  ::close(fds[0]);
  EXPECT_EQ(log::dropped_lines(), dropped_before);
  std::set<int64_t> ids;
  EXPECT_EQ(count_lines(text, "\"msg\":\"request\",\"n\":", &ids), size_t{kThreads} * kEach + 1);
  EXPECT_EQ(ids.size(), size_t{kThreads} * kEach + 1);
}

TEST(Log, LinesAreJsonWithAMillisecondTimestamp) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  PipeReader reader(fds[0]);
  reader.start();
  log::init(log::Level::info, {.fd = fds[1]});
  log::access("request", {{"status", 200}, {"duration_ms", 1.5}, {"ok", true}, {"path", "/a\"b"}});
  log::shutdown();
  ::close(fds[1]);
  std::string text = reader.finish();
  ::close(fds[0]);
  ASSERT_EQ(text.back(), '\n');
  // {"ts":"2026-11-29T06:30:01.123Z",...
  ASSERT_GT(text.size(), 33u);
  EXPECT_EQ(text.substr(0, 7), "{\"ts\":\"");
  EXPECT_EQ(text[7 + 19], '.');
  EXPECT_EQ(text[7 + 23], 'Z');
  EXPECT_NE(text.find(R"("level":"info","msg":"request","status":200,"duration_ms":1.5,"ok":true,"path":"/a\"b"})"),
            std::string::npos)
      << text;
}

}  // namespace
