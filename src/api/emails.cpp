#include <boost/json.hpp>

#include "api/errors.hpp"
#include "api/routes.hpp"
#include "core/ids.hpp"
#include "core/sha256.hpp"
#include "mail/outbox.hpp"

namespace creatord::api {

namespace asio = boost::asio;
using http::Request;
using http::Response;

namespace {

Response email_response(int status, const Email& e) {
  auto r = Response::json(status, to_json(e));
  r.set_header("Location", fmt::format("/api/emails/{}", e.id));
  return r;
}

asio::awaitable<Response> send_email(Context& ctx, Request& req) {
  std::string who = req.principal.name();
  auto key = idempotency_key(req);
  if (!key) co_return error_response(key.error());
  std::optional<std::string> scoped;
  if (*key) scoped = scoped_key(req, "send-email", **key);
  auto body = parse_json_body(req);
  if (!body) co_return error_response(body.error());
  std::string hash = sha256_hex(boost::json::serialize(body.value()));
  if (scoped) {  // a replay answers before the rate limit: it sends nothing
    auto earlier = co_await ctx.outbox->replay(*scoped);
    if (!earlier) co_return error_response(earlier.error());
    if (earlier.value() && earlier.value()->request_hash == hash) {
      auto r = email_response(202, *earlier.value());
      r.set_header("Idempotent-Replayed", "true");
      co_return r;
    }
  }
  if (ctx.mail_rate) {
    if (auto wait = ctx.mail_rate->take(who)) {
      auto r = error_response(ErrorCode::too_many_requests, fmt::format("too many emails; retry in {} s", *wait));
      r.set_header("Retry-After", std::to_string(*wait));
      co_return r;
    }
  }
  auto email = parse_email_request(body.value(), ctx.mail_limits);
  if (!email) co_return error_response(email.error());
  email->idempotency_key = scoped;
  email->request_hash = hash;
  email->from = ctx.outbox->options().from;
  email->message_id = new_message_id(email->from);
  auto accepted = co_await ctx.outbox->accept(std::move(email.value()));
  if (!accepted) co_return error_response(accepted.error());
  auto r = email_response(202, accepted->email);
  if (!accepted->created) r.set_header("Idempotent-Replayed", "true");
  co_return r;
}

asio::awaitable<Response> get_email(Context& ctx, Request& req) {
  auto id = path_id(req, 0, "email_id");
  if (!id) co_return error_response(id.error());
  auto e = co_await ctx.outbox->store().get_email(id.value());
  if (!e) co_return error_response(e.error());
  co_return Response::json(200, to_json(e.value()));
}

asio::awaitable<Response> list_emails(Context& ctx, Request& req) {
  auto q = page_query(req, ctx.paging);
  if (!q) co_return error_response(q.error());
  auto state = req.query_param("state");
  if (state && *state != "queued" && *state != "sending" && *state != "sent" && *state != "failed")
    co_return error_response(ErrorCode::bad_request, "state must be queued, sending, sent or failed", "state");
  auto page = co_await ctx.outbox->store().list_emails(std::move(state), std::move(q.value()));
  if (!page) co_return error_response(page.error());
  co_return Response::json(200, page_json(page.value()));
}

}  // namespace

void add_email_routes(http::Router& router, Context& ctx) {
  using M = http::Method;
  // A token is needed even to read; refused before the body is read.
  router.add(M::post, "/api/send-email", [&ctx](Request& r) { return send_email(ctx, r); },
             {.token_required = true, .scope = "email"});
  router.add(M::get, "/api/emails", [&ctx](Request& r) { return list_emails(ctx, r); },
             {.token_required = true, .scope = "email", .query = {"state", "limit", "cursor"}});
  router.add(M::get, "/api/emails/{id}", [&ctx](Request& r) { return get_email(ctx, r); },
             {.token_required = true, .scope = "email"});
}

}  // namespace creatord::api
