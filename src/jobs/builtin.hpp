// The pipelines and job handlers creatord ships with.
#pragma once
#include <boost/json/object.hpp>

#include "jobs/engine.hpp"
#include "domain/image.hpp"
#include "jobs/pipeline.hpp"

namespace creatord {

// "generate" (the default: render a creator's avatars and banners, thumbnails, a summary) and
// "diagnostic" (a cancellable sleep and a step that fails until a given attempt: for checking a
// deployment's job handling end to end).
void add_builtin_pipelines(PipelineRegistry& registry);

// Validates the parameters of a generate request; fills in defaults. Errors name the field.
Result<boost::json::object> parse_generate_params(const boost::json::value& params);

// The work one generate job may ask for. Rendering costs about pixels × shapes, so both are
// capped: pixels = variants × (avatar_size² + banner_width × banner_height), shapes = variants ×
// detail. 0: no cap.
struct GenerateLimits {
  int64_t max_pixels = 50'000'000;
  int64_t max_shapes = 100'000;
};
// validation (field `params`) when the params, defaults filled in, ask for more than limits.
Status check_generate_work(const boost::json::object& params, const GenerateLimits& limits);

// Kind "generate": runs payload.pipeline with payload.params, resuming finished steps.
JobHandler pipeline_job_handler(const PipelineRegistry& registry, queue::JobQueue& jobs, Services& services);
// Stores image bytes a step produced as one of the job's creator's images, once per origin key.
boost::asio::awaitable<Result<Image>> store_generated(StepContext& ctx, std::string bytes, const std::string& origin_key,
                                                      const char* source);

// Kind "noop": succeeds at once (queue benchmarks, smoke tests).
JobHandler noop_job_handler();

}  // namespace creatord
