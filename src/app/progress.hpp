// One status line redrawn in place on a terminal (stderr), at most ten times a second; nothing
// when stderr is not a terminal. For the long commands: backup, restore, import. Thread-safe.
#pragma once
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>

namespace creatord {

class Progress {
 public:
  Progress() : tty_(::isatty(2) == 1) {}
  // final: drawn whatever the time, and the line is ended.
  void show(const std::string& line, bool final = false) {
    if (!tty_) return;
    std::lock_guard lock(mutex_);
    auto now = std::chrono::steady_clock::now();
    if (!final && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    std::fprintf(stderr, "\r%s\x1b[K%s", line.c_str(), final ? "\n" : "");
    std::fflush(stderr);
  }

 private:
  bool tty_;
  std::mutex mutex_;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace creatord
