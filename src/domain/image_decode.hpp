// Full decoding of an uploaded or fetched image before it is accepted: the header alone says
// nothing about the rest (a header-only file, a truncated one, a PNG with HTML behind it, a zlib
// bomb claiming 65535 x 65535 pixels all passed a header check). Blocking and CPU-bound: run it
// on a BlockingPool, never on an I/O thread.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/result.hpp"
#include "domain/image.hpp"

namespace creatord {

struct DecodeLimits {
  uint64_t max_pixels = 40'000'000;  // width x height; refused before any pixel is decoded
  size_t max_memory = 256u << 20;    // what the decoder may allocate for one image
};

struct DecodedImage {
  ImageInfo info;
  // The bytes that make up the image: anything after its end (after PNG's IEND, JPEG's EOI,
  // beyond WebP's RIFF size) is not part of it and is dropped before the bytes are stored.
  size_t length = 0;
};

// PNG (libpng), JPEG (libjpeg) and WebP (libwebp), read from the bytes. Every pixel is decoded
// (PNG rows one at a time, JPEG at 1/8 scale, which still reads all of its entropy-coded data),
// checksums and the end marker included; a decoder warning (a truncated JPEG) is an error.
// Errors: unsupported_media (not one of the three, corrupt or truncated), validation with field
// "body" (over a limit).
Result<DecodedImage> decode_image(std::string_view bytes, const DecodeLimits& limits);

}  // namespace creatord
