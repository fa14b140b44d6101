#include "core/json_text.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>

#include <boost/json.hpp>
#include <fmt/format.h>

namespace creatord {
namespace json = boost::json;

namespace {

std::string trim_zeros(std::string s) {
  if (s.find('.') == std::string::npos) return s;
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s;
}

void write(std::string& out, const json::value& v, int indent, int depth);

void newline(std::string& out, int indent, int depth) {
  if (indent < 0) return;
  out.push_back('\n');
  out.append(static_cast<size_t>(indent * depth), ' ');
}

void write_object(std::string& out, const json::object& o, int indent, int depth) {
  out.push_back('{');
  bool first = true;
  for (const auto& kv : o) {
    if (!first) out.push_back(',');
    first = false;
    newline(out, indent, depth + 1);
    out += json::serialize(json::string_view(kv.key()));
    out += indent < 0 ? ":" : ": ";
    write(out, kv.value(), indent, depth + 1);
  }
  if (!o.empty()) newline(out, indent, depth);
  out.push_back('}');
}

void write_array(std::string& out, const json::array& a, int indent, int depth) {
  out.push_back('[');
  bool first = true;
  for (const auto& e : a) {
    if (!first) out.push_back(',');
    first = false;
    newline(out, indent, depth + 1);
    write(out, e, indent, depth + 1);
  }
  if (!a.empty()) newline(out, indent, depth);
  out.push_back(']');
}

void write(std::string& out, const json::value& v, int indent, int depth) {
  switch (v.kind()) {
    case json::kind::object: write_object(out, v.get_object(), indent, depth); break;
    case json::kind::array: write_array(out, v.get_array(), indent, depth); break;
    case json::kind::double_: out += format_json_double(v.get_double()); break;
    default: out += json::serialize(v); break;
  }
}

}  // namespace

namespace {
// Whether any of the 8 bytes of x needs an escape: below 0x20, '"' or '\\' (bit tricks that find a
// zero byte; exact as a yes or no).
bool any_to_escape(uint64_t x) {
  constexpr uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
  uint64_t below_space = (x - ones * 0x20) & ~x;
  uint64_t quote = x ^ (ones * '"'), backslash = x ^ (ones * '\\');
  quote = (quote - ones) & ~quote;
  backslash = (backslash - ones) & ~backslash;
  return ((below_space | quote | backslash) & highs) != 0;
}
}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  size_t plain = 0;  // start of the run not yet copied
  for (size_t i = 0; i < s.size(); ++i) {
    // Eight bytes at a time while none needs an escape (most text): a list page is mostly this.
    while (i + 8 <= s.size()) {
      uint64_t x;
      std::memcpy(&x, s.data() + i, 8);
      if (any_to_escape(x)) break;
      i += 8;
    }
    if (i >= s.size()) break;
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + plain, i - plain);
    plain = i + 1;
    out.push_back('\\');
    switch (c) {
      case '"': out.push_back('"'); break;
      case '\\': out.push_back('\\'); break;
      case '\b': out.push_back('b'); break;
      case '\t': out.push_back('t'); break;
      case '\n': out.push_back('n'); break;
      case '\f': out.push_back('f'); break;
      case '\r': out.push_back('r'); break;
      default:
        out += "u00";
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 0xf]);
    }
  }
  out.append(s.data() + plain, s.size() - plain);
  out.push_back('"');
}

std::string format_json_double(double d) {
  if (!std::isfinite(d)) return "null";
  if (d == 0) return "0";  // -0 too
  if (std::abs(d) >= 1e15 || std::abs(d) < 1e-6) {
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
    return ec == std::errc() ? std::string(buf, end) : "null";
  }
  if (d == std::trunc(d)) return fmt::format("{:.0f}", d);
  std::string fixed = trim_zeros(fmt::format("{:.3f}", d));
  if (fixed != "0" && fixed != "-0") return fixed;
  // Smaller than 0.0005: three significant digits, in fixed notation.
  int digits = 2 - static_cast<int>(std::floor(std::log10(std::abs(d))));
  return trim_zeros(fmt::format("{:.{}f}", d, digits));
}

namespace {
bool has_double(const json::value& v) {
  switch (v.kind()) {
    case json::kind::double_: return true;
    case json::kind::array:
      for (const auto& e : v.get_array())
        if (has_double(e)) return true;
      return false;
    case json::kind::object:
      for (const auto& kv : v.get_object())
        if (has_double(kv.value())) return true;
      return false;
    default: return false;
  }
}
}  // namespace

std::string to_json_text(const json::value& v, int indent) {
  // Most answers (creators, images) hold no double: Boost's serializer is faster and the same.
  if (indent < 0 && !has_double(v)) return json::serialize(v);
  std::string out;
  write(out, v, indent, 0);
  return out;
}

std::string normalize_json_text(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return std::string(text);
  return to_json_text(v);
}

}  // namespace creatord
