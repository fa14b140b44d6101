#include <boost/asio/this_coro.hpp>
#include <boost/json.hpp>

#include "api/errors.hpp"
#include "api/routes.hpp"
#include "core/clock.hpp"
#include "core/ids.hpp"
#include "core/json_text.hpp"
#include "core/sha256.hpp"
#include "jobs/builtin.hpp"
#include "jobs/event_hub.hpp"
#include "queue/job_queue.hpp"

namespace creatord::api {

namespace asio = boost::asio;
namespace json = boost::json;
using http::Request;
using http::Response;

namespace {

constexpr int64_t kMaxDelayMs = 366LL * 24 * 3600 * 1000;

Response job_response(int status, const Job& job) {
  auto r = Response::json(status, to_json(job));
  r.set_header("Location", fmt::format("/api/jobs/{}", job.id));
  return r;
}

Result<int> int_field(const json::object& o, const char* key, int lo, int hi, int fallback) {
  auto it = o.find(key);
  if (it == o.end()) return fallback;
  if (!it->value().is_int64() || it->value().as_int64() < lo || it->value().as_int64() > hi)
    return Error::make(ErrorCode::validation, fmt::format("{} must be an integer from {} to {}", key, lo, hi), key);
  return static_cast<int>(it->value().as_int64());
}

// Waits without holding a thread until the job ends, the time is up, the client goes away or
// the server shuts down; returns the latest job.
asio::awaitable<Result<Job>> wait_for_job(Context& ctx, int64_t id, std::chrono::milliseconds budget,
                                          http::ClientLink* client) {
  auto ex = co_await asio::this_coro::executor;
  auto sub = ctx.hub->subscribe(EventHub::job_topic(id), ex);
  if (client) client->on_stop_waiting([sub] { sub->wake(); });
  auto deadline = std::chrono::steady_clock::now() + budget;
  for (;;) {
    auto job = co_await ctx.jobs->get_job(id);
    if (!job || is_terminal(job->state)) co_return job;
    if (client && client->stop_waiting()) co_return job;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) co_return job;
    co_await sub->wait(left);
  }
}

// The generate request's body, validated: {"pipeline", "params", "max_workers", "priority",
// "max_attempts", "timeout_seconds", "run_at" | "delay_seconds"}.
struct GenerateRequest {
  const Pipeline* pipeline = nullptr;
  json::object params;
  int max_workers = 0, priority = 0, max_attempts = 3, timeout_s = 1800;
  int64_t run_at_ms = 0;  // 0: now
  std::string canonical;  // the body as parsed, for the idempotency check
};

Result<json::object> body_object(Request& req) {
  if (req.body.empty()) return json::object{};
  auto parsed = parse_json_body(req);
  if (!parsed) return parsed.take_error();
  if (!parsed->is_object()) return Error::make(ErrorCode::validation, "the body must be a JSON object");
  return std::move(parsed->as_object());
}

// When the job may start: `run_at` (RFC 3339) or `delay_seconds` (at most a year), not both.
Result<int64_t> start_time(const json::object& body, int64_t now) {
  auto at = body.find("run_at");
  auto delay = body.find("delay_seconds");
  if (at != body.end() && delay != body.end())
    return Error::make(ErrorCode::validation, "give run_at or delay_seconds, not both", "run_at");
  if (at != body.end()) {
    auto ms = at->value().is_string() ? parse_rfc3339(at->value().as_string()) : std::nullopt;
    if (!ms) return Error::make(ErrorCode::validation, "run_at must be an RFC 3339 time, e.g. 2026-12-01T09:00:00Z", "run_at");
    if (*ms > now + kMaxDelayMs) return Error::make(ErrorCode::validation, "run_at must be within a year", "run_at");
    return *ms;
  }
  auto d = int_field(body, "delay_seconds", 0, static_cast<int>(kMaxDelayMs / 1000), 0);
  if (!d) return d.take_error();
  return d.value() > 0 ? now + int64_t{d.value()} * 1000 : 0;
}

Result<GenerateRequest> parse_generate(Context& ctx, Request& req) {
  auto body = body_object(req);
  if (!body) return body.take_error();
  static constexpr std::string_view kKnown[] = {"pipeline",     "params",          "max_workers", "priority",
                                                "max_attempts", "timeout_seconds", "run_at",      "delay_seconds"};
  for (const auto& kv : body.value())
    if (std::find(std::begin(kKnown), std::end(kKnown), kv.key()) == std::end(kKnown))
      return Error::make(ErrorCode::validation, "unknown field " + std::string(kv.key()), std::string(kv.key()));
  GenerateRequest g;
  std::string name = "generate";
  if (auto it = body->find("pipeline"); it != body->end()) {
    if (!it->value().is_string()) return Error::make(ErrorCode::validation, "pipeline must be a string", "pipeline");
    name = it->value().as_string();
  }
  g.pipeline = ctx.pipelines->find(name);
  if (!g.pipeline) return Error::make(ErrorCode::validation, "no pipeline named " + name, "pipeline");
  json::value raw = body->contains("params") ? body->at("params") : json::value(nullptr);
  Result<json::object> params = json::object{};
  if (g.pipeline->builtin) params = parse_generate_params(raw);
  else params = resolve_params(*g.pipeline, raw);  // declared types and defaults; what templates need
  if (!params) return params.take_error();
  if (g.pipeline->name == "generate")
    if (auto fits = check_generate_work(params.value(), ctx.job_limits.generate); !fits) return fits.take_error();
  g.params = std::move(params.value());
  const JobLimits& limits = ctx.job_limits;
  auto max_workers = int_field(body.value(), "max_workers", 1, 16, g.pipeline->max_workers);
  auto priority = int_field(body.value(), "priority", -100, 100, 0);
  auto max_attempts = int_field(body.value(), "max_attempts", 1, limits.max_attempts, std::min(3, limits.max_attempts));
  auto timeout = int_field(body.value(), "timeout_seconds", 1, limits.max_timeout_seconds,
                           std::min(1800, limits.max_timeout_seconds));
  for (auto* r : {&max_workers, &priority, &max_attempts, &timeout})
    if (!*r) return r->take_error();
  auto run_at = start_time(body.value(), ctx.jobs->clock().now_ms());
  if (!run_at) return run_at.take_error();
  g.max_workers = max_workers.value();
  g.priority = priority.value();
  g.max_attempts = max_attempts.value();
  g.timeout_s = timeout.value();
  g.run_at_ms = run_at.value();
  g.canonical = json::serialize(body.value());
  return g;
}

Result<int> wait_seconds(Context& ctx, const Request& req) {
  auto w = req.query_param("wait");
  if (!w) return 0;
  auto v = parse_id(*w);
  if (*w == "0") v = 0;
  if (!v || *v > ctx.max_wait_seconds)
    return Error::make(ErrorCode::bad_request,
                       fmt::format("wait must be a whole number of seconds from 0 to {}", ctx.max_wait_seconds), "wait");
  return static_cast<int>(*v);
}

// Whether this caller may read a job's private fields: outputs, results, logs and errors.
bool may_read_private(const Request& req) { return !req.principal.public_only; }

// Email jobs carry SMTP replies and addresses: shown only to callers with the email scope.
constexpr std::string_view kPrivateKind = "email";
bool may_read_email_jobs(const Request& req) { return may_read_private(req) && req.principal.has(auth::kEmail); }

Response private_job_refused(const Request& req) {
  if (req.principal.authenticated())
    return error_response(ErrorCode::forbidden, "email jobs need a credential with the 'email' scope");
  auto r = error_response(ErrorCode::unauthorized, "email jobs need Authorization: Bearer <credential>");
  r.set_header("WWW-Authenticate", "Bearer");
  return r;
}

json::object job_json(const Job& job, bool full) { return full ? to_json(job) : to_public_json(job); }

// A 429 that says when to try again.
Response too_many(const Error& e, int retry_after_s) {
  auto r = error_response(e);
  r.set_header("Retry-After", std::to_string(retry_after_s));
  return r;
}

// When a caller at its unfinished-jobs quota may try again: a guess, jobs finish at their pace.
constexpr int kQuotaRetryAfterSeconds = 30;

// The unfinished jobs this caller may have: the per-principal cap, and a signed-in user's own
// within it (0: no limit).
int64_t principal_cap(const JobLimits& limits, bool user) {
  int64_t cap = limits.max_unfinished_per_token;
  if (user && limits.max_unfinished_per_user > 0 && (cap == 0 || limits.max_unfinished_per_user < cap))
    cap = limits.max_unfinished_per_user;
  return cap;
}

NewJob generate_job(const GenerateRequest& g, int64_t creator_id) {
  const Pipeline& p = *g.pipeline;
  NewJob n;
  n.kind = p.name;
  n.queue = p.queue.empty() ? p.name : p.queue;
  n.payload = json::object{{"pipeline", p.name}, {"params", g.params}, {"max_workers", g.max_workers}};
  n.priority = g.priority;
  n.max_attempts = g.max_attempts;
  n.timeout_ms = int64_t{g.timeout_s} * 1000;
  n.run_at_ms = g.run_at_ms;
  n.creator_id = creator_id;
  for (const auto& s : p.steps) n.steps.push_back(s.name);
  return n;
}

asio::awaitable<Response> generate(Context& ctx, Request& req) {
  auto id = path_id(req, 0, "creator_id");
  if (!id) co_return error_response(id.error());
  auto g = parse_generate(ctx, req);
  if (!g) co_return error_response(g.error());
  auto key = idempotency_key(req);
  if (!key) co_return error_response(key.error());
  auto wait_s = wait_seconds(ctx, req);
  if (!wait_s) co_return error_response(wait_s.error());
  if (auto c = co_await creator_for(ctx, req, id.value(), auth::kGenerate); !c) co_return error_response(c.error());

  std::string who = req.principal.name();
  bool user = req.principal.kind == auth::Principal::Kind::user;
  RateLimiter* rates[] = {user ? ctx.user_enqueue_rate : nullptr, ctx.enqueue_rate};
  for (RateLimiter* rate : rates)
    if (rate)
      if (auto wait = rate->take(who))
        co_return too_many(Error{ErrorCode::too_many_requests, fmt::format("too many jobs; retry in {} s", *wait), "rate"}, *wait);

  NewJob n = generate_job(g.value(), id.value());
  n.enqueued_by = who;
  n.max_unfinished_by_principal = principal_cap(ctx.job_limits, user);
  n.max_unfinished_by_creator = ctx.job_limits.max_unfinished_per_creator;
  if (key.value()) {
    // Scoped to this route, this creator and this token: the same key elsewhere is another key.
    n.idempotency_key = key.value();
    n.unique_key = scoped_key(req, fmt::format("generate:creator:{}", id.value()), **key);
    n.unique_ttl_ms = ctx.idempotency_ttl_ms;
    n.request_hash = sha256_hex(g->canonical);
  }
  auto enq = co_await ctx.jobs->enqueue(std::move(n));
  if (!enq && enq.error().code == ErrorCode::too_many_requests) co_return too_many(enq.error(), kQuotaRetryAfterSeconds);
  if (!enq) co_return error_response(enq.error());
  Job job = std::move(enq->job);
  if (wait_s.value() > 0 && !is_terminal(job.state)) {
    auto waited = co_await wait_for_job(ctx, job.id, std::chrono::seconds(wait_s.value()), req.client);
    if (waited) job = std::move(waited.value());
  }
  auto resp = job_response(is_terminal(job.state) ? 200 : 202, job);
  if (!enq->created) resp.set_header("Idempotent-Replayed", "true");
  co_return resp;
}

asio::awaitable<Response> list_jobs(Context& ctx, Request& req) {
  auto q = page_query(req, ctx.paging);
  if (!q) co_return error_response(q.error());
  JobFilter f;
  if (auto s = req.query_param("state")) {
    f.state = parse_job_state(*s);
    if (!f.state)
      co_return error_response(ErrorCode::bad_request, fmt::format("state must be one of {}", kJobStateNames), "state");
  }
  if (auto k = req.query_param("kind")) f.kind = *k;
  if (auto qn = req.query_param("queue")) f.queue = *qn;
  if (auto c = req.query_param("creator_id")) {
    f.creator_id = parse_id(*c);
    if (!f.creator_id) co_return error_response(ErrorCode::bad_request, "creator_id must be a positive integer", "creator_id");
  }
  bool full = may_read_private(req);
  if (!full && f.creator_id) full = co_await may_read_private_of(ctx, req, *f.creator_id);  // a user's own jobs
  if (!may_read_email_jobs(req)) {
    if (f.kind == kPrivateKind) co_return private_job_refused(req);
    f.exclude_kind = std::string(kPrivateKind);
  }
  auto page = co_await ctx.jobs->list_jobs(std::move(f), std::move(q.value()));
  if (!page) co_return error_response(page.error());
  json::object body = page_json(page.value());
  if (!full) {
    json::array items;
    for (const auto& job : page->items) items.emplace_back(to_public_json(job));
    body["items"] = std::move(items);
  }
  co_return Response::json(200, std::move(body));
}

asio::awaitable<Response> get_job(Context& ctx, Request& req) {
  auto id = path_id(req, 0, "job_id");
  if (!id) co_return error_response(id.error());
  auto job = co_await ctx.jobs->get_job(id.value());
  if (!job) co_return error_response(job.error());
  bool full = co_await may_read_private_of(ctx, req, job->creator_id.value_or(0));
  if (job->kind == kPrivateKind && !may_read_email_jobs(req)) co_return private_job_refused(req);
  co_return Response::json(200, job_json(job.value(), full));
}

asio::awaitable<Response> cancel_job(Context& ctx, Request& req) {
  auto id = path_id(req, 0, "job_id");
  if (!id) co_return error_response(id.error());
  auto job = co_await ctx.jobs->cancel(id.value());
  if (!job) co_return error_response(job.error());
  co_return job_response(job->state == JobState::running ? 202 : 200, job.value());
}

asio::awaitable<Response> retry_job(Context& ctx, Request& req) {
  auto id = path_id(req, 0, "job_id");
  if (!id) co_return error_response(id.error());
  auto job = co_await ctx.jobs->retry(id.value());
  if (!job) co_return error_response(job.error());
  co_return job_response(202, job.value());
}

// Server-Sent Events: every recorded event of the job after Last-Event-ID, then new ones as they
// happen, with a heartbeat comment while idle. Ends after the job's final event.
asio::awaitable<void> stream_events(Context& ctx, int64_t job_id, int64_t after, bool full, http::StreamWriter& out) {
  auto ex = co_await asio::this_coro::executor;
  auto sub = ctx.hub->subscribe(EventHub::job_topic(job_id), ex);
  out.on_close([sub] { sub->wake(); });
  if (!co_await out.write("retry: 2000\n\n")) co_return;
  constexpr int kPage = 200;
  for (;;) {
    auto events = co_await ctx.jobs->job_events(job_id, after, kPage);
    if (!events) co_return;
    bool finished = false;
    for (const auto& e : events.value()) {
      std::string data = full ? normalize_json_text(e.data) : public_event_data(e.data);
      std::string frame = fmt::format("id: {}\nevent: {}\ndata: {}\n\n", e.seq, e.type, data);
      if (!co_await out.write(std::move(frame))) co_return;
      after = e.seq;
      finished = e.type == job_event::finished;
    }
    if (static_cast<int>(events->size()) == kPage) continue;
    if (finished || out.closed()) co_return;
    bool woke = co_await sub->wait(std::chrono::milliseconds(ctx.sse_heartbeat_ms));
    if (out.closed()) co_return;
    if (!woke && !co_await out.write(": heartbeat\n\n")) co_return;
  }
}

asio::awaitable<Response> job_events(Context& ctx, Request& req) {
  auto id = path_id(req, 0, "job_id");
  if (!id) co_return error_response(id.error());
  auto job = co_await ctx.jobs->get_job(id.value());
  if (!job) co_return error_response(job.error());
  bool full = co_await may_read_private_of(ctx, req, job->creator_id.value_or(0));
  if (job->kind == kPrivateKind && !may_read_email_jobs(req)) co_return private_job_refused(req);
  int64_t after = 0;
  std::string last = std::string(req.header("Last-Event-ID"));
  if (last.empty()) last = req.query_param("last_event_id").value_or("");
  if (!last.empty()) {
    auto v = parse_id(last);
    if (!v && last != "0") co_return error_response(ErrorCode::bad_request, "Last-Event-ID must be an event id", "Last-Event-ID");
    after = v.value_or(0);
  }
  // A finished job with nothing after Last-Event-ID: 204 ends the stream for good (an
  // EventSource does not reconnect after a 204), instead of a stream that would never end.
  if (is_terminal(job->state)) {
    auto rest = co_await ctx.jobs->job_events(id.value(), after, 1);
    if (!rest) co_return error_response(rest.error());
    if (rest->empty()) co_return Response::empty(204);
  }
  Response r;
  r.status = 200;
  r.content_type = "text/event-stream";
  r.set_header("Cache-Control", "no-cache");
  r.set_header("X-Accel-Buffering", "no");
  int64_t job_id = id.value();
  r.stream = [&ctx, job_id, after, full](http::StreamWriter& w) { return stream_events(ctx, job_id, after, full, w); };
  co_return r;
}

asio::awaitable<Response> list_pipelines(Context& ctx, Request&) {
  json::array items;
  for (const Pipeline* p : ctx.pipelines->all()) {
    json::array steps;
    for (const auto& s : p->steps) {
      json::array needs;
      for (const auto& n : s.needs) needs.emplace_back(n);
      steps.emplace_back(json::object{{"name", s.name}, {"needs", needs}});
    }
    json::object item{{"name", p->name},
                      {"description", p->description},
                      {"queue", p->queue.empty() ? p->name : p->queue},
                      {"max_workers", p->max_workers},
                      {"steps", steps}};
    if (!p->builtin) item["params"] = params_json(*p);
    items.emplace_back(std::move(item));
  }
  co_return Response::json(200, json::object{{"items", items}});
}

}  // namespace

void add_job_routes(http::Router& router, Context& ctx) {
  using M = http::Method;
  router.add(M::post, "/api/creators/{id}/generate", [&ctx](Request& r) { return generate(ctx, r); },
             {.scope = "generate", .owner_may = true, .query = {"wait"}});
  router.add(M::get, "/api/jobs", [&ctx](Request& r) { return list_jobs(ctx, r); },
             {.query = {"state", "kind", "queue", "creator_id", "limit", "cursor"}});
  router.add(M::get, "/api/jobs/{id}", [&ctx](Request& r) { return get_job(ctx, r); });
  router.add(M::post, "/api/jobs/{id}/cancel", [&ctx](Request& r) { return cancel_job(ctx, r); },
             {.scope = "generate"});
  router.add(M::post, "/api/jobs/{id}/retry", [&ctx](Request& r) { return retry_job(ctx, r); },
             {.scope = "generate"});
  router.add(M::get, "/api/jobs/{id}/events", [&ctx](Request& r) { return job_events(ctx, r); },
             {.query = {"last_event_id"}});
  router.add(M::get, "/api/pipelines", [&ctx](Request& r) { return list_pipelines(ctx, r); });
}

}  // namespace creatord::api
