// GET /metrics: the Prometheus text format. Request and job figures come from what the server
// and the queue recorded as they worked; queue depths are read from the store at scrape time
// (the same counts GET /api/queues shows, cheap by design).
#include <boost/json.hpp>

#include "api/errors.hpp"
#include "api/observe.hpp"
#include "core/blocking_pool.hpp"
#include "core/log.hpp"
#include "mail/delivery.hpp"
#include "mail/outbox.hpp"
#include "metrics/process.hpp"
#include "queue/job_queue.hpp"

namespace creatord::api {

namespace asio = boost::asio;
using http::Request;
using http::Response;

namespace {

constexpr int64_t kFinishedWindowMs = 3600 * 1000;

void write_build_info(metrics::Exposition& out, const MetricsSources& s) {
  out.family("creatord_build_info", "gauge", "Always 1; the labels say which build runs, on which store.");
  out.sample("creatord_build_info", {{"version", s.version}, {"commit", s.commit}, {"store", s.store}}, 1.0);
}

void write_queues(metrics::Exposition& out, const std::vector<QueueInfo>& queues) {
  out.family("creatord_queue_jobs", "gauge", "Jobs waiting or running now, by queue and state.");
  for (const auto& q : queues) {
    const std::pair<const char*, int64_t> now[] = {
        {"queued", q.queued}, {"scheduled", q.scheduled}, {"running", q.running}, {"retrying", q.retrying}};
    for (const auto& [state, n] : now)
      out.sample("creatord_queue_jobs", {{"queue", q.name}, {"state", state}}, static_cast<double>(n));
  }
  out.family("creatord_queue_jobs_finished_last_hour", "gauge",
             "Jobs that finished in the last hour (all instances), by queue and state.");
  for (const auto& q : queues) {
    const std::pair<const char*, int64_t> done[] = {
        {"succeeded", q.succeeded}, {"failed", q.failed}, {"cancelled", q.cancelled}};
    for (const auto& [state, n] : done)
      out.sample("creatord_queue_jobs_finished_last_hour", {{"queue", q.name}, {"state", state}}, static_cast<double>(n));
  }
  out.family("creatord_queue_paused", "gauge", "1 when the queue is paused.");
  for (const auto& q : queues) out.sample("creatord_queue_paused", {{"queue", q.name}}, q.paused ? 1.0 : 0.0);
  out.family("creatord_queue_concurrency", "gauge", "Jobs of the queue this instance runs at once.");
  for (const auto& q : queues) out.sample("creatord_queue_concurrency", {{"queue", q.name}}, static_cast<double>(q.concurrency));
}

// The outbox: emails by state (every state, even when none is in it, so alerts see a 0), and
// this instance's delivery attempts by result.
void write_emails(metrics::Exposition& out, const std::vector<std::pair<std::string, int64_t>>& counts,
                  const DeliveryCounters* delivery) {
  out.family("creatord_emails", "gauge", "Emails in the outbox by state (all instances).");
  for (const char* state : {"queued", "sending", "sent", "failed"}) {
    int64_t n = 0;
    for (const auto& [s, c] : counts)
      if (s == state) n = c;
    out.sample("creatord_emails", {{"state", state}}, static_cast<double>(n));
  }
  if (!delivery) return;
  out.family("creatord_email_delivery_attempts_total", "counter",
             "Delivery attempts by this instance, by result: sent, retried (temporary failure), failed (for good).");
  const std::pair<const char*, uint64_t> results[] = {{"sent", delivery->sent.load(std::memory_order_relaxed)},
                                                      {"retried", delivery->retried.load(std::memory_order_relaxed)},
                                                      {"failed", delivery->failed.load(std::memory_order_relaxed)}};
  for (const auto& [result, n] : results)
    out.sample("creatord_email_delivery_attempts_total", {{"result", result}}, static_cast<double>(n));
}

// Every blocking pool (SQLite readers, files, rendering, mail, outgoing HTTP): its size, what
// waits, and how long tasks wait for a thread and then run.
void write_pools(metrics::Exposition& out) {
  std::vector<std::pair<std::string, BlockingPool::Stats>> pools;
  BlockingPool::for_each([&](const BlockingPool& p) { pools.emplace_back(p.name(), p.stats()); });
  out.family("creatord_pool_threads", "gauge", "Threads of each blocking pool.");
  for (const auto& [name, s] : pools) out.sample("creatord_pool_threads", {{"pool", name}}, static_cast<double>(s.threads));
  out.family("creatord_pool_busy_threads", "gauge", "Threads of each blocking pool running a task now.");
  for (const auto& [name, s] : pools) out.sample("creatord_pool_busy_threads", {{"pool", name}}, static_cast<double>(s.busy));
  out.family("creatord_pool_queue_length", "gauge", "Tasks waiting for a thread of each blocking pool.");
  for (const auto& [name, s] : pools) out.sample("creatord_pool_queue_length", {{"pool", name}}, static_cast<double>(s.queued));
  out.family("creatord_pool_rejected_total", "counter", "Tasks refused because the pool's queue was full (answered 503).");
  for (const auto& [name, s] : pools) out.sample("creatord_pool_rejected_total", {{"pool", name}}, s.rejected);
  out.family("creatord_pool_wait_seconds", "histogram", "Time from a task's submission to a thread taking it.");
  for (const auto& [name, s] : pools)
    out.histogram("creatord_pool_wait_seconds", {{"pool", name}}, metrics::latency_bounds(), s.wait);
  out.family("creatord_pool_task_duration_seconds", "histogram", "Time a task ran on its thread (a store read, a file, a render).");
  for (const auto& [name, s] : pools)
    out.histogram("creatord_pool_task_duration_seconds", {{"pool", name}}, metrics::latency_bounds(), s.run);
}

// The store's own queues: SQLite's single writer, PostgreSQL's connection pool.
void write_store(metrics::Exposition& out, const Store& store) {
  if (auto n = store.write_queue_length()) {
    out.family("creatord_store_write_queue_length", "gauge", "Writes waiting for SQLite's writer thread.");
    out.sample("creatord_store_write_queue_length", {}, static_cast<double>(*n));
  }
  if (auto l = store.latency()) {
    out.family("creatord_store_wait_seconds", "histogram",
               "Time store operations waited for SQLite's writer thread or a PostgreSQL connection.");
    out.histogram("creatord_store_wait_seconds", {{"resource", l->resource}}, metrics::latency_bounds(), l->wait);
    out.family("creatord_store_hold_seconds", "histogram",
               "Time the writer (one write transaction per batch) or a connection (one operation) was held.");
    out.histogram("creatord_store_hold_seconds", {{"resource", l->resource}}, metrics::latency_bounds(), l->hold);
  }
  if (auto p = store.pool_use()) {
    out.family("creatord_database_connections", "gauge", "PostgreSQL connections of the pool, by state (max: the configured size).");
    out.sample("creatord_database_connections", {{"state", "max"}}, static_cast<double>(p->max));
    out.sample("creatord_database_connections", {{"state", "open"}}, static_cast<double>(p->open));
    out.sample("creatord_database_connections", {{"state", "in_use"}}, static_cast<double>(p->in_use));
    out.family("creatord_database_pool_waiting", "gauge", "Callers waiting for a PostgreSQL connection now.");
    out.sample("creatord_database_pool_waiting", {}, static_cast<double>(p->waiting));
    out.family("creatord_database_pool_waits_total", "counter", "Callers that had to wait for a PostgreSQL connection.");
    out.sample("creatord_database_pool_waits_total", {}, p->waited);
    out.family("creatord_database_pool_timeouts_total", "counter",
               "Callers that gave up waiting for a PostgreSQL connection (--database-acquire-timeout; answered 503).");
    out.sample("creatord_database_pool_timeouts_total", {}, p->timed_out);
  }
}

asio::awaitable<Response> serve_metrics(Context& ctx, const MetricsSources& sources) {
  metrics::Exposition out;
  write_build_info(out, sources);
  metrics::write_process_metrics(out);
  if (sources.http) sources.http->write(out);
  if (sources.jobs) sources.jobs->write(out);
  write_pools(out);
  write_store(out, ctx.store);
  out.family("creatord_log_dropped_lines_total", "counter",
             "Access lines dropped because the log output could not keep up (--access-log-buffer).");
  out.sample("creatord_log_dropped_lines_total", {}, static_cast<double>(log::dropped_lines()));
  bool store_ok = true;
  if (ctx.jobs) {
    auto queues = co_await ctx.jobs->queues(ctx.queues, kFinishedWindowMs);
    store_ok = static_cast<bool>(queues);
    if (queues) write_queues(out, queues.value());
  }
  if (ctx.outbox) {
    auto counts = co_await ctx.outbox->store().email_counts();
    store_ok = store_ok && static_cast<bool>(counts);
    if (counts) write_emails(out, counts.value(), sources.mail);
  }
  out.family("creatord_store_up", "gauge", "1 when the store answered this scrape's queue and email counts.");
  out.sample("creatord_store_up", {}, store_ok ? 1.0 : 0.0);
  if (ctx.response_cache) {
    const auto& cache = *ctx.response_cache;
    out.family("creatord_response_cache_bytes", "gauge", "Bytes the cached answers hold (--response-cache-bytes bounds them).");
    out.sample("creatord_response_cache_bytes", {}, static_cast<double>(cache.bytes()));
    out.family("creatord_response_cache_entries", "gauge", "Cached answers.");
    out.sample("creatord_response_cache_entries", {}, static_cast<double>(cache.entries()));
    out.family("creatord_response_cache_hits_total", "counter", "Answers served from the cache.");
    out.sample("creatord_response_cache_hits_total", {}, static_cast<double>(cache.hits()));
    out.family("creatord_response_cache_misses_total", "counter", "Cache look-ups that found nothing current.");
    out.sample("creatord_response_cache_misses_total", {}, static_cast<double>(cache.misses()));
  }
  Response r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = out.take();
  r.set_header("Cache-Control", "no-store");
  co_return r;
}

}  // namespace

void add_metrics_route(http::Router& router, Context& ctx, const MetricsSources& sources, bool token_required) {
  router.add(
      http::Method::get, "/metrics", [&ctx, &sources](Request&) { return serve_metrics(ctx, sources); },
      {.token_required = token_required, .scope = "read"});
}

}  // namespace creatord::api
