#include <boost/json.hpp>

#include "api/errors.hpp"
#include "api/routes.hpp"
#include "core/log.hpp"
#include "core/offload.hpp"

namespace creatord::api {

namespace asio = boost::asio;
using http::Request;
using http::Response;

namespace {

boost::json::object pool_json(const Store::PoolUse& u) {
  return {{"max", u.max},          {"open", u.open},         {"in_use", u.in_use},
          {"waiting", u.waiting},  {"waited", u.waited},     {"timed_out", u.timed_out},
          {"notifications", u.notifications}};
}

}  // namespace

void add_health_routes(http::Router& router, Context& ctx) {
  // The process is up and its event loop turns.
  router.add(http::Method::get, "/healthz", [](Request&) -> asio::awaitable<Response> {
    co_return Response::json(200, {{"status", "ok"}});
  }, {.scope = "public"});
  // The store answers: ready for traffic.
  router.add(http::Method::get, "/readyz", [&ctx](Request&) -> asio::awaitable<Response> {
    auto r = co_await ctx.store.ping();
    if (!r) {
      auto resp = error_response(ErrorCode::unavailable, "store is not ready: " + r.error().message);
      co_return resp;
    }
    // The write path too: with a full disk or a read-only image folder every upload and render
    // fails, so the instance is not ready (and says why in the log).
    auto probe = [&ctx](size_t) -> Result<bool> {
      if (auto s = ctx.blobs.probe_write(); !s) return s.take_error();
      return true;
    };
    auto writable = co_await offload<bool>(ctx.files, probe);
    if (!writable) {
      log::warn("not ready: the image folder does not take writes", {{"cause", writable.error().message}});
      co_return error_response(ErrorCode::unavailable, "storage is not ready: the image folder does not take writes");
    }
    boost::json::object body{{"status", "ready"}};
    if (auto u = ctx.store.pool_use()) body["database_pool"] = pool_json(*u);
    co_return Response::json(200, std::move(body));
  }, {.scope = "public"});
}

}  // namespace creatord::api
