#include <boost/json.hpp>

#include "api/errors.hpp"
#include "api/routes.hpp"

namespace creatord::api {

namespace asio = boost::asio;
using http::Request;
using http::Response;

void add_health_routes(http::Router& router, Context& ctx) {
  // The process is up and its event loop turns.
  router.add(http::Method::get, "/healthz", [](Request&) -> asio::awaitable<Response> {
    co_return Response::json(200, {{"status", "ok"}});
  });
  // The store answers: ready for traffic.
  router.add(http::Method::get, "/readyz", [&ctx](Request&) -> asio::awaitable<Response> {
    auto r = co_await ctx.store.ping();
    if (!r) {
      auto resp = error_response(ErrorCode::unavailable, "store is not ready: " + r.error().message);
      co_return resp;
    }
    co_return Response::json(200, {{"status", "ready"}});
  });
}

}  // namespace creatord::api
