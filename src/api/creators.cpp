#include <boost/json.hpp>

#include "api/errors.hpp"
#include "api/routes.hpp"
#include "core/json_text.hpp"

namespace creatord::api {

namespace asio = boost::asio;
using http::Request;
using http::Response;

Result<PageQuery> page_query(const Request& req, const PagingLimits& limits) {
  return parse_page_query(req.query_param("limit"), req.query_param("cursor"), req.query_param("q"), limits);
}



namespace {

// The cache key of a list query: from the parsed values, so every spelling of one query (order
// of parameters, percent-escapes, `limit=05`, another cursor text for the same id) is one entry;
// public answers (no email addresses) apart from full ones.
std::string list_key(const PageQuery& q, bool full) {
  return fmt::format("creators?limit={}&before={}&q={}&full={}", q.limit, q.before_id.value_or(0), q.q, full);
}

// Who of a caller's creators shows the private fields: the email address and the owner are
// private (to callers with the read scope, and to the owner). One rule for one creator and lists.
Visibility visibility_of(const auth::Principal& who) {
  return Visibility{!who.public_only, who.kind == auth::Principal::Kind::user ? who.id : ""};
}

boost::json::object creator_json(const Creator& c, const auth::Principal& who) {
  auto o = to_json(c);
  std::optional<std::string_view> owner;
  if (c.owner) owner = *c.owner;
  if (!visibility_of(who).sees_private(owner)) {
    o.erase("email");
    o.erase("owner");
  }
  return o;
}

// The answer is written as text straight from the store's rows (the list is the hottest uncached
// answer; building JSON values first cost more than reading SQLite), each creator as
// creator_json shows it to the caller. Serialized list answers, valid while the store's version
// is unchanged. A write bumps the
// version before it is acknowledged, so a client always reads its own writes.
asio::awaitable<Response> list_creators(Context& ctx, Request& req) {
  auto q = page_query(req, ctx.paging);
  if (!q) co_return error_response(q.error());
  ResponseCache* cache = ctx.response_cache && ctx.response_cache->enabled() ? ctx.response_cache : nullptr;
  if (req.principal.kind == auth::Principal::Kind::user) cache = nullptr;  // a user's own creator shows more
  std::optional<uint64_t> version;
  std::string key;
  if (cache) {
    version = ctx.store.creators_version();
    key = list_key(q.value(), !req.principal.public_only);
    if (auto body = cache->get(key, *version)) {
      Response hit;
      hit.body = *body;
      co_return hit;
    }
  }
  auto body = co_await ctx.store.list_creators_json(std::move(q.value()), visibility_of(req.principal));
  if (!body) co_return error_response(body.error());
  Response resp;
  resp.body = std::move(body.value());
  if (cache) cache->put(std::move(key), *version, resp.body);
  co_return resp;
}

asio::awaitable<Response> create_creator(Context& ctx, Request& req) {
  auto body = parse_json_body(req);
  if (!body) co_return error_response(body.error());
  auto fields = parse_creator_fields(body.value(), FieldsMode::create);
  if (!fields) co_return error_response(fields.error());
  // A signed-in user without the write scope creates their own creator (one per user).
  if (!req.principal.has(auth::kWrite)) fields->owner = req.principal.id;
  auto created = co_await ctx.store.create_creator(std::move(fields.value()));
  if (!created) co_return error_response(created.error());
  auto resp = Response::json(201, creator_json(created.value(), req.principal));
  resp.set_header("Location", fmt::format("/api/creators/{}", created->id));
  co_return resp;
}

asio::awaitable<Response> get_creator(Context& ctx, Request& req) {
  auto id = path_id(req, 0, "creator_id");
  if (!id) co_return error_response(id.error());
  auto c = co_await ctx.store.get_creator(id.value());
  if (!c) co_return error_response(c.error());
  co_return Response::json(200, creator_json(c.value(), req.principal));
}

asio::awaitable<Response> update_creator(Context& ctx, Request& req) {
  auto id = path_id(req, 0, "creator_id");
  if (!id) co_return error_response(id.error());
  auto body = parse_json_body(req);
  if (!body) co_return error_response(body.error());
  auto fields = parse_creator_fields(body.value(), FieldsMode::patch);
  if (!fields) co_return error_response(fields.error());
  if (auto allowed = co_await creator_for(ctx, req, id.value(), auth::kWrite); !allowed)
    co_return error_response(allowed.error());
  auto c = co_await ctx.store.update_creator(id.value(), std::move(fields.value()));
  if (!c) co_return error_response(c.error());
  co_return Response::json(200, creator_json(c.value(), req.principal));
}

asio::awaitable<Response> delete_creator(Context& ctx, Request& req) {
  auto id = path_id(req, 0, "creator_id");
  if (!id) co_return error_response(id.error());
  auto r = co_await ctx.store.delete_creator(id.value());
  if (!r) co_return error_response(r.error());
  co_return Response::empty(204);
}

}  // namespace

bool owns(const auth::Principal& who, const Creator& c) {
  return who.kind == auth::Principal::Kind::user && c.owner && *c.owner == who.id;
}

asio::awaitable<Result<Creator>> creator_for(Context& ctx, const Request& req, int64_t creator_id, auth::Scope scope) {
  auto c = co_await ctx.store.get_creator(creator_id);
  if (!c) co_return c;
  if (req.principal.has(scope) || owns(req.principal, c.value())) co_return c;
  co_return Error::make(ErrorCode::forbidden,
                        fmt::format("creator {} is not yours: this needs a credential with the '{}' scope", creator_id,
                                    auth::scope_name(scope)));
}

asio::awaitable<bool> may_read_private_of(Context& ctx, const Request& req, int64_t creator_id) {
  if (!req.principal.public_only) co_return true;
  if (req.principal.kind != auth::Principal::Kind::user || creator_id <= 0) co_return false;
  auto c = co_await ctx.store.get_creator(creator_id);
  co_return c && owns(req.principal, c.value());
}

void add_creator_routes(http::Router& router, Context& ctx) {
  using M = http::Method;
  router.add(M::get, "/api/creators", [&ctx](Request& r) { return list_creators(ctx, r); },
             {.query = {"limit", "cursor", "q"}});
  router.add(M::post, "/api/creators", [&ctx](Request& r) { return create_creator(ctx, r); }, {.owner_may = true});
  router.add(M::get, "/api/creators/{id}", [&ctx](Request& r) { return get_creator(ctx, r); });
  router.add(M::patch, "/api/creators/{id}", [&ctx](Request& r) { return update_creator(ctx, r); },
             {.owner_may = true});
  router.add(M::del, "/api/creators/{id}", [&ctx](Request& r) { return delete_creator(ctx, r); });
}

}  // namespace creatord::api
