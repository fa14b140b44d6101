// The creator search (`q`): a case-insensitive substring match on name or handle. Stores answer
// it with a trigram index when the text allows one, and the index only narrows the candidates:
// the store's substring match still decides, so the answer is the scan's.
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace creatord {

// The distinct three-character (code point) pieces of `q`, in order of first appearance; nullopt
// when an index cannot narrow the search: fewer than three characters, or `q` is not valid UTF-8.
std::optional<std::vector<std::string>> search_trigrams(std::string_view q);

}  // namespace creatord
