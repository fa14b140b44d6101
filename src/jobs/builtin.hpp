// The pipelines and job handlers creatord ships with.
#pragma once
#include <boost/json/object.hpp>

#include "jobs/engine.hpp"
#include "jobs/pipeline.hpp"

namespace creatord {

// "generate" (the default: render a creator's avatars and banners, thumbnails, a summary) and
// "diagnostic" (a cancellable sleep and a step that fails until a given attempt: for checking a
// deployment's job handling end to end).
void add_builtin_pipelines(PipelineRegistry& registry);

// Validates the parameters of a generate request; fills in defaults. Errors name the field.
Result<boost::json::object> parse_generate_params(const boost::json::value& params);

// Kind "generate": runs payload.pipeline with payload.params, resuming finished steps.
JobHandler pipeline_job_handler(const PipelineRegistry& registry, JobStore& jobs, Services& services);
// Kind "noop": succeeds at once (queue benchmarks, smoke tests).
JobHandler noop_job_handler();

}  // namespace creatord
