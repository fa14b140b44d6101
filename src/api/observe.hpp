// What the service says about itself: the OpenAPI document and Swagger UI (/openapi.json,
// /docs), and Prometheus metrics (/metrics).
#pragma once
#include <string>
#include <vector>

#include <boost/json/value.hpp>

#include "api/routes.hpp"
#include "metrics/http_metrics.hpp"
#include "metrics/job_metrics.hpp"

namespace creatord {
struct DeliveryCounters;  // mail/delivery.hpp
}

namespace creatord::api {

// /openapi.json, /docs and /docs/{file}, from the files compiled into the binary.
void add_docs_routes(http::Router& router);
// The dashboard (web/ui, compiled in): GET /ui (its page), /ui/{file} (content-hashed, cached
// for good), and / redirecting to /ui/. Every answer carries a strict Content-Security-Policy.
void add_ui_routes(http::Router& router);

struct MetricsSources {
  const metrics::HttpMetrics* http = nullptr;
  const metrics::JobMetrics* jobs = nullptr;
  std::string version;
  std::string commit;
  std::string store;  // sqlite or postgresql
  const DeliveryCounters* mail = nullptr;
};

// GET /metrics. token_required: with tokens configured and not --metrics-public.
void add_metrics_route(http::Router& router, Context& ctx, const MetricsSources& sources, bool token_required);

// The compiled-in OpenAPI document, parsed.
boost::json::value openapi_document();

// Where the router and the document disagree, one line each; empty when they agree. Checked: the
// same (method, path) pairs; each operation's query parameters are the route's; an operation
// marked `x-token-required` is exactly a route that needs a token even to read; each operation's
// `x-scope` is the route's scope, and its `security` is empty exactly when that is "public";
// `x-owner-may` marks exactly the routes where a signed-in user may act on their own creator.
std::vector<std::string> openapi_mismatches(const std::vector<http::Router::RouteInfo>& routes,
                                            const boost::json::value& doc);

}  // namespace creatord::api
