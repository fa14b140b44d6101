#include "jobs/engine.hpp"

#include <pthread.h>


#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "core/clock.hpp"
#include "core/ids.hpp"
#include "core/log.hpp"

namespace creatord {

namespace asio = boost::asio;
using namespace std::chrono;

namespace {
void log_exception(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    log::error("job engine coroutine failed", {{"error", ex.what()}});
  }
}

asio::awaitable<void> sleep_for(milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
}
}  // namespace

JobEngine::JobEngine(EngineOptions options, queue::JobQueue& queue, EventHub& hub)
    : options_(std::move(options)), queue_(queue), hub_(hub) {
  if (options_.owner.empty()) options_.owner = "creatord-" + std::to_string(::getpid()) + "-" + new_request_id();
}

JobEngine::~JobEngine() { stop(); }

void JobEngine::handle(const std::string& kind, JobHandler handler) { handlers_[kind] = std::move(handler); }

void JobEngine::start() {
  asio::co_spawn(ioc_, [this]() -> asio::awaitable<void> {
    if (!options_.run_jobs) co_return;  // API-only: other instances run the jobs
    if (options_.exclusive) {
      auto n = co_await queue_.recover(true);
      if (n && n.value() > 0) log::info("jobs recovered from the previous run", {{"count", n.value()}});
    }
    for (const auto& [queue, limit] : options_.queues) asio::co_spawn(ioc_, dispatch(queue, limit), log_exception);
    asio::co_spawn(ioc_, heartbeat_loop(), log_exception);
    asio::co_spawn(ioc_, maintenance_loop(), log_exception);
  }, log_exception);
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "jobs");
    auto guard = asio::make_work_guard(ioc_);
    ioc_.run();
  });
}

void JobEngine::stop() {
  if (!thread_.joinable()) return;
  asio::post(ioc_, [this] {
    stopping_ = true;
    for (auto& [id, cancel] : running_) cancel->request(CancelState::Reason::shutdown);
    for (const auto& [queue, _] : options_.queues) hub_.notify(EventHub::queue_topic(queue));
  });
  // Wait for running jobs to hand themselves back, then stop the loop.
  asio::co_spawn(ioc_, [this]() -> asio::awaitable<void> {
    auto deadline = steady_clock::now() + milliseconds(options_.shutdown_grace_ms);
    while (!running_.empty() && steady_clock::now() < deadline) co_await sleep_for(milliseconds(10));
    if (!running_.empty()) log::warn("jobs still running at shutdown; their leases will expire", {{"count", static_cast<int64_t>(running_.size())}});
    ioc_.stop();
  }, log_exception);
  thread_.join();
}


asio::awaitable<void> JobEngine::dispatch(std::string queue, int limit) {
  auto sub = hub_.subscribe(EventHub::queue_topic(queue), ioc_.get_executor());
  while (!stopping_) {
    int free = limit - running_per_queue_[queue];
    if (free > 0) {
      int want = std::min(free, options_.claim_batch);
      auto claimed = co_await queue_.claim(queue, options_.owner, want, options_.lease_ms);
      if (!claimed) {
        log::warn("claim failed", {{"queue", queue}, {"error", claimed.error().message}});
        co_await sleep_for(milliseconds(std::min<int64_t>(options_.poll_ms, 1000)));
        continue;
      }
      if (stopping_) {
        // Claimed while stopping: hand them straight back.
        std::vector<queue::Finished> back;
        for (auto& j : claimed.value())
          back.push_back(queue::Finished{std::move(j), queue::RunOutcome{queue::RunOutcome::Kind::released}});
        if (!back.empty()) co_await queue_.finish(options_.owner, std::move(back));
        break;
      }
      for (auto& j : claimed.value()) {
        ++running_per_queue_[queue];
        asio::co_spawn(ioc_, run_job(std::move(j)), log_exception);
      }
      if (static_cast<int>(claimed->size()) == want) continue;  // there may be more
    }
    // Sleep until woken (enqueue, a job finished), the next delayed job, or the poll interval.
    int64_t wait_ms = options_.poll_ms;
    if (free > 0) {
      auto next = co_await queue_.next_run_at(queue);
      if (next && next.value() > 0) wait_ms = std::clamp<int64_t>(next.value() - queue_.clock().now_ms(), 1, options_.poll_ms);
    }
    co_await sub->wait(milliseconds(wait_ms));
  }
}

asio::awaitable<void> JobEngine::run_job(Job job) {
  auto cancel = std::make_shared<CancelState>();
  running_[job.id] = cancel;
  // A cancel asked through the queue (any thread) stops it at once.
  queue_.watch(job.id, [cancel] { cancel->request(CancelState::Reason::cancelled); });
  if (job.cancel_requested) cancel->request(CancelState::Reason::cancelled);
  asio::steady_timer timeout(ioc_);
  if (job.timeout_ms > 0) {
    timeout.expires_after(milliseconds(job.timeout_ms));
    timeout.async_wait([cancel](const boost::system::error_code& ec) {
      if (!ec) cancel->request(CancelState::Reason::timeout);
    });
  }
  // Not a coroutine lambda: its captures would live in the std::function, not the frame.
  StepRecorder record = [this](StepUpdate u) { return record_step(std::move(u)); };

  JobOutcome outcome;
  auto it = handlers_.find(job.kind);
  if (it == handlers_.end()) {
    outcome = JobOutcome{JobOutcome::Kind::failed, nullptr, "no handler for job kind " + job.kind, false};
  } else {
    JobRun run{job, *cancel, record};
    try {
      outcome = co_await it->second(run);
    } catch (const std::exception& e) {
      outcome = JobOutcome{JobOutcome::Kind::failed, nullptr, std::string("job handler threw: ") + e.what(), true};
    }
  }
  timeout.cancel();
  queue_.unwatch(job.id);

  using K = queue::RunOutcome::Kind;
  queue::RunOutcome ended{K::failed, nullptr, outcome.error, outcome.retryable};
  auto reason = cancel->reason();
  if (reason == CancelState::Reason::shutdown) ended = {K::released};
  else if (reason == CancelState::Reason::cancelled || outcome.kind == JobOutcome::Kind::cancelled)
    ended = {K::cancelled, nullptr, "cancelled", false};
  else if (reason == CancelState::Reason::timeout && outcome.kind != JobOutcome::Kind::succeeded)
    ended.error = fmt::format("timed out after {} s", job.timeout_ms / 1000);
  else if (outcome.kind == JobOutcome::Kind::succeeded) ended = {K::succeeded, std::move(outcome.result)};
  static constexpr const char* kNames[] = {"succeeded", "failed", "cancelled", "released"};
  const char* outcome_name = kNames[static_cast<int>(ended.kind)];
  std::string error = ended.error;
  int64_t id = job.id;
  int attempt = job.attempt;
  std::string kind = job.kind, queue_name = job.queue;
  // Named first: GCC 12 miscompiles braced temporaries inside a co_await expression.
  queue::Finished finished{std::move(job), std::move(ended)};
  auto fin = co_await finish_batched(std::move(finished));
  if (!fin) log::error("could not record a job's end", {{"job_id", id}, {"error", fin.error().message}});
  else if (!fin.value()) log::warn("job was taken over before it finished (lease lost)", {{"job_id", id}});
  else
    log::info("job ended", {{"job_id", id}, {"kind", kind}, {"attempt", attempt}, {"outcome", outcome_name},
                            {"error", error}});
  running_.erase(id);
  --running_per_queue_[queue_name];
  hub_.notify(EventHub::queue_topic(queue_name));
}

struct JobEngine::PendingFinish {
  explicit PendingFinish(asio::any_io_executor ex, queue::Finished f) : finish(std::move(f)), done(ex) {}
  queue::Finished finish;
  asio::steady_timer done;
  std::optional<Result<bool>> result;
};

asio::awaitable<Result<bool>> JobEngine::finish_batched(queue::Finished f) {
  auto p = std::make_shared<PendingFinish>(ioc_.get_executor(), std::move(f));
  pending_finishes_.push_back(p);
  if (!flushing_) asio::co_spawn(ioc_, flush_finishes(), log_exception);
  while (!p->result) {
    p->done.expires_after(std::chrono::seconds(60));
    co_await p->done.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  co_return std::move(*p->result);
}

// While one batch is being written, the next accumulates.
asio::awaitable<void> JobEngine::flush_finishes() {
  flushing_ = true;
  while (!pending_finishes_.empty()) {
    auto batch = std::move(pending_finishes_);
    pending_finishes_.clear();
    std::vector<queue::Finished> finishes;
    finishes.reserve(batch.size());
    for (const auto& p : batch) finishes.push_back(p->finish);
    auto r = co_await queue_.finish(options_.owner, std::move(finishes));
    for (size_t i = 0; i < batch.size(); ++i) {
      if (r) batch[i]->result = Result<bool>(r.value().at(i));
      else batch[i]->result = Result<bool>(r.error());
      batch[i]->done.cancel();
    }
  }
  flushing_ = false;
}

asio::awaitable<bool> JobEngine::record_step(StepUpdate u) {
  auto r = co_await queue_.record_step(options_.owner, std::move(u));
  co_return r && r.value();
}

asio::awaitable<void> JobEngine::heartbeat_loop() {
  while (!stopping_) {
    co_await sleep_for(milliseconds(options_.heartbeat_ms));
    if (stopping_) break;
    if (running_.empty()) continue;
    auto ids = co_await queue_.heartbeat(options_.owner, options_.lease_ms);
    if (!ids) {
      log::warn("lease renewal failed", {{"error", ids.error().message}});
      continue;
    }
    for (int64_t id : ids.value())
      if (auto it = running_.find(id); it != running_.end()) it->second->request(CancelState::Reason::cancelled);
  }
}

asio::awaitable<void> JobEngine::maintenance_loop() {
  auto last_prune = steady_clock::now() - hours(24);
  while (!stopping_) {
    co_await sleep_for(milliseconds(std::max<int64_t>(options_.lease_ms / 3, 100)));
    if (stopping_) break;
    auto n = co_await queue_.recover(false);
    if (n && n.value() > 0) log::warn("jobs whose worker stopped were put back", {{"count", n.value()}});
    if (steady_clock::now() - last_prune >= milliseconds(options_.prune_interval_ms)) {
      last_prune = steady_clock::now();
      auto pruned = co_await queue_.prune(options_.retention_ms);
      if (pruned && pruned.value() > 0) log::info("finished jobs pruned", {{"count", pruned.value()}});
    }
  }
}

}  // namespace creatord
