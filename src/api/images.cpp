#include <boost/json.hpp>

#include "api/errors.hpp"
#include "api/routes.hpp"
#include "core/offload.hpp"
#include "core/sha256.hpp"
#include "domain/image_decode.hpp"

namespace creatord::api {

namespace asio = boost::asio;
using http::Request;
using http::Response;

namespace {

std::string etag_for(const Image& img) { return "\"" + img.sha256 + "\""; }

constexpr size_t kSourceUrlMax = 2048;

// If-None-Match lists entity tags (weak ones match too), or is "*" alone, which matches any
// current representation (RFC 9110 13.1.2). A "*" inside a list or a tag matches nothing.
bool etag_matches(std::string_view header, const std::string& etag) {
  while (!header.empty() && (header.front() == ' ' || header.front() == '\t')) header.remove_prefix(1);
  while (!header.empty() && (header.back() == ' ' || header.back() == '\t')) header.remove_suffix(1);
  if (header.empty()) return false;
  if (header == "*") return true;
  size_t pos = 0;
  while (pos < header.size()) {
    size_t comma = header.find(',', pos);
    std::string_view tag = header.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    while (!tag.empty() && tag.front() == ' ') tag.remove_prefix(1);
    while (!tag.empty() && tag.back() == ' ') tag.remove_suffix(1);
    if (tag.substr(0, 2) == "W/") tag.remove_prefix(2);
    if (tag == etag) return true;
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return false;
}

asio::awaitable<Response> list_images(Context& ctx, Request& req) {
  auto id = path_id(req, 0, "creator_id");
  if (!id) co_return error_response(id.error());
  auto q = page_query(req, ctx.paging);
  if (!q) co_return error_response(q.error());
  auto page = co_await ctx.store.list_images(id.value(), std::move(q.value()));
  if (!page) co_return error_response(page.error());
  co_return Response::json(200, page_json(page.value()));
}

// ?source_url=: where an imported image was downloaded from, kept with it (http or https).
Result<std::optional<std::string>> source_url_param(const Request& req) {
  auto v = req.query_param("source_url");
  if (!v) return std::optional<std::string>{};
  std::string url(*v);
  bool web = url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0;
  bool clean = std::none_of(url.begin(), url.end(), [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; });
  if (!web || !clean || url.size() > kSourceUrlMax)
    return Error::make(ErrorCode::bad_request,
                       fmt::format("source_url must be an http or https URL of at most {} characters", kSourceUrlMax),
                       "source_url");
  return std::optional<std::string>{std::move(url)};
}

asio::awaitable<Response> upload_image(Context& ctx, Request& req) {
  auto id = path_id(req, 0, "creator_id");
  if (!id) co_return error_response(id.error());
  auto source_url = source_url_param(req);
  if (!source_url) co_return error_response(source_url.error());
  if (req.body.empty())
    co_return error_response(ErrorCode::bad_request, "the request body is empty; send the image bytes");
  if (auto allowed = co_await creator_for(ctx, req, id.value(), auth::kWrite); !allowed)
    co_return error_response(allowed.error());
  // Every pixel is decoded (within the limits) before anything is accepted, on the file pool:
  // decoding is CPU work that must not hold an I/O thread.
  auto body = std::make_shared<std::string>(std::move(req.body));
  auto limits = ctx.image_limits;
  auto decode = [body, limits](size_t) { return decode_image(*body, limits); };
  auto decoded = co_await offload<DecodedImage>(ctx.files, decode);
  if (!decoded) co_return error_response(decoded.error());
  body->resize(decoded->length);  // whatever follows the image's end is not stored
  const ImageInfo* info = &decoded->info;

  // Hashing and writing megabytes is blocking work: the file pool does it.
  auto hash_and_store = [&ctx, body](size_t) -> Result<std::string> {
    std::string h = sha256_hex(*body);
    if (auto s = ctx.blobs.put(h, *body); !s) return s.take_error();
    return h;
  };
  auto sha = co_await offload<std::string>(ctx.files, hash_and_store);
  if (!sha) co_return error_response(sha.error());

  NewImage n;
  n.creator_id = id.value();
  n.sha256 = std::move(sha.value());
  n.content_type = info->content_type;
  n.width = info->width;
  n.height = info->height;
  n.size_bytes = static_cast<int64_t>(body->size());
  n.source_url = std::move(source_url.value());
  auto img = co_await ctx.store.add_image(std::move(n));
  if (!img) co_return error_response(img.error());
  auto resp = Response::json(201, to_json(img.value()));
  resp.set_header("Location", fmt::format("/api/images/{}", img->id));
  co_return resp;
}

asio::awaitable<Response> get_image(Context& ctx, Request& req) {
  auto id = path_id(req, 0, "image_id");
  if (!id) co_return error_response(id.error());
  auto img = co_await ctx.store.get_image(id.value());
  if (!img) co_return error_response(img.error());
  co_return Response::json(200, to_json(img.value()));
}

asio::awaitable<Response> get_image_content(Context& ctx, Request& req) {
  auto id = path_id(req, 0, "image_id");
  if (!id) co_return error_response(id.error());
  auto img = co_await ctx.store.get_image(id.value());
  if (!img) co_return error_response(img.error());
  std::string etag = etag_for(img.value());
  // An image id always names the same bytes, so clients may cache them for good.
  constexpr const char* kCache = "public, max-age=31536000, immutable";
  if (etag_matches(req.header("If-None-Match"), etag)) {
    auto resp = Response::empty(304);
    resp.set_header("ETag", etag);
    resp.set_header("Cache-Control", kCache);
    co_return resp;
  }
  // The bytes are named by their SHA-256 and never change: kept in the response cache (within its
  // budget), so an image asked for often is read from the store once (on PostgreSQL a query and a
  // hex decode each time: 7x slower than SQLite's file read, bench/mix_bench.sh).
  ResponseCache* cache = ctx.response_cache && ctx.response_cache->enabled() ? ctx.response_cache : nullptr;
  std::string key = "image-bytes:" + img->sha256;
  Response resp;
  resp.status = 200;
  resp.content_type = img->content_type;
  std::shared_ptr<const std::string> kept;
  if (cache) kept = cache->get(key, 0);
  if (kept) {
    resp.body = *kept;
  } else {
    std::string sha = img->sha256;
    auto read_blob = [&ctx, sha](size_t) { return ctx.blobs.get(sha); };
    auto bytes = co_await offload<std::string>(ctx.files, read_blob);
    if (!bytes) co_return error_response(bytes.error());
    resp.body = std::move(bytes.value());
    if (cache) cache->put(std::move(key), 0, resp.body);
  }
  resp.set_header("ETag", etag);
  resp.set_header("Cache-Control", kCache);
  // The bytes are only ever an image: no sniffing them into a page, and a name to save them as.
  resp.set_header("X-Content-Type-Options", "nosniff");
  std::string_view ext = img->content_type == "image/jpeg" ? "jpg" : img->content_type == "image/webp" ? "webp" : "png";
  resp.set_header("Content-Disposition", fmt::format("inline; filename=\"image-{}.{}\"", img->id, ext));
  co_return resp;
}

asio::awaitable<Response> delete_image(Context& ctx, Request& req) {
  auto id = path_id(req, 0, "image_id");
  if (!id) co_return error_response(id.error());
  // The bytes stay until the blob sweeper finds no image naming them.
  auto r = co_await ctx.store.delete_image(id.value());
  if (!r) co_return error_response(r.error());
  co_return Response::empty(204);
}

}  // namespace

void add_image_routes(http::Router& router, Context& ctx) {
  using M = http::Method;
  router.add(M::get, "/api/creators/{id}/images", [&ctx](Request& r) { return list_images(ctx, r); },
             {.query = {"limit", "cursor"}});
  router.add(M::post, "/api/creators/{id}/images", [&ctx](Request& r) { return upload_image(ctx, r); },
             {.body_limit = ctx.max_upload_bytes, .owner_may = true, .query = {"source_url"}});
  router.add(M::get, "/api/images/{id}", [&ctx](Request& r) { return get_image(ctx, r); });
  router.add(M::get, "/api/images/{id}/content", [&ctx](Request& r) { return get_image_content(ctx, r); });
  router.add(M::del, "/api/images/{id}", [&ctx](Request& r) { return delete_image(ctx, r); });
}

}  // namespace creatord::api
