// The API's resources, one file each. Handlers only speak HTTP: they parse, call the domain and
// the store, and pick a status.
#pragma once
#include <cstddef>

#include "core/blocking_pool.hpp"
#include "domain/paging.hpp"
#include "http/router.hpp"
#include "store/blob_store.hpp"
#include "store/store.hpp"

namespace creatord::api {

struct Context {
  Store& store;
  BlobStore& blobs;
  BlockingPool& files;  // blocking file work (blob reads and writes, hashing)
  PagingLimits paging;
  size_t max_upload_bytes = 25u << 20;
  size_t list_cache_entries = 256;  // per I/O thread; 0 disables the creators list cache
};

void add_creator_routes(http::Router& router, Context& ctx);
void add_image_routes(http::Router& router, Context& ctx);
void add_health_routes(http::Router& router, Context& ctx);

// Shared by list endpoints: parses limit, cursor and q from the query string.
Result<PageQuery> page_query(const http::Request& req, const PagingLimits& limits);
// {"items": [...], "has_more": bool, "next_cursor": "..."|null}
template <class T>
boost::json::object page_json(const Page<T>& page);

}  // namespace creatord::api
