// Cursors and the list query: whatever a client puts in `cursor`, `limit` and `q` is decoded
// without crashing, and a decoded cursor re-encodes to an equivalent one.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>

#include "domain/paging.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto id = creatord::decode_cursor(in)) {
    // Round trip: what we decode, we encode back to something that decodes the same.
    auto again = creatord::decode_cursor(creatord::encode_cursor(*id));
    if (!again || *again != *id) std::abort();
  }
  // Split into limit / cursor / q at the first two NULs (absent when there is none).
  auto first = in.find('\0');
  std::optional<std::string> limit, cursor, q;
  if (first == std::string_view::npos) {
    limit = std::string(in);
  } else {
    limit = std::string(in.substr(0, first));
    auto rest = in.substr(first + 1);
    auto second = rest.find('\0');
    cursor = std::string(rest.substr(0, second));
    if (second != std::string_view::npos) q = std::string(rest.substr(second + 1));
  }
  creatord::PagingLimits limits;
  auto page = creatord::parse_page_query(limit, cursor, q, limits);
  if (page && (page.value().limit < 1 || page.value().limit > limits.max_limit)) std::abort();
  creatord::parse_id(in);
  return 0;
}
