// Image bytes as a client uploads them or a step fetches them: identified from the bytes alone
// (never a header), then decoded in full by libpng, libjpeg or libwebp within small pixel and
// memory limits, whatever the file claims.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "domain/image.hpp"
#include "domain/image_decode.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto info = creatord::probe_image(bytes);
  if (info && (info->width == 0 || info->height == 0)) std::abort();
  creatord::DecodeLimits limits{.max_pixels = 4'000'000, .max_memory = 64u << 20};
  auto decoded = creatord::decode_image(bytes, limits);
  if (decoded) {
    const auto& d = decoded.value();
    if (d.length == 0 || d.length > size) std::abort();  // the kept bytes are a prefix of the input
    if (static_cast<uint64_t>(d.info.width) * static_cast<uint64_t>(d.info.height) > limits.max_pixels) std::abort();
  }
  return 0;
}
