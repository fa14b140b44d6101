#include "api/middleware.hpp"

#include "api/errors.hpp"

namespace creatord::api {

namespace {
constexpr std::string_view kAllowedHeaders = "Authorization, Content-Type, Idempotency-Key, If-None-Match, X-Request-Id, Last-Event-ID";
}  // namespace

ApiApp::ApiApp(http::Router router, SecurityOptions security)
    : router_(std::move(router)), security_(std::move(security)), auth_(security_.api_tokens) {}

size_t ApiApp::body_limit(http::Method method, std::string_view path) const {
  return router_.body_limit(method, path);
}

bool ApiApp::origin_allowed(std::string_view origin) const {
  if (origin.empty()) return false;
  for (const auto& o : security_.cors_origins) {
    if (o == "*" || o == origin) return true;
  }
  return false;
}

void ApiApp::add_cors(const http::Request& req, http::Response& resp) const {
  std::string_view origin = req.header("Origin");
  if (!origin_allowed(origin)) return;
  resp.set_header("Access-Control-Allow-Origin", std::string(origin));
  resp.set_header("Vary", "Origin");
  resp.set_header("Access-Control-Expose-Headers", "Location, ETag, X-Request-Id, Retry-After");
}

boost::asio::awaitable<http::Response> ApiApp::handle(http::Request& req) {
  auto match = router_.match(req.method, req.path);

  if (req.method == http::Method::options) {
    if (match.allow.empty()) co_return error_response(ErrorCode::not_found, "no such resource: " + req.path);
    auto resp = http::Response::empty(204);
    resp.set_header("Allow", match.allow);
    if (origin_allowed(req.header("Origin")) && req.has_header("Access-Control-Request-Method")) {
      add_cors(req, resp);
      resp.set_header("Access-Control-Allow-Methods", match.allow);
      resp.set_header("Access-Control-Allow-Headers", std::string(kAllowedHeaders));
      resp.set_header("Access-Control-Max-Age", "600");
    }
    co_return resp;
  }

  http::Response resp;
  if (match.outcome == http::Router::Outcome::not_found) {
    resp = error_response(ErrorCode::not_found, "no such resource: " + req.path);
  } else if (match.outcome == http::Router::Outcome::method_not_allowed) {
    resp = error_response(ErrorCode::method_not_allowed,
                          fmt::format("{} is not allowed here; allowed: {}", http::method_name(req.method), match.allow));
    resp.set_header("Allow", match.allow);
  } else if (http::is_write(req.method) && auth_.enabled() && !auth_.check(req.header("Authorization"))) {
    resp = error_response(ErrorCode::unauthorized, "this request needs Authorization: Bearer <token>");
    resp.set_header("WWW-Authenticate", "Bearer");
  } else if (auto unknown = http::unknown_query_param(req.query, *match.query)) {
    resp = error_response(ErrorCode::bad_request, fmt::format("unknown query parameter '{}'", *unknown), *unknown);
  } else {
    req.params = std::move(match.params);
    resp = co_await (*match.handler)(req);
  }
  add_cors(req, resp);
  co_return resp;
}

}  // namespace creatord::api
