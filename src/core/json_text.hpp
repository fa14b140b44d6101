// JSON as text for people and programs alike: the one serializer of every response body, SSE
// event and CLI output. It differs from boost::json::serialize only in how doubles read:
//   - an integral double is written as an integer: 0, 1, 250 (never 0E0, 1E0);
//   - any other double is rounded to 3 decimals (0.333, 0.05, 12.5); a value that would round
//     to 0 keeps 3 significant digits instead (0.000123); trailing zeros are dropped;
//   - beyond 1e15 or below 1e-6 in magnitude, the shortest exact form (1e-07); NaN and
//     infinity (not JSON) as null.
#pragma once
#include <string>
#include <string_view>

#include <boost/json/fwd.hpp>

namespace creatord {

// indent < 0: compact, one line. indent >= 0: pretty, each member on its own line.
std::string to_json_text(const boost::json::value& v, int indent = -1);
// One double as the text above.
std::string format_json_double(double d);
// Re-serializes JSON text with the rules above; text that does not parse is returned unchanged.
std::string normalize_json_text(std::string_view text);
// Appends s as a JSON string literal (with quotes), escaped exactly as boost::json::serialize
// does, so that bodies written directly (the creators list) read as the serializer's.
void append_json_string(std::string& out, std::string_view s);

}  // namespace creatord
