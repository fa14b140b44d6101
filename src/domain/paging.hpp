// Keyset paging: newest first by id, with an opaque cursor that names the last id seen, so the
// millionth page costs the same as the first.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace creatord {

struct PageQuery {
  int limit = 50;
  std::optional<int64_t> before_id;  // decoded from the cursor
  std::string q;                     // optional search text
};

template <class T>
struct Page {
  std::vector<T> items;
  bool has_more = false;

  // Stores query for limit + 1 rows: the extra row only says that there is more.
  void trim_to(int limit) {
    if (items.size() > static_cast<size_t>(limit)) {
      items.resize(static_cast<size_t>(limit));
      has_more = true;
    }
  }
};

struct PagingLimits {
  int default_limit = 50;
  int max_limit = 200;
};

std::string encode_cursor(int64_t last_id);
std::optional<int64_t> decode_cursor(std::string_view cursor);

// Parses the raw `limit`, `cursor` and `q` values (already percent-decoded; nullopt when absent).
Result<PageQuery> parse_page_query(const std::optional<std::string>& limit,
                                   const std::optional<std::string>& cursor,
                                   const std::optional<std::string>& q, PagingLimits limits = {});

// Parses a resource id from a path segment: a positive decimal integer that fits in int64.
std::optional<int64_t> parse_id(std::string_view s);

}  // namespace creatord
