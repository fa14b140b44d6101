// A pipeline: named steps with dependencies (`needs`), run as one job. Up to max_workers steps
// run at once; each step's state and output are recorded, so a retried or recovered job resumes
// after the last finished step instead of starting over.
#pragma once
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "core/blocking_pool.hpp"
#include "core/result.hpp"
#include "domain/image_decode.hpp"
#include "net/http_client.hpp"
#include "queue/job.hpp"

namespace creatord {

class Store;
class BlobStore;
class EventHub;
class Outbox;

// Why a running job is being stopped. Steps poll requested() or register a hook.
class CancelState {
 public:
  enum class Reason { none, cancelled, timeout, shutdown };
  void request(Reason r);
  bool requested() const { return flag_.load(std::memory_order_relaxed); }
  Reason reason() const;
  const std::atomic<bool>* flag() const { return &flag_; }
  // Runs fn when cancellation is requested (at once if it already was). For stopping
  // subprocesses and the like. Returns a token; remove_hook(token) unregisters it.
  int add_hook(std::function<void()> fn);
  void remove_hook(int token);

 private:
  std::atomic<bool> flag_{false};
  mutable std::mutex mutex_;
  Reason reason_ = Reason::none;
  int next_token_ = 0;
  std::map<int, std::function<void()>> hooks_;
};

// What steps may use.
struct Services {
  Store& store;
  BlobStore& blobs;
  BlockingPool& files;   // blocking file I/O
  BlockingPool& render;  // CPU-heavy work, at a lower scheduling priority
  BlockingPool* http = nullptr;  // outgoing HTTP calls of http steps
  Outbox* outbox = nullptr;  // for steps that send email
  std::string public_url;    // the base URL users reach the service at (absolute links in emails)
  OutgoingLimits outgoing;   // timeouts of http steps' calls and image downloads
  DecodeLimits image_limits;  // for images that steps fetch or read (decoded before they are kept)
};

struct StepContext {
  const Job& job;
  const std::string& step;
  const boost::json::object& params;                        // the job's parameters
  const std::map<std::string, boost::json::value>& outputs;  // earlier steps' outputs, by name
  CancelState& cancel;
  Services& services;
  // Reports this step's progress (0..1), throttled; never blocks. Call it from the step's
  // coroutine (the engine's thread), not from a pool thread.
  std::function<void(double, std::string)> progress;
  std::string log;  // set by the step: kept with the step's record (capped by the step)
};

struct StepError {
  std::string message;
  bool retryable = true;
};

using StepResult = std::variant<boost::json::value, StepError>;
using StepFn = std::function<boost::asio::awaitable<StepResult>(StepContext&)>;

struct StepDef {
  std::string name;
  std::vector<std::string> needs;
  StepFn run;
  std::vector<std::string> params_used;  // the params.NAME its templates need (configured steps)
};

// A parameter a configured pipeline declares (`[pipeline.params]`): its JSON type and, when the
// request may leave it out, its default.
struct ParamSpec {
  std::string name;
  std::string type;  // string, integer, number, boolean, array, object
  std::optional<boost::json::value> default_value;
  std::string description;
};

struct Pipeline {
  std::string name;
  std::string description;
  std::vector<StepDef> steps;
  int max_workers = 2;
  // Its jobs' kind is the pipeline's name; they run in this queue (default: one named after the
  // pipeline) with this many at once on each instance (0: --queues decides, else 2).
  std::string queue;
  int concurrency = 0;
  std::string result_step;  // whose output becomes the job's result (default: the last step)
  bool builtin = true;       // built-in pipelines validate their params; configured ones: resolve_params
  std::vector<ParamSpec> params;  // declared; none: any object (but what the templates need)
};

// A configured pipeline's params for a request (or a schedule), checked before the job exists:
// declared params get their type checked and their default filled in, undeclared ones are refused
// when the pipeline declares any, and every param a step's templates need must be there. Errors
// name the field ("params.style").
Result<boost::json::object> resolve_params(const Pipeline& p, const boost::json::value& given);
// {"style": {"type": "string", "default": "neon", "required": false}, ...}: what the pipeline
// takes, declared or needed by its templates (type "any").
boost::json::object params_json(const Pipeline& p);

// Unknown `needs`, duplicate names and cycles are refused; the message names the step.
Status validate_pipeline(const Pipeline& p);

class PipelineRegistry {
 public:
  Status add(Pipeline p);
  const Pipeline* find(const std::string& name) const;
  std::vector<const Pipeline*> all() const;

 private:
  std::map<std::string, std::unique_ptr<Pipeline>> pipelines_;
};

// How a job ended, as its handler reports it.
struct JobOutcome {
  enum class Kind { succeeded, failed, cancelled } kind = Kind::succeeded;
  boost::json::value result;
  std::string error;
  bool retryable = true;
};

// Records a step change (fenced); false when the job is no longer ours.
using StepRecorder = std::function<boost::asio::awaitable<bool>(StepUpdate)>;

// Runs a pipeline for a job: resumes from `done` (succeeded steps' outputs).
boost::asio::awaitable<JobOutcome> run_pipeline(const Pipeline& p, const Job& job, const boost::json::object& params,
                                                int max_workers, std::map<std::string, boost::json::value> done,
                                                CancelState& cancel, Services& services, StepRecorder record);

}  // namespace creatord
