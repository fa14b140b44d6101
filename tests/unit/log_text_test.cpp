// Text log lines (--log-format text): aligned, coloured on a terminal, secrets redacted.
#include <gtest/gtest.h>

#include "core/log_console.hpp"
#include "core/redact.hpp"

using namespace creatord;

TEST(LogText, AlignsLevelAndMessageAndWritesFieldsAsKeyValue) {
  // 2026-11-29T06:28:32.123Z
  int64_t ts = 1795933712123;
  std::string line = log::text_line(ts, log::Level::info, "listening", {{"port", 8000}, {"url", "http://x y"}}, false);
  EXPECT_NE(line.find(":32.123 INFO  listening              port=8000 url=\"http://x y\""), std::string::npos) << line;
  std::string warn = log::text_line(ts, log::Level::warn, "slow", {}, false);
  EXPECT_NE(warn.find(" WARN  slow"), std::string::npos) << warn;
}

TEST(LogText, ARequestReadsLikeAnAccessLogAndColoursItsStatus) {
  std::string plain = log::text_line(0, log::Level::info, "request",
                                     {{"method", "GET"}, {"path", "/api/creators"}, {"status", 404},
                                      {"duration_ms", 1.25}, {"remote", "127.0.0.1"}},
                                     false);
  EXPECT_NE(plain.find("INFO  GET /api/creators 404 1.25ms (127.0.0.1)"), std::string::npos) << plain;
  std::string coloured = log::text_line(0, log::Level::info, "request",
                                        {{"method", "GET"}, {"path", "/"}, {"status", 200}, {"duration_ms", 1.0},
                                         {"remote", "::1"}},
                                        true);
  EXPECT_NE(coloured.find("\x1b[32mINFO"), std::string::npos) << coloured;
  EXPECT_NE(coloured.find("\x1b[32m200\x1b[0m"), std::string::npos) << coloured;
  EXPECT_EQ(plain.find('\x1b'), std::string::npos);
}

TEST(LogText, RedactsSecretsAsTheJsonLinesDo) {
  add_secret("text-log-secret-value-123");
  std::string line = log::text_line(0, log::Level::error, "failed", {{"error", "key=text-log-secret-value-123"}}, false);
  EXPECT_EQ(line.find("text-log-secret-value-123"), std::string::npos) << line;
}

TEST(LogText, FormatAutoFollowsTheTerminal) {
  log::Format f = log::Format::json;
  ASSERT_TRUE(log::parse_format("auto", true, f));
  EXPECT_EQ(f, log::Format::text);
  ASSERT_TRUE(log::parse_format("auto", false, f));
  EXPECT_EQ(f, log::Format::json);
  ASSERT_TRUE(log::parse_format("text", false, f));
  EXPECT_EQ(f, log::Format::text);
  EXPECT_FALSE(log::parse_format("yaml", false, f));
}
