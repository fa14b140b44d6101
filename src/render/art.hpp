// Procedural artwork with cairo: deterministic from a creator's name, tags and a seed. CPU-bound
// and blocking: run it on a BlockingPool. `detail` scales the work (shapes drawn).
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace creatord::render {

enum class ArtKind { avatar, banner };

struct ArtSpec {
  ArtKind kind = ArtKind::avatar;
  std::string name;
  std::vector<std::string> tags;
  uint64_t seed = 0;
  int variant = 0;
  int width = 1024;
  int height = 1024;
  int detail = 6000;  // shapes drawn; about a second at 1024x1024 on one core
};

// PNG bytes. Stops early with an error when *cancel becomes true; progress gets 0..1.
Result<std::string> render_png(const ArtSpec& spec, const std::atomic<bool>* cancel = nullptr,
                               const std::function<void(double)>& progress = {});
// A PNG scaled down to fit max_side (never up), as PNG bytes.
Result<std::string> thumbnail_png(std::string_view png, int max_side);

}  // namespace creatord::render
