// The one place that knows every part: it builds the store, the API and the server from the
// configuration and runs them.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "app/config.hpp"

namespace creatord {

// `creatord serve`: runs until SIGINT/SIGTERM; returns the process exit code. On SIGHUP, reread
// (when given) loads the configuration again and the API tokens and log level take effect.
int run_serve(Config cfg, std::function<Result<Config>()> reread = {});
// --log-format applied to the log (terminal: stdout's).
void use_log_format(const Config& cfg);
// `creatord migrate`: applies the store's migrations and exits.
int run_migrate(Config cfg);

// `creatord jobs list|show|watch|cancel|retry`: the job queue, against the same store.
struct JobsCommand {
  std::string action;  // list, show, watch, cancel, retry; queues, pause, resume (of `creatord queues`)
  std::string queue;
  int64_t id = 0;
  std::string state;
  int limit = 20;
  bool json = false;  // list: one JSON line for scripts instead of the table
};
int run_jobs_command(Config cfg, const JobsCommand& cmd);

// `creatord keys create|list|revoke`: API keys, in the same store a running server reads them
// from (it sees changes within --api-key-refresh).
struct KeysCommand {
  std::string action;  // create, list, revoke
  std::string scopes;  // create: "read,write"
  std::string name;    // create
  int64_t id = 0;      // revoke
};
int run_keys_command(Config cfg, const KeysCommand& cmd);

// `creatord pipelines check FILE`: 0 when the file loads; else prints FILE:LINE:COLUMN: why.
int run_pipelines_check(const std::string& file);

}  // namespace creatord
