// The pipelines file (TOML) as an operator writes it: loaded, validated and registered, or
// refused with a message; never a crash, whatever the file holds.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "jobs/builtin.hpp"
#include "jobs/pipeline.hpp"
#include "jobs/pipeline_config.hpp"

namespace {

std::string file_path() {
  static std::string path = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string p = std::string(tmp && *tmp ? tmp : "/tmp") + "/creatord-fuzz-pipelines-" + std::to_string(getpid()) + ".toml";
    return p;
  }();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto path = file_path();
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  auto loaded = creatord::load_pipeline_file(path);
  if (loaded) {
    creatord::PipelineRegistry registry;
    creatord::add_builtin_pipelines(registry);
    for (auto& p : loaded.value()) (void)registry.add(std::move(p));
    (void)creatord::load_schedules(path, registry);
  }
  return 0;
}
