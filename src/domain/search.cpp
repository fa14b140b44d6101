#include "domain/search.hpp"

#include <algorithm>
#include <cstdint>

namespace creatord {
namespace {

// The length of the UTF-8 sequence starting at s[i], or 0 when it is not a valid one (overlong
// forms, surrogates and code points past U+10FFFF included).
size_t sequence_length(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  uint8_t b = byte(i);
  size_t n = b < 0x80 ? 1 : (b >= 0xC2 && b <= 0xDF) ? 2 : (b >= 0xE0 && b <= 0xEF) ? 3 : (b >= 0xF0 && b <= 0xF4) ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k)
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  if (n == 3) {
    uint8_t b1 = byte(i + 1);
    if ((b == 0xE0 && b1 < 0xA0) || (b == 0xED && b1 >= 0xA0)) return 0;
  } else if (n == 4) {
    uint8_t b1 = byte(i + 1);
    if ((b == 0xF0 && b1 < 0x90) || (b == 0xF4 && b1 >= 0x90)) return 0;
  }
  return n;
}

}  // namespace

std::optional<std::vector<std::string>> search_trigrams(std::string_view q) {
  std::vector<size_t> starts;  // where each code point begins
  for (size_t i = 0; i < q.size();) {
    size_t n = sequence_length(q, i);
    if (n == 0) return std::nullopt;
    starts.push_back(i);
    i += n;
  }
  if (starts.size() < 3) return std::nullopt;
  starts.push_back(q.size());
  std::vector<std::string> out;
  for (size_t k = 0; k + 3 < starts.size(); ++k) {
    std::string piece(q.substr(starts[k], starts[k + 3] - starts[k]));
    if (std::find(out.begin(), out.end(), piece) == out.end()) out.push_back(std::move(piece));
  }
  return out;
}

}  // namespace creatord
