// Pipelines declared in a TOML file, with `exec` steps (a program: JSON on stdin, JSON on stdout)
// and `http` steps (a JSON API, optionally polled until done). See README "Your own steps".
#pragma once
#include <string>
#include <vector>

#include "core/result.hpp"
#include "jobs/pipeline.hpp"
#include "queue/scheduler.hpp"

namespace creatord {

// Every mistake is an error naming FILE:LINE:COLUMN; nothing is half-loaded.
Result<std::vector<Pipeline>> load_pipeline_file(const std::string& path);
// The file's [[schedule]] tables, checked against the pipelines that exist (built-in and loaded).
Result<std::vector<queue::ScheduleDef>> load_schedules(const std::string& path, const PipelineRegistry& pipelines);

}  // namespace creatord
