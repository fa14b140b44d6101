// Structured logging: one JSON object per line on stdout. Each thread appends its lines to its
// own buffer and one background thread writes them out, so no I/O thread waits on the terminal
// or a pipe, and a request's access line costs an append to memory, not a system call.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <variant>

namespace creatord::log {

enum class Level { debug, info, warn, error };

struct Field {
  std::string_view key;
  std::variant<std::string_view, int64_t, double, bool> value;
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const std::string& v) : key(k), value(std::string_view(v)) {}
  Field(std::string_view k, const char* v) : key(k), value(std::string_view(v)) {}
  Field(std::string_view k, int64_t v) : key(k), value(v) {}
  Field(std::string_view k, int v) : key(k), value(int64_t{v}) {}
  Field(std::string_view k, unsigned v) : key(k), value(int64_t{v}) {}
  Field(std::string_view k, uint64_t v) : key(k), value(static_cast<int64_t>(v)) {}
  Field(std::string_view k, long long v) : key(k), value(static_cast<int64_t>(v)) {}
  Field(std::string_view k, double v) : key(k), value(v) {}
  Field(std::string_view k, bool v) : key(k), value(v) {}
};

struct Options {
  int fd = 1;  // where the lines go
  // Access lines a thread may hold while the writer is behind (the output is slow or blocked);
  // beyond it they are dropped and counted (dropped_lines), so memory stays bounded and no I/O
  // thread waits. Ordinary lines are never dropped.
  size_t access_buffer_bytes = size_t{1} << 20;
};

// Idempotent; safe to skip in tests (lines then go to stdout synchronously).
void init(Level min_level, Options options = {});
// Changes the minimum level at once, from any thread (SIGHUP).
void set_level(Level min_level);
// Writes every line logged so far, then stops the background writer (later lines go to stdout
// synchronously).
void shutdown();
Level parse_level(std::string_view name, Level fallback);
bool enabled(Level level);

void write(Level level, std::string_view msg, std::initializer_list<Field> fields = {});
inline void debug(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::debug, m, f); }
inline void info(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::info, m, f); }
inline void warn(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::warn, m, f); }
inline void error(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::error, m, f); }
// An access line (info): written within about 100 ms, or on shutdown, and dropped rather than
// waited for when the thread's buffer is full.
void access(std::string_view msg, std::initializer_list<Field> fields);
// Access lines dropped so far because the output could not keep up.
uint64_t dropped_lines();

// Appends s to out as a JSON string literal (with quotes). Shared with the HTTP layer.
void append_json_string(std::string& out, std::string_view s);

}  // namespace creatord::log
