#pragma once
#include <cstdint>
#include <string>

namespace creatord {

// Milliseconds since the Unix epoch (wall clock): what the store keeps.
int64_t now_ms();
// RFC 3339 UTC with milliseconds, e.g. 2026-11-28T06:50:14.123Z
std::string format_rfc3339(int64_t unix_ms);
// IMF-fixdate for HTTP headers, e.g. "Sat, 28 Nov 2026 06:50:14 GMT"
std::string format_http_date(int64_t unix_seconds);

}  // namespace creatord
