// Image files for tests: minimal ones (valid signatures and headers with chosen dimensions,
// nothing behind them) and real ones that decode.
#pragma once
#include <cstdint>
#include <string>

#include <cstdio>
#include <cstdlib>

#include <cairo.h>
#include <jpeglib.h>
#include <webp/encode.h>

namespace test_images {

inline void put_be32(std::string& s, uint32_t v);

inline uint32_t crc32(const std::string& bytes) {
  uint32_t c = 0xffffffffu;
  for (unsigned char b : bytes) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
  }
  return c ^ 0xffffffffu;
}

// A gradient, so a real image is not all one colour: w x h RGBA pixels.
inline std::string rgba_pixels(int w, int h) {
  std::string px;
  px.reserve(static_cast<size_t>(w) * h * 4);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      px.push_back(static_cast<char>(x * 255 / (w > 1 ? w - 1 : 1)));
      px.push_back(static_cast<char>(y * 255 / (h > 1 ? h - 1 : 1)));
      px.push_back(static_cast<char>(128));
      px.push_back(static_cast<char>(255));
    }
  return px;
}

// A real PNG of w x h pixels (cairo encodes it). `padding` adds a private ancillary chunk of that
// many bytes (a decoder skips it), for tests that need a valid image of some size.
inline std::string real_png(int w, int h, size_t padding = 0) {
  cairo_surface_t* surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, w, h);
  cairo_t* cr = cairo_create(surface);
  cairo_pattern_t* pattern = cairo_pattern_create_linear(0, 0, w, h);
  cairo_pattern_add_color_stop_rgb(pattern, 0, 0.9, 0.2, 0.3);
  cairo_pattern_add_color_stop_rgb(pattern, 1, 0.1, 0.3, 0.9);
  cairo_set_source(cr, pattern);
  cairo_paint(cr);
  cairo_pattern_destroy(pattern);
  cairo_destroy(cr);
  std::string out;
  auto write = [](void* closure, const unsigned char* data, unsigned int length) {
    static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
    return CAIRO_STATUS_SUCCESS;
  };
  cairo_surface_write_to_png_stream(surface, write, &out);
  cairo_surface_destroy(surface);
  if (padding > 0) {
    std::string chunk = "paDd" + std::string(padding, 'p');
    std::string framed;
    put_be32(framed, static_cast<uint32_t>(padding));
    framed += chunk;
    put_be32(framed, crc32(chunk));
    out.insert(out.size() - 12, framed);  // before IEND
  }
  return out;
}

// A real baseline JPEG of w x h pixels.
inline std::string real_jpeg(int w, int h, bool progressive = false) {
  jpeg_compress_struct cinfo;
  jpeg_error_mgr jerr;
  cinfo.err = jpeg_std_error(&jerr);
  jpeg_create_compress(&cinfo);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &buffer, &size);
  cinfo.image_width = static_cast<JDIMENSION>(w);
  cinfo.image_height = static_cast<JDIMENSION>(h);
  cinfo.input_components = 3;
  cinfo.in_color_space = JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, 85, TRUE);
  if (progressive) jpeg_simple_progression(&cinfo);
  jpeg_start_compress(&cinfo, TRUE);
  std::string rgba = rgba_pixels(w, h);
  std::string row(static_cast<size_t>(w) * 3, '\0');
  while (cinfo.next_scanline < cinfo.image_height) {
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) row[x * 3 + c] = rgba[(static_cast<size_t>(cinfo.next_scanline) * w + x) * 4 + c];
    JSAMPROW rows[1] = {reinterpret_cast<JSAMPROW>(row.data())};
    jpeg_write_scanlines(&cinfo, rows, 1);
  }
  jpeg_finish_compress(&cinfo);
  std::string out(reinterpret_cast<const char*>(buffer), size);
  jpeg_destroy_compress(&cinfo);
  std::free(buffer);
  return out;
}

// A real lossless WebP of w x h pixels.
inline std::string real_webp(int w, int h) {
  std::string rgba = rgba_pixels(w, h);
  uint8_t* out = nullptr;
  size_t size = WebPEncodeLosslessRGBA(reinterpret_cast<const uint8_t*>(rgba.data()), w, h, w * 4, &out);
  std::string bytes(reinterpret_cast<const char*>(out), size);
  WebPFree(out);
  return bytes;
}

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

// The PNG `png` with its IHDR claiming `w` x `h` pixels (the CRC fixed up) over the same data:
// over a real image's zlib stream, a decompression bomb when the claim is large.
inline std::string with_ihdr_size(const std::string& png, uint32_t w, uint32_t h) {
  std::string ihdr = png.substr(12, 17);  // "IHDR" + 13 bytes
  std::string dims;
  put_be32(dims, w);
  put_be32(dims, h);
  ihdr.replace(4, 8, dims);
  std::string crc;
  put_be32(crc, crc32(ihdr));
  return png.substr(0, 12) + ihdr + crc + png.substr(33);
}

}  // namespace test_images
