// Images: metadata records (the store) over content-addressed bytes (the blob store).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/fwd.hpp>

namespace creatord {

struct Image {
  int64_t id = 0;
  int64_t creator_id = 0;
  std::string sha256;        // of the bytes; also the blob's name and the ETag
  std::string content_type;  // image/png, image/jpeg or image/webp
  int width = 0;
  int height = 0;
  int64_t size_bytes = 0;
  std::string source;  // "upload" or "generated"
  std::optional<std::string> source_url;  // where an imported image was downloaded from
  int64_t created_at_ms = 0;
};

struct ImageInfo {
  std::string content_type;
  int width = 0;
  int height = 0;
};

// Identifies PNG, JPEG and WebP from their bytes (never from a client's header) and reads the
// dimensions. nullopt for anything else, truncated or implausible (zero or >65535 pixels a side).
std::optional<ImageInfo> probe_image(std::string_view bytes);

boost::json::object to_json(const Image& img);

}  // namespace creatord
