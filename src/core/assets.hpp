// Files compiled into the binary (cmake/embed.cmake): the OpenAPI document and the Swagger UI
// that /docs serves, so a deployment needs nothing beside the executable and no CDN.
#pragma once
#include <string_view>
#include <vector>

namespace creatord::assets {

struct Asset {
  std::string_view name;  // e.g. "openapi.json", "docs/swagger-ui.css"
  std::string_view data;
};

const std::vector<Asset>& all();
// Null when no asset has that name.
inline const Asset* find(std::string_view name) {
  for (const auto& a : all())
    if (a.name == name) return &a;
  return nullptr;
}

}  // namespace creatord::assets
