// Queues as an operator sees them: counts by state, pause and resume; and the schedules.
#include <boost/json.hpp>

#include "api/errors.hpp"
#include "api/routes.hpp"
#include "queue/job_queue.hpp"
#include "queue/scheduler.hpp"

namespace creatord::api {

namespace asio = boost::asio;
namespace json = boost::json;
using http::Request;
using http::Response;

namespace {

constexpr int64_t kCountWindowMs = 3600 * 1000;  // finished jobs are counted over the last hour

asio::awaitable<Response> list_queues(Context& ctx, Request&) {
  auto queues = co_await ctx.jobs->queues(ctx.queues, kCountWindowMs);
  if (!queues) co_return error_response(queues.error());
  json::array items;
  for (const auto& q : queues.value()) items.emplace_back(to_json(q));
  co_return Response::json(200, json::object{{"items", std::move(items)}, {"window_seconds", kCountWindowMs / 1000}});
}

// Pausing names a queue this instance runs or one that has jobs: a typo is a 404, not a new queue.
asio::awaitable<Response> set_paused(Context& ctx, Request& req, bool paused) {
  std::string name = req.params.at(0);
  auto queues = co_await ctx.jobs->queues(ctx.queues, kCountWindowMs);
  if (!queues) co_return error_response(queues.error());
  auto it = std::find_if(queues->begin(), queues->end(), [&](const QueueInfo& q) { return q.name == name; });
  if (it == queues->end()) co_return error_response(ErrorCode::not_found, "no queue named " + name, "name");
  // Not a ?: with co_await in its arms: GCC 12 miscompiles that.
  Status r = Error{};
  if (paused) r = co_await ctx.jobs->pause(name);
  else r = co_await ctx.jobs->resume(name);
  if (!r) co_return error_response(r.error());
  QueueInfo q = *it;
  q.paused = paused;
  co_return Response::json(200, to_json(q));
}

asio::awaitable<Response> list_schedules(Context& ctx, Request&) {
  json::array items;
  if (ctx.scheduler) {
    auto listed = co_await ctx.scheduler->describe();
    if (!listed) co_return error_response(listed.error());
    items = std::move(listed.value());
  }
  co_return Response::json(200, json::object{{"items", std::move(items)}});
}

}  // namespace

void add_queue_routes(http::Router& router, Context& ctx) {
  using M = http::Method;
  router.add(M::get, "/api/queues", [&ctx](Request& r) { return list_queues(ctx, r); });
  router.add(M::post, "/api/queues/{name}/pause", [&ctx](Request& r) { return set_paused(ctx, r, true); },
             {.scope = "admin"});
  router.add(M::post, "/api/queues/{name}/resume", [&ctx](Request& r) { return set_paused(ctx, r, false); },
             {.scope = "admin"});
  router.add(M::get, "/api/schedules", [&ctx](Request& r) { return list_schedules(ctx, r); });
}

}  // namespace creatord::api
