#include <unordered_map>

#include <boost/json.hpp>

#include "api/errors.hpp"
#include "api/routes.hpp"

namespace creatord::api {

namespace asio = boost::asio;
using http::Request;
using http::Response;

Result<PageQuery> page_query(const Request& req, const PagingLimits& limits) {
  return parse_page_query(req.query_param("limit"), req.query_param("cursor"), req.query_param("q"), limits);
}



namespace {

// Serialized list answers, per I/O thread (no locks), keyed by the raw query string and valid
// while the store's version is unchanged. A write bumps the version before it is acknowledged,
// so a client always reads its own writes.
struct ListCache {
  struct Entry {
    uint64_t version;
    std::string body;
  };
  std::unordered_map<std::string, Entry> entries;
};
thread_local ListCache t_list_cache;

asio::awaitable<Response> list_creators(Context& ctx, Request& req) {
  std::optional<uint64_t> version;
  if (ctx.list_cache_entries > 0) version = ctx.store.creators_version();
  if (version) {
    auto it = t_list_cache.entries.find(std::string(req.query));
    if (it != t_list_cache.entries.end() && it->second.version == *version) {
      Response hit;
      hit.body = it->second.body;
      co_return hit;
    }
  }
  auto q = page_query(req, ctx.paging);
  if (!q) co_return error_response(q.error());
  auto page = co_await ctx.store.list_creators(std::move(q.value()));
  if (!page) co_return error_response(page.error());
  auto resp = Response::json(200, page_json(page.value()));
  if (version) {
    auto& entries = t_list_cache.entries;
    if (entries.size() >= ctx.list_cache_entries) entries.clear();
    entries[std::string(req.query)] = ListCache::Entry{*version, resp.body};
  }
  co_return resp;
}

asio::awaitable<Response> create_creator(Context& ctx, Request& req) {
  auto body = parse_json_body(req);
  if (!body) co_return error_response(body.error());
  auto fields = parse_creator_fields(body.value(), FieldsMode::create);
  if (!fields) co_return error_response(fields.error());
  auto created = co_await ctx.store.create_creator(std::move(fields.value()));
  if (!created) co_return error_response(created.error());
  auto resp = Response::json(201, to_json(created.value()));
  resp.set_header("Location", fmt::format("/api/creators/{}", created->id));
  co_return resp;
}

asio::awaitable<Response> get_creator(Context& ctx, Request& req) {
  auto id = path_id(req, 0, "creator_id");
  if (!id) co_return error_response(id.error());
  auto c = co_await ctx.store.get_creator(id.value());
  if (!c) co_return error_response(c.error());
  co_return Response::json(200, to_json(c.value()));
}

asio::awaitable<Response> update_creator(Context& ctx, Request& req) {
  auto id = path_id(req, 0, "creator_id");
  if (!id) co_return error_response(id.error());
  auto body = parse_json_body(req);
  if (!body) co_return error_response(body.error());
  auto fields = parse_creator_fields(body.value(), FieldsMode::patch);
  if (!fields) co_return error_response(fields.error());
  auto c = co_await ctx.store.update_creator(id.value(), std::move(fields.value()));
  if (!c) co_return error_response(c.error());
  co_return Response::json(200, to_json(c.value()));
}

asio::awaitable<Response> delete_creator(Context& ctx, Request& req) {
  auto id = path_id(req, 0, "creator_id");
  if (!id) co_return error_response(id.error());
  auto r = co_await ctx.store.delete_creator(id.value());
  if (!r) co_return error_response(r.error());
  co_return Response::empty(204);
}

}  // namespace

void add_creator_routes(http::Router& router, Context& ctx) {
  using M = http::Method;
  router.add(M::get, "/api/creators", [&ctx](Request& r) { return list_creators(ctx, r); },
             {.query = {"limit", "cursor", "q"}});
  router.add(M::post, "/api/creators", [&ctx](Request& r) { return create_creator(ctx, r); });
  router.add(M::get, "/api/creators/{id}", [&ctx](Request& r) { return get_creator(ctx, r); });
  router.add(M::patch, "/api/creators/{id}", [&ctx](Request& r) { return update_creator(ctx, r); });
  router.add(M::del, "/api/creators/{id}", [&ctx](Request& r) { return delete_creator(ctx, r); });
}

}  // namespace creatord::api
