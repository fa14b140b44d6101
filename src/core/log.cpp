#include "core/log.hpp"

#include <cstdio>
#include <mutex>

#include <fmt/format.h>
#include <spdlog/async.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "core/clock.hpp"
#include "core/log_console.hpp"
#include "core/redact.hpp"

namespace creatord::log {
namespace {

std::atomic<int> g_min_level{static_cast<int>(Level::info)};
std::atomic<int> g_format{static_cast<int>(Format::json)};
std::atomic<bool> g_colour{false};
std::shared_ptr<spdlog::logger> g_logger;
std::mutex g_init_mutex;

const char* level_name(Level l) {
  switch (l) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
  }
  return "info";
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xf]);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

void init(Level min_level) {
  std::lock_guard lock(g_init_mutex);
  g_min_level = static_cast<int>(min_level);
  if (g_logger) return;
  // Block (never drop) when the queue is full: a log line is evidence.
  spdlog::init_thread_pool(16384, 1);
  auto sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
  g_logger = std::make_shared<spdlog::async_logger>("creatord", sink, spdlog::thread_pool(),
                                                    spdlog::async_overflow_policy::block);
  g_logger->set_pattern("%v");
  g_logger->flush_on(spdlog::level::trace);
}

void set_level(Level min_level) { g_min_level = static_cast<int>(min_level); }

void shutdown() {
  std::lock_guard lock(g_init_mutex);
  if (!g_logger) return;
  g_logger->flush();
  g_logger.reset();
  spdlog::shutdown();
}

Level parse_level(std::string_view name, Level fallback) {
  if (name == "debug") return Level::debug;
  if (name == "info") return Level::info;
  if (name == "warn" || name == "warning") return Level::warn;
  if (name == "error") return Level::error;
  return fallback;
}

bool enabled(Level level) { return static_cast<int>(level) >= g_min_level.load(std::memory_order_relaxed); }

namespace {

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
// To the background writer, or straight to stdout before init (tests).
void emit(std::string line) {
  if (g_logger) {
    g_logger->log(spdlog::level::info, line);
  } else {
    line.push_back('\n');
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fflush(stdout);
  }
}

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

}  // namespace

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
  if (g_format.load(std::memory_order_relaxed) == static_cast<int>(Format::text)) {
    emit(text_line(now_ms(), level, msg, fields, g_colour.load(std::memory_order_relaxed)));
    return;
  }
  std::string line;
  line.reserve(256);
  line += "{\"ts\":\"";
  line += format_rfc3339(now_ms());
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
          else line += fmt::to_string(v);
        },
        f.value);
  }
  line.push_back('}');
  emit(std::move(line));
}

}  // namespace creatord::log
