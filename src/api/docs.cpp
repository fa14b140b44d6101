// The OpenAPI document and Swagger UI, served from the binary (cmake/embed.cmake): no file
// beside the executable, no CDN. The document is web/openapi.json; a unit test holds it and the
// router to the same routes (openapi_mismatches).
#include <set>

#include <boost/json.hpp>

#include "api/errors.hpp"
#include "api/observe.hpp"
#include "core/assets.hpp"

namespace creatord::api {

namespace asio = boost::asio;
namespace json = boost::json;
using http::Request;
using http::Response;

namespace {

std::string_view content_type_of(std::string_view name) {
  auto ends = [&](std::string_view ext) { return name.size() >= ext.size() && name.substr(name.size() - ext.size()) == ext; };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".json")) return "application/json";
  if (ends(".png")) return "image/png";
  if (ends(".svg")) return "image/svg+xml";
  return "application/octet-stream";
}

Response asset_response(std::string_view name, std::string_view cache_control = "public, max-age=3600") {
  const assets::Asset* a = assets::find(name);
  if (!a) return error_response(ErrorCode::not_found, "no such file: " + std::string(name));
  Response r;
  r.content_type = std::string(content_type_of(name));
  r.body = std::string(a->data);
  r.set_header("Cache-Control", std::string(cache_control));
  r.set_header("X-Content-Type-Options", "nosniff");
  return r;
}

// The dashboard loads its own script and stylesheet and talks to this origin's API, nothing else:
// no inline script or style, no other host, no framing.
constexpr std::string_view kUiPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

Response ui_response(std::string_view file) {
  // Every file but the page has a content-hashed name (web/ui/build.mjs): it never changes.
  bool page = file == "index.html";
  Response r = asset_response("ui/" + std::string(file), page ? "no-cache" : "public, max-age=31536000, immutable");
  r.set_header("Content-Security-Policy", std::string(kUiPolicy));
  r.set_header("Referrer-Policy", "no-referrer");
  if (page) r.set_header("X-Frame-Options", "DENY");
  return r;
}

// The document as one line: the checked-in file is indented for people, not for the wire.
Response openapi_response() {
  static const std::string compact = json::serialize(openapi_document());
  Response r;
  r.body = compact;
  r.set_header("Cache-Control", "no-cache");
  return r;
}

}  // namespace

void add_docs_routes(http::Router& router) {
  using M = http::Method;
  router.add(M::get, "/openapi.json", [](Request&) -> asio::awaitable<Response> { co_return openapi_response(); },
             {.scope = "public"});
  router.add(M::get, "/docs", [](Request&) -> asio::awaitable<Response> { co_return asset_response("docs/index.html"); },
             {.scope = "public"});
  router.add(M::get, "/docs/{file}", [](Request& r) -> asio::awaitable<Response> {
    co_return asset_response("docs/" + r.params.at(0));
  }, {.scope = "public"});
}

void add_ui_routes(http::Router& router) {
  using M = http::Method;
  router.add(M::get, "/", [](Request&) -> asio::awaitable<Response> {
    Response r = Response::empty(302);
    r.set_header("Location", "/ui/");
    co_return r;
  }, {.scope = "public"});
  router.add(M::get, "/ui", [](Request&) -> asio::awaitable<Response> { co_return ui_response("index.html"); },
             {.scope = "public"});
  router.add(M::get, "/ui/{file}", [](Request& r) -> asio::awaitable<Response> { co_return ui_response(r.params.at(0)); },
             {.scope = "public"});
}

boost::json::value openapi_document() {
  const assets::Asset* a = assets::find("openapi.json");
  if (!a) return nullptr;
  boost::system::error_code ec;
  auto v = json::parse(a->data, ec);
  return ec ? json::value(nullptr) : v;
}

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A parameter or its $ref into components.parameters.
const json::object* resolve(const json::value& p, const json::object& doc) {
  if (!p.is_object()) return nullptr;
  const auto& o = p.as_object();
  auto ref = o.if_contains("$ref");
  if (!ref || !ref->is_string()) return &o;
  std::string_view r = ref->as_string();
  constexpr std::string_view kPrefix = "#/components/parameters/";
  if (r.substr(0, kPrefix.size()) != kPrefix) return nullptr;
  auto* target = doc.at("components").at("parameters").as_object().if_contains(r.substr(kPrefix.size()));
  return target && target->is_object() ? &target->as_object() : nullptr;
}

std::set<std::string> query_params_of(const json::object& op, const json::object& doc) {
  std::set<std::string> out;
  auto* params = op.if_contains("parameters");
  if (!params || !params->is_array()) return out;
  for (const auto& p : params->as_array())
    if (auto* o = resolve(p, doc); o && o->at("in").is_string() && o->at("in").as_string() == "query")
      out.insert(std::string(o->at("name").as_string()));
  return out;
}

void check_operation(const http::Router::RouteInfo& r, const json::object& op, const json::object& doc,
                     std::vector<std::string>& out) {
  std::string where = fmt::format("{} {}", http::method_name(r.method), r.pattern);
  std::set<std::string> want(r.query.begin(), r.query.end());
  auto have = query_params_of(op, doc);
  for (const auto& q : want)
    if (!have.count(q)) out.push_back(fmt::format("{}: query parameter {} is not in the document", where, q));
  for (const auto& q : have)
    if (!want.count(q)) out.push_back(fmt::format("{}: the document's query parameter {} is not the route's", where, q));
  auto* marked = op.if_contains("x-token-required");
  bool documented = marked && marked->is_bool() && marked->as_bool();
  if (documented != r.token_required)
    out.push_back(fmt::format("{}: the route {} a token even to read; the document says it {}", where,
                              r.token_required ? "needs" : "does not need", documented ? "does" : "does not"));
  // The scope a caller needs, and a security requirement that says the same.
  auto* scope = op.if_contains("x-scope");
  std::string_view doc_scope = scope && scope->is_string() ? std::string_view(scope->as_string()) : "";
  if (doc_scope != r.scope)
    out.push_back(fmt::format("{}: the route needs scope '{}'; the document's x-scope says '{}'", where, r.scope, doc_scope));
  auto* owner_may = op.if_contains("x-owner-may");
  if ((owner_may && owner_may->is_bool() && owner_may->as_bool()) != r.owner_may)
    out.push_back(fmt::format("{}: x-owner-may must be true exactly when a signed-in user may act on their own creator", where));
  auto* security = op.if_contains("security");
  bool declares_none = security && security->is_array() && security->as_array().empty();
  if (!security || !security->is_array() || declares_none != (r.scope == "public"))
    out.push_back(fmt::format("{}: security must be [] exactly when the route is public", where));
}

}  // namespace

std::vector<std::string> openapi_mismatches(const std::vector<http::Router::RouteInfo>& routes, const json::value& doc) {
  std::vector<std::string> out;
  if (!doc.is_object() || !doc.as_object().contains("paths")) return {"the document has no paths"};
  const auto& d = doc.as_object();
  const auto& paths = d.at("paths").as_object();
  std::set<std::pair<std::string, std::string>> routed;
  for (const auto& r : routes) {
    std::string method = lower(http::method_name(r.method));
    routed.insert({r.pattern, method});
    auto* item = paths.if_contains(r.pattern);
    auto* op = item && item->is_object() ? item->as_object().if_contains(method) : nullptr;
    if (!op || !op->is_object()) {
      out.push_back(fmt::format("{} {}: routed but not in the document", http::method_name(r.method), r.pattern));
      continue;
    }
    check_operation(r, op->as_object(), d, out);
  }
  static const std::set<std::string> kMethods{"get", "put", "post", "delete", "options", "head", "patch", "trace"};
  for (const auto& [path, item] : paths)
    for (const auto& [method, op] : item.as_object())
      if (kMethods.count(std::string(method)) && !routed.count({std::string(path), std::string(method)}))
        out.push_back(fmt::format("{} {}: in the document but not routed", method, std::string_view(path)));
  return out;
}

}  // namespace creatord::api
