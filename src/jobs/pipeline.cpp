#include "jobs/pipeline.hpp"

#include <algorithm>
#include <set>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "core/log.hpp"
#include "core/task_group.hpp"

namespace creatord {

namespace asio = boost::asio;

void CancelState::request(Reason r) {
  std::map<int, std::function<void()>> hooks;
  {
    std::lock_guard lock(mutex_);
    if (reason_ != Reason::none) return;
    reason_ = r;
    flag_.store(true);
    hooks = hooks_;
  }
  for (auto& [_, fn] : hooks) fn();
}

CancelState::Reason CancelState::reason() const {
  std::lock_guard lock(mutex_);
  return reason_;
}

int CancelState::add_hook(std::function<void()> fn) {
  std::unique_lock lock(mutex_);
  int token = next_token_++;
  if (reason_ != Reason::none) {
    lock.unlock();
    fn();
    return token;
  }
  hooks_.emplace(token, std::move(fn));
  return token;
}

void CancelState::remove_hook(int token) {
  std::lock_guard lock(mutex_);
  hooks_.erase(token);
}

Status validate_pipeline(const Pipeline& p) {
  if (p.steps.empty()) return Error::make(ErrorCode::validation, "pipeline " + p.name + " has no steps");
  std::map<std::string, const StepDef*> by_name;
  for (const auto& s : p.steps) {
    if (!by_name.emplace(s.name, &s).second)
      return Error::make(ErrorCode::validation, "pipeline " + p.name + ": step " + s.name + " is defined twice", s.name);
  }
  for (const auto& s : p.steps)
    for (const auto& n : s.needs)
      if (!by_name.count(n))
        return Error::make(ErrorCode::validation, "step " + s.name + " needs unknown step " + n, s.name);
  // Depth-first search for a cycle.
  std::map<std::string, int> color;  // 0 white, 1 grey, 2 black
  std::function<std::optional<std::string>(const std::string&)> visit = [&](const std::string& n) -> std::optional<std::string> {
    color[n] = 1;
    for (const auto& d : by_name[n]->needs) {
      if (color[d] == 1) return n + " -> " + d;
      if (color[d] == 0)
        if (auto c = visit(d)) return c;
    }
    color[n] = 2;
    return std::nullopt;
  };
  for (const auto& s : p.steps)
    if (color[s.name] == 0)
      if (auto c = visit(s.name))
        return Error::make(ErrorCode::validation, "pipeline " + p.name + " has a cycle in its needs: " + *c, s.name);
  return ok_status();
}

namespace {

bool has_type(const boost::json::value& v, const std::string& type) {
  if (type == "string") return v.is_string();
  if (type == "integer") return v.is_int64() || v.is_uint64();
  if (type == "number") return v.is_number();
  if (type == "boolean") return v.is_bool();
  if (type == "array") return v.is_array();
  if (type == "object") return v.is_object();
  return true;
}

Error param_error(const std::string& name, const std::string& what) {
  std::string field = "params." + name;
  return Error::make(ErrorCode::validation, field + " " + what, field);
}

}  // namespace

Result<boost::json::object> resolve_params(const Pipeline& p, const boost::json::value& given) {
  if (!given.is_null() && !given.is_object())
    return Error::make(ErrorCode::validation, "params must be an object", "params");
  boost::json::object out = given.is_object() ? given.as_object() : boost::json::object{};
  auto declared = [&p](std::string_view name) {
    return std::any_of(p.params.begin(), p.params.end(), [&](const ParamSpec& s) { return s.name == name; });
  };
  if (!p.params.empty())
    for (const auto& kv : out)
      if (!declared(kv.key())) return param_error(kv.key(), "is not a parameter of pipeline " + p.name);
  for (const auto& spec : p.params) {
    if (auto v = out.if_contains(spec.name)) {
      if (!has_type(*v, spec.type)) return param_error(spec.name, "must be of type " + spec.type);
    } else if (spec.default_value) {
      out[spec.name] = *spec.default_value;
    } else {
      return param_error(spec.name, "is required");
    }
  }
  for (const auto& step : p.steps)
    for (const auto& name : step.params_used)
      if (!out.contains(name)) return param_error(name, "is required (step " + step.name + " uses it)");
  return out;
}

boost::json::object params_json(const Pipeline& p) {
  boost::json::object out;
  for (const auto& spec : p.params) {
    boost::json::object o{{"type", spec.type}, {"required", !spec.default_value}};
    if (spec.default_value) o["default"] = *spec.default_value;
    if (!spec.description.empty()) o["description"] = spec.description;
    out[spec.name] = std::move(o);
  }
  for (const auto& step : p.steps)
    for (const auto& name : step.params_used)
      if (!out.contains(name)) out[name] = boost::json::object{{"type", "any"}, {"required", true}};
  return out;
}

Status PipelineRegistry::add(Pipeline p) {
  if (auto s = validate_pipeline(p); !s) return s;
  std::string name = p.name;
  pipelines_[name] = std::make_unique<Pipeline>(std::move(p));
  return ok_status();
}

const Pipeline* PipelineRegistry::find(const std::string& name) const {
  auto it = pipelines_.find(name);
  return it == pipelines_.end() ? nullptr : it->second.get();
}

std::vector<const Pipeline*> PipelineRegistry::all() const {
  std::vector<const Pipeline*> out;
  for (const auto& [_, p] : pipelines_) out.push_back(p.get());
  return out;
}

namespace {

// How often one step's progress is recorded at most (and so sent to its event streams).
constexpr std::chrono::milliseconds kProgressInterval{250};

// A step's progress reports, coalesced: at most one record per kProgressInterval, the latest
// report wins, and the last one is recorded when the step ends (flush), before its end is.
// Its sender coroutine owns it (shared_ptr), and flush() waits for that coroutine to end.
class ProgressReporter : public std::enable_shared_from_this<ProgressReporter> {
 public:
  ProgressReporter(asio::any_io_executor ex, StepRecorder record) : timer_(ex), idle_(ex), record_(std::move(record)) {}

  // Never blocks; call it on the pipeline's executor.
  void report(StepUpdate u) {
    pending_ = std::move(u);
    if (sending_) return;
    sending_ = true;
    asio::co_spawn(timer_.get_executor(), send_loop(shared_from_this()), asio::detached);
  }

  asio::awaitable<void> flush() {
    hurry_ = true;
    timer_.cancel();
    while (sending_) {
      idle_.expires_after(std::chrono::hours(1));
      co_await idle_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }

 private:
  static asio::awaitable<void> send_loop(std::shared_ptr<ProgressReporter> self) {
    for (;;) {
      auto next = self->last_sent_ + kProgressInterval;
      if (!self->hurry_ && std::chrono::steady_clock::now() < next) {
        self->timer_.expires_at(next);
        co_await self->timer_.async_wait(asio::as_tuple(asio::use_awaitable));
      }
      if (!self->pending_) break;
      StepUpdate u = std::move(*self->pending_);
      self->pending_.reset();
      co_await self->record_(std::move(u));
      self->last_sent_ = std::chrono::steady_clock::now();
    }
    self->sending_ = false;
    self->idle_.cancel();
  }

  asio::steady_timer timer_;  // until the next record may go
  asio::steady_timer idle_;   // flush() waits on it for the sender to end
  StepRecorder record_;
  std::optional<StepUpdate> pending_;
  std::chrono::steady_clock::time_point last_sent_{};
  bool sending_ = false;
  bool hurry_ = false;
};

}  // namespace

asio::awaitable<JobOutcome> run_pipeline(const Pipeline& p, const Job& job, const boost::json::object& params,
                                         int max_workers, std::map<std::string, boost::json::value> done,
                                         CancelState& cancel, Services& services, StepRecorder record) {
  auto ex = co_await asio::this_coro::executor;
  const size_t total = p.steps.size();
  std::set<std::string> running;
  std::optional<StepError> failure;
  std::map<std::string, double> step_progress;
  asio::steady_timer wake(ex);
  bool lost = false;  // the job is no longer ours (lease lost)

  auto job_progress = [&]() {
    double sum = static_cast<double>(done.size());
    for (const auto& [name, pr] : step_progress)
      if (running.count(name)) sum += std::clamp(pr, 0.0, 0.99);
    return std::min(1.0, sum / static_cast<double>(total));
  };

  auto run_step = [&](const StepDef* def) -> asio::awaitable<void> {
    auto start = StepUpdate{job.id, job.attempt, def->name, StepUpdate::Kind::started};
    start.job_progress = job_progress();
    if (!co_await record(std::move(start))) lost = true;
    auto reporter = std::make_shared<ProgressReporter>(ex, record);
    StepContext ctx{job, def->name, params, done, cancel, services, {}, {}};
    ctx.progress = [&, reporter, name = def->name](double pr, std::string msg) {
      step_progress[name] = pr;
      auto u = StepUpdate{job.id, job.attempt, name, StepUpdate::Kind::progress};
      u.progress = pr;
      u.message = std::move(msg);
      u.job_progress = job_progress();
      reporter->report(std::move(u));
    };
    StepResult r = StepError{"step did not run"};
    if (!lost) {
      try {
        r = co_await def->run(ctx);
      } catch (const std::exception& e) {
        r = StepError{std::string("step threw: ") + e.what(), true};
      }
    }
    co_await reporter->flush();  // the last report is recorded, and before the step's end
    if (auto* out = std::get_if<boost::json::value>(&r)) {
      done[def->name] = *out;
      auto u = StepUpdate{job.id, job.attempt, def->name, StepUpdate::Kind::succeeded};
      u.output = *out;
      u.log = ctx.log;
      u.job_progress = job_progress();
      if (!co_await record(std::move(u))) lost = true;
    } else {
      auto err = std::get<StepError>(r);
      if (cancel.requested()) err.message = "cancelled";
      auto u = StepUpdate{job.id, job.attempt, def->name, StepUpdate::Kind::failed};
      u.error = err.message;
      u.log = ctx.log;
      u.job_progress = job_progress();
      if (!co_await record(std::move(u))) lost = true;
      if (!failure) failure = err;
    }
    // Last: the loop below returns once nothing runs, and this frame uses its locals until here.
    running.erase(def->name);
    wake.cancel();
  };

  TaskGroup steps(ex);  // the steps running, which use this frame's locals
  for (;;) {
    bool stop_launching = failure || cancel.requested() || lost;
    if (!stop_launching) {
      for (const auto& def : p.steps) {
        if (static_cast<int>(running.size()) >= max_workers) break;
        if (done.count(def.name) || running.count(def.name)) continue;
        bool ready = std::all_of(def.needs.begin(), def.needs.end(), [&](const std::string& n) { return done.count(n) > 0; });
        if (!ready) continue;
        running.insert(def.name);
        step_progress[def.name] = 0;
        steps.spawn(run_step(&def));
      }
    }
    if (running.empty()) break;
    wake.expires_after(std::chrono::hours(24));
    co_await wake.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  co_await steps.wait();  // each has left `running` as its last act; let its frame end

  if (cancel.requested()) {
    auto reason = cancel.reason();
    if (reason == CancelState::Reason::timeout)
      co_return JobOutcome{JobOutcome::Kind::failed, nullptr, fmt::format("timed out after {} ms", job.timeout_ms), true};
    co_return JobOutcome{JobOutcome::Kind::cancelled, nullptr, "cancelled", false};
  }
  if (lost) co_return JobOutcome{JobOutcome::Kind::failed, nullptr, "lease lost", true};
  if (failure) co_return JobOutcome{JobOutcome::Kind::failed, nullptr, failure->message, failure->retryable};
  const std::string& result_step = p.result_step.empty() ? p.steps.back().name : p.result_step;
  co_return JobOutcome{JobOutcome::Kind::succeeded, done[result_step], "", false};
}

}  // namespace creatord
