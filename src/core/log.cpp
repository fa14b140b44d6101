#include "core/log.hpp"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <iterator>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "core/clock.hpp"
#include "core/json_text.hpp"
#include "core/log_console.hpp"
#include "core/redact.hpp"

namespace creatord::log {
namespace {

std::atomic<int> g_min_level{static_cast<int>(Level::info)};
std::atomic<uint64_t> g_dropped{0};
std::atomic<int> g_format{static_cast<int>(Format::json)};
std::atomic<bool> g_colour{false};

const char* level_name(Level l) {
  switch (l) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
  }
  return "info";
}

// Lines a thread wrote that the writer has not taken yet. The owner appends under `mutex`, which
// only the writer contends for, a few times a second.
struct ThreadBuffer {
  std::mutex mutex;
  std::string text;
  bool orphaned = false;  // its thread ended; the writer drains it once more and forgets it
};

// The one thread that writes to the output: it takes every thread's buffer when woken (an
// ordinary line, or shutdown) or every kFlushEvery (access lines), so a request costs an append
// to memory and the I/O threads never wait for the terminal or a pipe.
class Writer {
 public:
  static constexpr auto kFlushEvery = std::chrono::milliseconds(100);
  static constexpr auto kCoalesce = std::chrono::milliseconds(2);

  Writer(int fd, size_t access_cap) : fd_(fd), access_cap_(access_cap) { thread_ = std::thread([this] { run(); }); }
  Writer(const Writer&) = delete;

  // Writes everything the buffers hold, then ends the thread.
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }

  std::shared_ptr<ThreadBuffer> add_buffer() {
    auto b = std::make_shared<ThreadBuffer>();
    std::lock_guard lock(mutex_);
    buffers_.push_back(b);
    return b;
  }
  void wake() {
    {
      std::lock_guard lock(mutex_);
      if (woken_) return;  // already on its way: no second wake-up
      woken_ = true;
    }
    cv_.notify_one();
  }
  size_t access_cap() const { return access_cap_; }

 private:
  void run() {
    std::string out;
    auto last_write = std::chrono::steady_clock::now() - kCoalesce;
    for (;;) {
      bool last;
      std::vector<std::shared_ptr<ThreadBuffer>> buffers;
      {
        std::unique_lock lock(mutex_);
        cv_.wait_for(lock, kFlushEvery, [this] { return woken_ || stop_; });
        // Lines that come in a stream (one per job at thousands of jobs a second) are written
        // together, one write per kCoalesce at most; the first line after a quiet spell at once.
        cv_.wait_until(lock, last_write + kCoalesce, [this] { return stop_; });
        woken_ = false;
        last = stop_;
        std::erase_if(buffers_, [](const auto& b) {
          std::lock_guard l(b->mutex);
          return b->orphaned && b->text.empty();
        });
        buffers = buffers_;
      }
      for (const auto& b : buffers) {
        std::lock_guard l(b->mutex);
        if (out.empty()) out.swap(b->text);  // the buffer keeps the capacity `out` had
        else {
          out += b->text;
          b->text.clear();
        }
      }
      write_all(out);
      out.clear();
      last_write = std::chrono::steady_clock::now();
      if (last) return;
    }
  }

  void write_all(std::string_view s) {
    while (!s.empty()) {
      ssize_t n = ::write(fd_, s.data(), s.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;  // nowhere to write: the lines are lost, the service goes on
      s.remove_prefix(static_cast<size_t>(n));
    }
  }

  int fd_;
  size_t access_cap_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool woken_ = false;
  bool stop_ = false;
  std::vector<std::shared_ptr<ThreadBuffer>> buffers_;
  std::thread thread_;
};

// Writers are never destroyed: a thread may still hold one after shutdown (it then writes
// directly). A stopped writer is a few bytes; a process starts one or two.
std::mutex g_init_mutex;
auto* g_writers = new std::vector<std::unique_ptr<Writer>>;  // every writer started, under g_init_mutex
std::atomic<Writer*> g_active{nullptr};

// This thread's buffer with the writer it belongs to (a new one after shutdown and init).
struct Local {
  Writer* writer = nullptr;
  std::shared_ptr<ThreadBuffer> buffer;
  ~Local() { orphan(); }
  void orphan() {
    if (!buffer) return;
    std::lock_guard l(buffer->mutex);
    buffer->orphaned = true;
  }
};

ThreadBuffer* local_buffer(Writer* active) {
  thread_local Local local;
  if (local.writer != active) {
    std::lock_guard lock(g_init_mutex);
    if (g_active.load() != active) return nullptr;  // shut down meanwhile
    local.orphan();
    local.writer = active;
    local.buffer = active->add_buffer();
  }
  return local.buffer.get();
}

// Every text is redacted here, once, whoever wrote it: a secret cannot reach the log.
std::string redacted(std::string_view s) { return needs_redaction(s) ? redact(s) : std::string(s); }

std::string value_text(const Field& f) {
  return std::visit(
      [](const auto& v) -> std::string {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, std::string_view>) return redacted(v);
        else if constexpr (std::is_same_v<V, bool>) return v ? "true" : "false";
        else if constexpr (std::is_same_v<V, double>) return fmt::format("{:.4g}", v);
        else return fmt::to_string(v);
      },
      f.value);
}

const Field* find_field(std::initializer_list<Field> fields, std::string_view key) {
  for (const auto& f : fields)
    if (f.key == key) return &f;
  return nullptr;
}

// "GET /api/creators 200 1.2ms (127.0.0.1)", the status coloured by its class.
std::string request_text(std::initializer_list<Field> fields, bool colour) {
  auto get = [&](std::string_view k) {
    const Field* f = find_field(fields, k);
    return f ? value_text(*f) : std::string();
  };
  std::string status = get("status");
  const char* c = status.empty() ? "" : status[0] == '2' || status[0] == '3' ? "\x1b[32m" : status[0] == '4' ? "\x1b[33m" : "\x1b[31m";
  std::string st = colour && *c ? std::string(c) + status + "\x1b[0m" : status;
  return fmt::format("{} {} {} {}ms ({})", get("method"), get("path"), st, get("duration_ms"), get("remote"));
}

void append_line(std::string& line, Level level, std::string_view msg, std::initializer_list<Field> fields) {
  if (g_format.load(std::memory_order_relaxed) == static_cast<int>(Format::text)) {
    line += text_line(now_ms(), level, msg, fields, g_colour.load(std::memory_order_relaxed));
    line.push_back('\n');
    return;
  }
  line += "{\"ts\":\"";
  append_rfc3339(line, now_ms());
  line += "\",\"level\":\"";
  line += level_name(level);
  line += "\",\"msg\":";
  // Every text is redacted here, once, whoever wrote it: a secret cannot reach the log.
  auto append_text = [&line](std::string_view s) {
    if (needs_redaction(s)) append_json_string(line, redact(s));
    else append_json_string(line, s);
  };
  append_text(msg);
  for (const auto& f : fields) {
    line.push_back(',');
    append_json_string(line, f.key);
    line.push_back(':');
    std::visit(
        [&](const auto& v) {
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, std::string_view>) append_text(v);
          else if constexpr (std::is_same_v<V, bool>) line += v ? "true" : "false";
          else fmt::format_to(std::back_inserter(line), "{}", v);
        },
        f.value);
  }
  line += "}\n";
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) { creatord::append_json_string(out, s); }

void init(Level min_level, Options options) {
  std::lock_guard lock(g_init_mutex);
  g_min_level = static_cast<int>(min_level);
  if (g_active.load()) return;
  g_writers->push_back(std::make_unique<Writer>(options.fd, options.access_buffer_bytes));
  g_active = g_writers->back().get();
}

void shutdown() {
  std::lock_guard lock(g_init_mutex);
  Writer* last = g_active.exchange(nullptr);
  if (last) last->stop();
}

Level parse_level(std::string_view name, Level fallback) {
  if (name == "debug") return Level::debug;
  if (name == "info") return Level::info;
  if (name == "warn" || name == "warning") return Level::warn;
  if (name == "error") return Level::error;
  return fallback;
}

bool enabled(Level level) { return static_cast<int>(level) >= g_min_level.load(std::memory_order_relaxed); }

uint64_t dropped_lines() { return g_dropped.load(std::memory_order_relaxed); }

void set_level(Level min_level) { g_min_level = static_cast<int>(min_level); }

bool parse_format(std::string_view name, bool stdout_is_terminal, Format& out) {
  if (name == "auto") out = stdout_is_terminal ? Format::text : Format::json;
  else if (name == "json") out = Format::json;
  else if (name == "text") out = Format::text;
  else return false;
  return true;
}

void set_format(Format format, bool colour) {
  g_format = static_cast<int>(format);
  g_colour = colour;
}

std::string text_line(int64_t ts_ms, Level level, std::string_view msg, std::initializer_list<Field> fields,
                      bool colour) {
  static constexpr const char* kColour[] = {"\x1b[2m", "\x1b[32m", "\x1b[33m", "\x1b[1;31m"};
  static constexpr const char* kName[] = {"DEBUG", "INFO", "WARN", "ERROR"};
  int l = static_cast<int>(level);
  std::string ts = format_rfc3339(ts_ms);  // 2026-11-29T06:28:32.123Z: the time of day is enough here
  std::string time = ts.size() >= 23 ? ts.substr(11, 12) : ts;
  std::string out = colour ? fmt::format("\x1b[2m{}\x1b[0m {}{:<5}\x1b[0m ", time, kColour[l], kName[l])
                           : fmt::format("{} {:<5} ", time, kName[l]);
  if (msg == "request" && find_field(fields, "status")) {
    out += request_text(fields, colour);
    return out;
  }
  out += fmt::format("{:<22}", redacted(msg));
  for (const auto& f : fields) {
    std::string v = value_text(f);
    if (v.find_first_of(" \"=") != std::string::npos || v.empty()) v = fmt::format("\"{}\"", v);
    out += colour ? fmt::format(" \x1b[36m{}\x1b[0m={}", f.key, v) : fmt::format(" {}={}", f.key, v);
  }
  return out;
}

void write(Level level, std::string_view msg, std::initializer_list<Field> fields) {
  if (!enabled(level)) return;
  Writer* active = g_active.load(std::memory_order_acquire);
  ThreadBuffer* buffer = active ? local_buffer(active) : nullptr;
  if (!buffer) {
    std::string line;
    append_line(line, level, msg, fields);
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fflush(stdout);
    return;
  }
  {
    std::lock_guard l(buffer->mutex);
    append_line(buffer->text, level, msg, fields);
  }
  active->wake();
}

void access(std::string_view msg, std::initializer_list<Field> fields) {
  if (!enabled(Level::info)) return;
  Writer* active = g_active.load(std::memory_order_acquire);
  ThreadBuffer* buffer = active ? local_buffer(active) : nullptr;
  if (!buffer) return write(Level::info, msg, fields);
  std::lock_guard l(buffer->mutex);
  size_t before = buffer->text.size();
  append_line(buffer->text, Level::info, msg, fields);
  if (buffer->text.size() > active->access_cap()) {  // the writer is behind: this line goes
    buffer->text.resize(before);
    g_dropped.fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace creatord::log
