#include "api/middleware.hpp"

#include "api/errors.hpp"
#include "core/clock.hpp"
#include "core/log.hpp"

namespace creatord::api {

namespace {
constexpr std::string_view kAllowedHeaders = "Authorization, Content-Type, Idempotency-Key, If-None-Match, X-Request-Id, Last-Event-ID";

std::string_view method_text(const http::Request& req) {
  return req.method_text.empty() ? http::method_name(req.method) : req.method_text;
}
}  // namespace

ApiApp::ApiApp(http::Router router, SecurityOptions security)
    : router_(std::move(router)),
      security_(std::move(security)),
      open_(std::vector<std::string>{}),
      auth_(security_.authenticator ? *security_.authenticator : open_) {}

bool ApiApp::origin_allowed(std::string_view origin) const {
  if (origin.empty()) return false;
  for (const auto& o : security_.cors_origins) {
    if (o == "*" || o == origin) return true;
  }
  return false;
}

void ApiApp::add_cors(const http::Request& req, http::Response& resp) const {
  if (security_.cors_origins.empty()) return;
  // With CORS on, every answer depends on Origin (allowed or not), so a cache must key on it.
  resp.set_header("Vary", "Origin");
  std::string_view origin = req.header("Origin");
  if (!origin_allowed(origin)) return;
  resp.set_header("Access-Control-Allow-Origin", std::string(origin));
  resp.set_header("Access-Control-Expose-Headers", "Location, ETag, X-Request-Id, Retry-After");
}

namespace {

http::Response unauthorized(std::string message, bool bad_credential) {
  auto resp = error_response(ErrorCode::unauthorized, std::move(message));
  resp.set_header("WWW-Authenticate", bad_credential ? "Bearer error=\"invalid_token\"" : "Bearer");
  return resp;
}

// Who may pass a route that needs `scope` (see RouteOptions::scope), or why not.
std::optional<http::Response> scope_refusal(const http::Router::Match& match, const Authenticator& auth,
                                            const Authenticator::Outcome& who) {
  using Kind = Authenticator::Outcome::Kind;
  if (match.scope == "public") return std::nullopt;
  if (who.kind == Kind::denied) return unauthorized(who.reason, true);
  if (who.kind == Kind::unknown_key) return std::nullopt;  // handle() refreshes the keys and decides
  const auth::Principal& p = who.principal;
  if (match.token_required && !auth.required())
    return error_response(ErrorCode::forbidden,
                          "this endpoint needs credentials: start creatord with CREATORD_API_TOKENS (or "
                          "--api-tokens-file), JWT settings, or create an API key with `creatord keys create`");
  if (match.token_required && !p.authenticated())
    return unauthorized("this request needs Authorization: Bearer <credential>", false);
  auto scope = auth::parse_scope(match.scope);
  if (!scope) return error_response(ErrorCode::internal, fmt::format("route scope '{}' is unknown", match.scope));
  if (p.has(*scope)) return std::nullopt;
  if (match.owner_may && p.kind == auth::Principal::Kind::user) return std::nullopt;  // the handler checks ownership
  if (!p.authenticated()) return unauthorized("this request needs Authorization: Bearer <credential>", false);
  auto resp = error_response(ErrorCode::forbidden,
                             fmt::format("this credential lacks the '{}' scope this request needs", match.scope));
  resp.set_header("WWW-Authenticate", fmt::format("Bearer error=\"insufficient_scope\", scope=\"{}\"", match.scope));
  return resp;
}

}  // namespace

std::optional<http::Response> ApiApp::refusal(const http::Request& req, const http::Router::Match& match,
                                              const Authenticator::Outcome& who) const {
  using Outcome = http::Router::Outcome;
  if (req.method == http::Method::options) {
    if (!match.allow.empty()) return std::nullopt;
    return error_response(ErrorCode::not_found, "no such resource: " + req.path);
  }
  if (match.outcome == Outcome::not_found) return error_response(ErrorCode::not_found, "no such resource: " + req.path);
  if (match.outcome == Outcome::method_not_allowed) {
    auto resp = error_response(ErrorCode::method_not_allowed,
                               fmt::format("{} is not allowed here; allowed: {}", method_text(req), match.allow));
    resp.set_header("Allow", match.allow);
    return resp;
  }
  if (auto denied = scope_refusal(match, auth_, who)) return denied;
  if (match.query)
    if (auto unknown = http::unknown_query_param(req.query, *match.query))
      return error_response(ErrorCode::bad_request, fmt::format("unknown query parameter '{}'", *unknown), *unknown);
  return std::nullopt;
}

http::Admission ApiApp::admit(const http::Request& req) const {
  auto match = router_.match(req.method, req.path);
  auto who = auth_.authenticate(req.header("Authorization"), now_ms());
  auto refused = refusal(req, match, who);
  if (refused) add_cors(req, *refused);
  return http::Admission{std::move(refused), match.body_limit, match.route, std::move(who.principal)};
}

// The Allow list, and for a CORS preflight what may be sent (handle() adds the origin).
http::Response ApiApp::options_response(const http::Request& req, const http::Router::Match& match) const {
  auto resp = http::Response::empty(204);
  resp.set_header("Allow", match.allow);
  if (origin_allowed(req.header("Origin")) && req.has_header("Access-Control-Request-Method")) {
    resp.set_header("Access-Control-Allow-Methods", match.allow);
    resp.set_header("Access-Control-Allow-Headers", std::string(kAllowedHeaders));
    resp.set_header("Access-Control-Max-Age", "600");
  }
  return resp;
}

// The server admitted the request already; the same rules are applied again so that handle()
// is safe on its own (tests call it directly).
boost::asio::awaitable<http::Response> ApiApp::handle(http::Request& req) {
  auto match = router_.match(req.method, req.path);
  std::string authorization(req.header("Authorization"));
  auto who = co_await auth_.authenticate_fresh(std::move(authorization), now_ms());
  req.principal = who.principal;
  http::Response resp;
  if (auto refused = refusal(req, match, who)) {
    resp = std::move(*refused);
  } else if (req.method == http::Method::options) {
    resp = options_response(req, match);
  } else {
    req.params = std::move(match.params);
    resp = co_await (*match.handler)(req);
  }
  if (!resp.log_cause.empty())
    log::error("request failed", {{"request_id", req.request_id}, {"method", method_text(req)},
                                  {"path", req.path}, {"status", resp.status}, {"cause", resp.log_cause}});
  add_cors(req, resp);
  co_return resp;
}

}  // namespace creatord::api
