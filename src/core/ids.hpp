#pragma once
#include <string>
#include <string_view>

namespace creatord {

// A short random id for requests that arrive without X-Request-Id (16 hex chars).
std::string new_request_id();
// Accepts a client's X-Request-Id when it is 1..128 printable ASCII characters without spaces
// or quotes, so it can be logged and echoed safely.
bool is_acceptable_request_id(std::string_view id);

}  // namespace creatord
