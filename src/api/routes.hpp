// The API's resources, one file each. Handlers only speak HTTP: they parse, call the domain and
// the store, and pick a status.
#pragma once
#include <cstddef>

#include <boost/json.hpp>

#include "api/auth.hpp"
#include "api/rate_limit.hpp"
#include "core/blocking_pool.hpp"
#include "core/response_cache.hpp"
#include "jobs/builtin.hpp"
#include "mail/email.hpp"
#include "domain/image_decode.hpp"
#include "domain/paging.hpp"
#include "http/router.hpp"
#include "store/blob_store.hpp"
#include "store/store.hpp"

namespace creatord {
class EventHub;
class PipelineRegistry;
class Outbox;
namespace queue {
class JobQueue;
class Scheduler;
}
}  // namespace creatord

namespace creatord::api {

// What one caller may ask of the job engine. 0 in a count: no limit.
struct JobLimits {
  int max_timeout_seconds = 3600;  // a job's timeout_seconds
  int max_attempts = 10;           // a job's max_attempts
  int64_t max_unfinished_per_token = 100;    // per principal: queued, scheduled, running and retrying jobs
  int64_t max_unfinished_per_creator = 20;
  int64_t max_unfinished_per_user = 10;      // a signed-in user's own cap, within the per-principal one
  GenerateLimits generate;  // the work one built-in generate job may ask for
};

struct Context {
  Store& store;
  BlobStore& blobs;
  BlockingPool& files;  // blocking file work (blob reads and writes, hashing)
  PagingLimits paging;
  size_t max_upload_bytes = 25u << 20;
  ResponseCache* response_cache = nullptr;  // list answers (bounded in bytes); null: none cached
  DecodeLimits image_limits;                 // what an uploaded image may cost to decode
  // Jobs (null in tests that do not need them).
  queue::JobQueue* jobs = nullptr;
  EventHub* hub = nullptr;
  std::vector<std::pair<std::string, int>> queues;  // configured here: name -> concurrency
  const queue::Scheduler* scheduler = nullptr;      // null: no schedules
  int64_t idempotency_ttl_ms = 24LL * 3600 * 1000;  // how long an Idempotency-Key names its job
  const PipelineRegistry* pipelines = nullptr;
  int max_wait_seconds = 60;              // ?wait= upper bound
  int sse_heartbeat_ms = 15000;           // comment line sent to idle SSE clients
  JobLimits job_limits;
  RateLimiter* enqueue_rate = nullptr;  // per principal; null: no limit
  RateLimiter* user_enqueue_rate = nullptr;  // per signed-in user, besides; null: no own limit
  // Email (null in tests that do not need it).
  Outbox* outbox = nullptr;
  RateLimiter* mail_rate = nullptr;
  MailLimits mail_limits;
};

void add_creator_routes(http::Router& router, Context& ctx);
void add_image_routes(http::Router& router, Context& ctx);
void add_health_routes(http::Router& router, Context& ctx);
void add_job_routes(http::Router& router, Context& ctx);
void add_email_routes(http::Router& router, Context& ctx);
void add_queue_routes(http::Router& router, Context& ctx);
// Every route above and the documentation's (/openapi.json, /docs): the routes the OpenAPI
// document describes, /metrics aside (add_metrics_route, when it is on the main listener).
void add_api_routes(http::Router& router, Context& ctx);

// Ownership: a signed-in user (a JWT principal) owns the creator whose `owner` is their subject.
bool owns(const auth::Principal& who, const Creator& c);
// The creator, when the caller may act on it with `scope`: a credential with the scope may act on
// any creator, a signed-in user on their own. 404 when there is none; 403 naming the scope when
// it is another's.
boost::asio::awaitable<Result<Creator>> creator_for(Context& ctx, const http::Request& req, int64_t creator_id,
                                                    auth::Scope scope);
// Whether the caller may read the private fields of what belongs to this creator (0: none).
boost::asio::awaitable<bool> may_read_private_of(Context& ctx, const http::Request& req, int64_t creator_id);

// Shared by list endpoints: parses limit, cursor and q from the query string.
Result<PageQuery> page_query(const http::Request& req, const PagingLimits& limits);
// {"items": [...], "has_more": bool, "next_cursor": "..."|null}. to_json(T) is found by ADL.
template <class T>
boost::json::object page_json(const Page<T>& page) {
  boost::json::object o;
  boost::json::array items;
  items.reserve(page.items.size());
  for (const auto& it : page.items) items.emplace_back(to_json(it));
  o["items"] = std::move(items);
  o["has_more"] = page.has_more;
  if (page.has_more && !page.items.empty()) o["next_cursor"] = encode_cursor(page.items.back().id);
  else o["next_cursor"] = nullptr;
  return o;
}

}  // namespace creatord::api
