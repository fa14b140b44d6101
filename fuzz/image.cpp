// Image bytes as a client uploads them: identified and measured from the bytes alone, never
// trusting a header, whatever the file claims.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "domain/image.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto info = creatord::probe_image(bytes);
  if (info && (info->width == 0 || info->height == 0)) std::abort();
  return 0;
}
