// Minimal image files for tests: valid signatures and headers with chosen dimensions.
#pragma once
#include <cstdint>
#include <string>

namespace test_images {

inline void put_be32(std::string& s, uint32_t v) {
  for (int i = 3; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
inline void put_le(std::string& s, uint32_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

inline std::string png(uint32_t w, uint32_t h, const std::string& payload = "pixels") {
  std::string s("\x89PNG\r\n\x1a\n", 8);
  put_be32(s, 13);
  s += "IHDR";
  put_be32(s, w);
  put_be32(s, h);
  s += std::string("\x08\x06\x00\x00\x00", 5);
  put_be32(s, 0);  // CRC (not checked)
  put_be32(s, static_cast<uint32_t>(payload.size()));
  s += "IDAT" + payload;
  put_be32(s, 0);
  put_be32(s, 0);
  s += "IEND";
  put_be32(s, 0);
  return s;
}

inline std::string jpeg(uint32_t w, uint32_t h) {
  std::string s("\xFF\xD8", 2);
  s += std::string("\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00", 18);
  s += std::string("\xFF\xC0\x00\x11\x08", 5);
  s.push_back(static_cast<char>(h >> 8));
  s.push_back(static_cast<char>(h & 0xff));
  s.push_back(static_cast<char>(w >> 8));
  s.push_back(static_cast<char>(w & 0xff));
  s += std::string("\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01", 10);
  s += std::string("\xFF\xD9", 2);
  return s;
}

enum class WebpKind { lossy, lossless, extended };

inline std::string webp(uint32_t w, uint32_t h, WebpKind kind) {
  std::string chunk;
  if (kind == WebpKind::lossy) {
    chunk = "VP8 ";
    put_le(chunk, 10, 4);
    chunk += std::string("\x00\x00\x00\x9d\x01\x2a", 6);
    put_le(chunk, w, 2);
    put_le(chunk, h, 2);
  } else if (kind == WebpKind::lossless) {
    chunk = "VP8L";
    put_le(chunk, 5, 4);
    chunk.push_back('\x2f');
    uint32_t bits = (w - 1) | ((h - 1) << 14);
    put_le(chunk, bits, 4);
  } else {
    chunk = "VP8X";
    put_le(chunk, 10, 4);
    put_le(chunk, 0, 4);
    put_le(chunk, w - 1, 3);
    put_le(chunk, h - 1, 3);
  }
  while (chunk.size() < 24) chunk.push_back('\0');
  std::string s = "RIFF";
  put_le(s, static_cast<uint32_t>(4 + chunk.size()), 4);
  s += "WEBP" + chunk;
  return s;
}

}  // namespace test_images
