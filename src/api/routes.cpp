#include "api/routes.hpp"

#include "api/observe.hpp"

namespace creatord::api {

void add_api_routes(http::Router& router, Context& ctx) {
  add_health_routes(router, ctx);
  add_creator_routes(router, ctx);
  add_image_routes(router, ctx);
  add_job_routes(router, ctx);
  add_email_routes(router, ctx);
  add_queue_routes(router, ctx);
  add_docs_routes(router);
}

}  // namespace creatord::api
