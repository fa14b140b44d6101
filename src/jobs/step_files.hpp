// Files an exec step names in its output (`images: [{"path": ...}]`): read only when the file a
// path leads to, symlinks followed, is a regular file inside the step's folder.
#pragma once
#include <cstddef>
#include <string>

#include "core/result.hpp"

namespace creatord {

// The bytes of `path` (relative to `folder`, or absolute) when the file it resolves to is a
// regular file inside `folder`. Every refusal (outside, missing, not a regular file, unreadable)
// is the same validation error, so a step's output cannot probe what exists elsewhere; `why`
// (when given) gets the reason, for the log. A file inside but above max_bytes: its own error.
Result<std::string> read_file_inside(const std::string& folder, const std::string& path, size_t max_bytes,
                                     std::string* why = nullptr);

// The one message for a refused path.
inline constexpr const char* kNoFileInFolder = "names no image file in the step's folder";

}  // namespace creatord
