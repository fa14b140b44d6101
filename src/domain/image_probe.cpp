#include <cstring>
#include <boost/json.hpp>

#include "core/clock.hpp"
#include "domain/image.hpp"

namespace creatord {
namespace {

uint32_t be16(const unsigned char* p) { return (uint32_t{p[0]} << 8) | p[1]; }
uint32_t be32(const unsigned char* p) { return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3]; }
uint32_t le16(const unsigned char* p) { return uint32_t{p[0]} | (uint32_t{p[1]} << 8); }
uint32_t le24(const unsigned char* p) { return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16); }

bool plausible(uint32_t w, uint32_t h) { return w > 0 && h > 0 && w <= 65535 && h <= 65535; }

std::optional<ImageInfo> make(const char* type, uint32_t w, uint32_t h) {
  if (!plausible(w, h)) return std::nullopt;
  return ImageInfo{type, static_cast<int>(w), static_cast<int>(h)};
}

std::optional<ImageInfo> probe_png(const unsigned char* p, size_t n) {
  static constexpr unsigned char kSig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (n < 33 || std::memcmp(p, kSig, 8) != 0) return std::nullopt;
  if (std::memcmp(p + 12, "IHDR", 4) != 0) return std::nullopt;
  return make("image/png", be32(p + 16), be32(p + 20));
}

std::optional<ImageInfo> probe_jpeg(const unsigned char* p, size_t n) {
  if (n < 4 || p[0] != 0xFF || p[1] != 0xD8) return std::nullopt;
  size_t i = 2;
  while (i + 4 <= n) {
    if (p[i] != 0xFF) return std::nullopt;
    unsigned char marker = p[i + 1];
    if (marker == 0xFF) {  // fill byte
      ++i;
      continue;
    }
    if (marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {
      i += 2;  // markers without a length
      continue;
    }
    if (marker == 0xD9 || marker == 0xDA) return std::nullopt;  // end or scan before any frame
    uint32_t len = be16(p + i + 2);
    if (len < 2) return std::nullopt;
    bool sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (sof) {
      if (i + 9 > n) return std::nullopt;
      return make("image/jpeg", be16(p + i + 7), be16(p + i + 5));
    }
    i += 2 + len;
  }
  return std::nullopt;
}

std::optional<ImageInfo> probe_webp(const unsigned char* p, size_t n) {
  if (n < 30 || std::memcmp(p, "RIFF", 4) != 0 || std::memcmp(p + 8, "WEBP", 4) != 0) return std::nullopt;
  const unsigned char* c = p + 12;
  if (std::memcmp(c, "VP8 ", 4) == 0) {
    // Lossy: frame tag (3 bytes), start code 9d 01 2a, then 14-bit width and height.
    if (c[11] != 0x9d || c[12] != 0x01 || c[13] != 0x2a) return std::nullopt;
    return make("image/webp", le16(c + 14) & 0x3fff, le16(c + 16) & 0x3fff);
  }
  if (std::memcmp(c, "VP8L", 4) == 0) {
    if (c[8] != 0x2f) return std::nullopt;
    uint32_t b = uint32_t{c[9]} | (uint32_t{c[10]} << 8) | (uint32_t{c[11]} << 16) | (uint32_t{c[12]} << 24);
    return make("image/webp", (b & 0x3fff) + 1, ((b >> 14) & 0x3fff) + 1);
  }
  if (std::memcmp(c, "VP8X", 4) == 0) {
    return make("image/webp", le24(c + 12) + 1, le24(c + 15) + 1);
  }
  return std::nullopt;
}

}  // namespace

std::optional<ImageInfo> probe_image(std::string_view bytes) {
  auto p = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t n = bytes.size();
  if (auto r = probe_png(p, n)) return r;
  if (auto r = probe_jpeg(p, n)) return r;
  if (auto r = probe_webp(p, n)) return r;
  return std::nullopt;
}

boost::json::object to_json(const Image& img) {
  boost::json::object o;
  o["id"] = img.id;
  o["creator_id"] = img.creator_id;
  o["content_type"] = img.content_type;
  o["width"] = img.width;
  o["height"] = img.height;
  o["size_bytes"] = img.size_bytes;
  o["sha256"] = img.sha256;
  o["source"] = img.source;
  if (img.source_url) o["source_url"] = *img.source_url;
  else o["source_url"] = nullptr;
  o["created_at"] = format_rfc3339(img.created_at_ms);
  o["url"] = fmt::format("/api/images/{}/content", img.id);
  return o;
}

}  // namespace creatord
