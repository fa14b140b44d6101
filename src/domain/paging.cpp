#include "domain/paging.hpp"
#include <cstring>

#include <charconv>

#include <fmt/format.h>

#include "domain/creator.hpp"

namespace creatord {
namespace {
constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string b64url_encode(std::string_view in) {
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint32_t(uint8_t(in[i])) << 16) | (uint32_t(uint8_t(in[i + 1])) << 8) | uint8_t(in[i + 2]);
    out += kB64[(v >> 18) & 63]; out += kB64[(v >> 12) & 63]; out += kB64[(v >> 6) & 63]; out += kB64[v & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint32_t(uint8_t(in[i])) << 16;
    out += kB64[(v >> 18) & 63]; out += kB64[(v >> 12) & 63];
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint32_t(uint8_t(in[i])) << 16) | (uint32_t(uint8_t(in[i + 1])) << 8);
    out += kB64[(v >> 18) & 63]; out += kB64[(v >> 12) & 63]; out += kB64[(v >> 6) & 63];
  }
  return out;
}

std::optional<std::string> b64url_decode(std::string_view in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const char* p = std::strchr(kB64, c);
    if (c == '\0' || p == nullptr) return std::nullopt;
    acc = (acc << 6) | uint32_t(p - kB64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(char((acc >> bits) & 0xff));
    }
  }
  return out;
}
}  // namespace

std::string encode_cursor(int64_t last_id) { return b64url_encode(fmt::format("v1:{}", last_id)); }

std::optional<int64_t> decode_cursor(std::string_view cursor) {
  if (cursor.empty() || cursor.size() > 64) return std::nullopt;
  auto raw = b64url_decode(cursor);
  if (!raw || raw->rfind("v1:", 0) != 0) return std::nullopt;
  return parse_id(std::string_view(*raw).substr(3));
}

std::optional<int64_t> parse_id(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || v <= 0) return std::nullopt;
  if (s[0] == '0') return std::nullopt;  // one spelling per id
  return v;
}

Result<PageQuery> parse_page_query(const std::optional<std::string>& limit,
                                   const std::optional<std::string>& cursor,
                                   const std::optional<std::string>& q, PagingLimits limits) {
  PageQuery out;
  out.limit = limits.default_limit;
  if (limit) {
    int v = 0;
    auto [ptr, ec] = std::from_chars(limit->data(), limit->data() + limit->size(), v);
    if (limit->empty() || ec != std::errc() || ptr != limit->data() + limit->size() || v < 1 ||
        v > limits.max_limit)
      return Error::make(ErrorCode::bad_request,
                         fmt::format("limit must be an integer from 1 to {}", limits.max_limit), "limit");
    out.limit = v;
  }
  if (cursor) {
    auto id = decode_cursor(*cursor);
    if (!id) return Error::make(ErrorCode::bad_request, "cursor is not valid; use next_cursor from a previous page", "cursor");
    out.before_id = *id;
  }
  if (q) {
    if (utf8_length(*q) > 200) return Error::make(ErrorCode::bad_request, "q must be at most 200 characters", "q");
    if (q->find('\0') != std::string::npos)  // PostgreSQL text ends at NUL: "a\0" would search for "a"
      return Error::make(ErrorCode::bad_request, "q must not contain NUL characters", "q");
    out.q = *q;
  }
  return out;
}

}  // namespace creatord
