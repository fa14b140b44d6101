#include "core/log.hpp"

#include <cstdio>
#include <mutex>

#include <fmt/format.h>
#include <spdlog/async.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "core/clock.hpp"
#include "core/redact.hpp"

namespace creatord::log {
namespace {

std::atomic<int> g_min_level{static_cast<int>(Level::info)};
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

void write(Level level, std::string_view msg, std::initializer_list<Field> fields) {
  if (!enabled(level)) return;
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
  if (g_logger) {
    g_logger->log(spdlog::level::info, line);
  } else {
    line.push_back('\n');
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fflush(stdout);
  }
}

}  // namespace creatord::log
