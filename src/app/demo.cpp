#include "app/demo.hpp"

#include "core/log.hpp"

namespace creatord {

boost::asio::awaitable<void> seed_demo(Store& store) {
  auto count = co_await store.count_creators();
  if (!count) {
    log::warn("demo seed skipped", {{"error", count.error().message}});
    co_return;
  }
  if (count.value() > 0) co_return;
  struct Demo {
    const char* name;
    const char* handle;
    const char* bio;
    std::vector<std::string> tags;
  };
  const Demo demos[] = {
      {"Mei Lin", "meilin", "Watercolour landscapes and quiet cities.", {"watercolor", "landscape"}},
      {"Ada Okafor", "ada.okafor", "Bold geometric posters.", {"geometric", "poster", "bold"}},
      {"Jonas Berg", "jonasberg", "Nordic light, long shadows.", {"photography", "nordic"}},
      {"Priya Raman", "priya", "Illustrated recipes and street food.", {"illustration", "food"}},
      {"Luca Ferri", "luca_ferri", "Retro-futurist cars and neon.", {"retro", "neon", "cars"}},
      {"Sofia Marquez", "sofiam", "Botanical studies in ink.", {"botanical", "ink"}},
      {"Kenji Sato", "kenji", "Pixel art worlds.", {"pixel", "games"}},
      {"Amara Diallo", "amara", "Textile patterns from West Africa, reimagined.", {"pattern", "textile"}},
  };
  int created = 0;
  for (const auto& d : demos) {
    CreatorFields f;
    f.name = d.name;
    f.handle = d.handle;
    f.bio = d.bio;
    f.tags = d.tags;
    f.email = std::optional<std::string>{std::string(d.handle) + "@example.com"};
    if (auto c = co_await store.create_creator(std::move(f)); c) ++created;
  }
  log::info("demo creators seeded", {{"count", created}});
}

}  // namespace creatord
