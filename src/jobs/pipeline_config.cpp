#include "jobs/pipeline_config.hpp"

#define TOML_EXCEPTIONS 0
#include <toml++/toml.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "core/log.hpp"
#include "core/offload.hpp"
#include "domain/image.hpp"
#include "jobs/builtin.hpp"
#include "jobs/process.hpp"
#include "jobs/step_files.hpp"
#include "jobs/template.hpp"
#include "net/http_client.hpp"
#include "store/store.hpp"

namespace creatord {

namespace asio = boost::asio;
namespace json = boost::json;
namespace fs = std::filesystem;
using std::chrono::milliseconds;

namespace {

// ---- reading the file -------------------------------------------------------------------

struct Where {
  std::string file;
  Error at(const toml::node& n, const std::string& msg) const {
    auto src = n.source();
    return Error::make(ErrorCode::validation, fmt::format("{}:{}:{}: {}", file, src.begin.line, src.begin.column, msg));
  }
};

json::value to_json(const toml::node& n) {
  if (auto s = n.as_string()) return json::value(s->get());
  if (auto i = n.as_integer()) return json::value(i->get());
  if (auto f = n.as_floating_point()) return json::value(f->get());
  if (auto b = n.as_boolean()) return json::value(b->get());
  if (auto a = n.as_array()) {
    json::array out;
    for (const auto& e : *a) out.push_back(to_json(e));
    return out;
  }
  if (auto t = n.as_table()) {
    json::object out;
    for (const auto& [k, v] : *t) out[std::string(k.str())] = to_json(v);
    return out;
  }
  std::ostringstream text;  // dates and times: as their TOML text
  if (auto d = n.as_date()) text << *d;
  else if (auto t = n.as_time()) text << *t;
  else if (auto dt = n.as_date_time()) text << *dt;
  return json::value(text.str());
}

struct ExecSpec {
  std::vector<std::string> command;
  std::string cwd;
  std::map<std::string, std::string> env;
  json::value input = json::object{};
  milliseconds timeout{0};
  milliseconds kill_grace{5000};
  size_t max_output = 16u << 20;
  AddressPolicy allow_internal;  // internal addresses its images' URLs may be downloaded from
};

struct PollSpec {
  std::string url;
  milliseconds interval{1000};
  std::string field = "status";
  std::vector<std::string> success{"succeeded"};
  std::vector<std::string> failure{"failed"};
};

struct HttpSpec {
  std::string method = "POST";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  json::value body;  // null: no body
  milliseconds timeout{60000};
  size_t max_response = 10u << 20;
  int retries = 3;
  milliseconds backoff{1000};
  std::optional<PollSpec> poll;
  std::string images_from;  // a path in the response to an array of images (e.g. "data")
  AddressPolicy allow_internal;  // internal addresses it may call (public ones always)
};

// ---- shared by both step kinds ---------------------------------------------------------------

asio::awaitable<Result<json::value>> template_context(StepContext& ctx) {
  json::object c;
  c["params"] = ctx.params;
  c["job"] = json::object{{"id", ctx.job.id}, {"attempt", ctx.job.attempt}};
  json::object steps;
  for (const auto& [name, out] : ctx.outputs) steps[name] = json::object{{"output", out}};
  c["steps"] = std::move(steps);
  if (ctx.job.creator_id) {
    auto creator = co_await ctx.services.store.get_creator(*ctx.job.creator_id);
    if (!creator) co_return creator.take_error();
    c["creator"] = to_json(creator.value());
  }
  co_return json::value(std::move(c));
}

asio::awaitable<bool> cancellable_sleep(StepContext& ctx, milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  auto until = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < until) {
    if (ctx.cancel.requested()) co_return false;
    t.expires_after(std::min<milliseconds>(milliseconds(100), std::chrono::duration_cast<milliseconds>(until - std::chrono::steady_clock::now())));
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  co_return !ctx.cancel.requested();
}

std::string base64_decode(std::string_view in, bool* ok) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  *ok = true;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '+' || c == '-') v = 62;
    else if (c == '/' || c == '_') v = 63;
    else if (c == '=' || c == '\n' || c == '\r') continue;
    else {
      *ok = false;
      return {};
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

// A call to an internal address the step may not reach: the client learns only that; the log
// says which address, and how to allow it.
StepError refused_target(const StepContext& ctx, const HttpReply& r) {
  log::warn("step call refused: an internal address",
            {{"job_id", ctx.job.id}, {"step", ctx.step}, {"address", r.refused_address},
             {"hint", "allow it with the step's allow_internal, or --step-allow-internal"}});
  return StepError{"target address not allowed", false};
}

// `images` in a step's output: [{"path": ...} | {"base64": ...} | {"url": ...}] become the
// creator's images; each entry gains "image_id".
asio::awaitable<std::optional<StepError>> store_output_images(StepContext& ctx, json::value& output,
                                                              const std::string& base_dir, bool allow_paths,
                                                              size_t max_bytes, const AddressPolicy& allow_internal) {
  if (!output.is_object() || !output.as_object().contains("images")) co_return std::nullopt;
  auto& images = output.as_object()["images"];
  if (!images.is_array()) co_return StepError{"output images must be an array", false};
  for (size_t i = 0; i < images.as_array().size(); ++i) {
    auto& entry = images.as_array()[i];
    if (!entry.is_object()) co_return StepError{fmt::format("output images[{}] must be an object", i), false};
    auto& o = entry.as_object();
    std::string bytes;
    bool from_path = false;
    if (auto p = o.if_contains("path"); p && p->is_string() && allow_paths) {
      // Only a file inside the step's folder; one answer for everything else (see step_files).
      std::string path(p->as_string());
      auto why = std::make_shared<std::string>();
      auto read = [base_dir, path, max_bytes, why](size_t) { return read_file_inside(base_dir, path, max_bytes, why.get()); };
      auto r = co_await offload<std::string>(ctx.services.files, read);
      if (!r) {
        if (!why->empty())
          log::warn("step image path refused", {{"job_id", ctx.job.id}, {"step", ctx.step}, {"reason", *why}});
        co_return StepError{fmt::format("output images[{}].path {}", i, r.error().message), false};
      }
      bytes = std::move(r.value());
      from_path = true;
    } else if (auto b = o.contains("base64") ? o.if_contains("base64") : o.if_contains("b64_json"); b && b->is_string()) {
      bool ok = false;
      bytes = base64_decode(b->as_string(), &ok);
      if (!ok) co_return StepError{fmt::format("output images[{}].base64 is not base64", i), false};
    } else if (auto u = o.if_contains("url"); u && u->is_string() && ctx.services.http) {
      HttpCall call;
      call.method = "GET";
      call.url = std::string(u->as_string());
      call.max_response_bytes = max_bytes;
      call.cancel = ctx.cancel.flag();
      // No time for the whole download (a large image on a slow link is fine) but a minimum
      // rate, and a generous cap.
      const OutgoingLimits& limits = ctx.services.outgoing;
      call.connect_timeout = limits.connect_timeout;
      call.timeout = limits.download_timeout;
      call.stall_timeout = limits.download_stall_timeout;
      call.min_rate = limits.download_min_rate;
      call.allow_internal = allow_internal.merged(limits.allow_internal);
      auto fetch = [call](size_t) -> Result<HttpReply> { return http_call(call); };
      auto r = co_await offload<HttpReply>(*ctx.services.http, fetch);
      if (!r) co_return StepError{fmt::format("cannot download {}: {}", call.url, r.error().message), true};
      if (r->refused) co_return refused_target(ctx, r.value());
      if (r->too_large)  // nothing is stored: a truncated image is no image
        co_return StepError{fmt::format("output images[{}]: the download is larger than {} bytes", i, max_bytes), false};
      if (r->status < 200 || r->status >= 300)
        co_return StepError{fmt::format("cannot download {}: {}", call.url, r->error.empty() ? std::to_string(r->status) : r->error), true};
      bytes = std::move(r->body);
    } else {
      co_return StepError{fmt::format("output images[{}] needs {}base64 or url", i, allow_paths ? "path, " : ""), false};
    }
    if (!probe_image(bytes)) {
      if (from_path)  // the same answer as for a path that leads nowhere
        co_return StepError{fmt::format("output images[{}].path {}", i, kNoFileInFolder), false};
      co_return StepError{fmt::format("output images[{}] is not a PNG, JPEG or WebP image", i), false};
    }
    std::string origin = fmt::format("job:{}:{}:{}", ctx.job.id, ctx.step, i);
    auto img = co_await store_generated(ctx, std::move(bytes), origin, "step");
    if (!img) co_return StepError{img.error().message, true};
    o.erase("base64");  // not worth keeping twice
    o.erase("b64_json");
    o["image_id"] = img->id;
    o["url"] = fmt::format("/api/images/{}/content", img->id);
  }
  co_return std::nullopt;
}

// ---- exec ------------------------------------------------------------------------------------

StepFn exec_step(ExecSpec spec) {
  return [spec](StepContext& ctx) -> asio::awaitable<StepResult> {
    auto tctx = co_await template_context(ctx);
    if (!tctx) co_return StepError{tctx.error().message, false};
    ProcessSpec p;
    for (const auto& a : spec.command) {
      auto r = render_string(a, tctx.value());
      if (!r) co_return StepError{r.error().message, false};
      p.argv.push_back(std::move(r.value()));
    }
    for (const auto& [k, v] : spec.env) {
      auto e = expand_env(v);
      if (!e) co_return StepError{e.error().message, false};
      auto r = render_string(e.value(), tctx.value());
      if (!r) co_return StepError{r.error().message, false};
      p.env[k] = std::move(r.value());
    }
    auto input = render_template(spec.input, tctx.value());
    if (!input) co_return StepError{input.error().message, false};
    p.stdin_data = json::serialize(input.value());
    p.cwd = spec.cwd;
    p.timeout = spec.timeout;
    p.kill_grace = spec.kill_grace;
    p.max_stdout = spec.max_output;
    auto run = run_process(std::move(p), ctx.cancel, ctx.progress);
    auto r = co_await std::move(run);
    if (!r) co_return StepError{r.error().message, r.error().code != ErrorCode::validation};
    ctx.log = r->err_tail;
    if (r->cancelled || ctx.cancel.requested()) co_return StepError{"cancelled", false};
    if (r->timed_out) co_return StepError{fmt::format("timed out after {} ms", spec.timeout.count()), true};
    if (r->stdout_too_large) co_return StepError{fmt::format("output larger than {} bytes", spec.max_output), false};
    if (r->term_signal) co_return StepError{fmt::format("killed by signal {}", r->term_signal), true};
    if (r->exit_code != 0) {
      std::string tail = r->err_tail.substr(r->err_tail.size() > 300 ? r->err_tail.size() - 300 : 0);
      co_return StepError{fmt::format("exited with code {}{}{}", r->exit_code, tail.empty() ? "" : ": ", tail), true};
    }
    boost::system::error_code ec;
    auto out = json::parse(r->out, ec);
    if (ec) co_return StepError{fmt::format("output is not JSON ({}): {:.200}", ec.message(), r->out), false};
    std::string base = spec.cwd.empty() ? fs::current_path().string() : spec.cwd;
    if (auto e = co_await store_output_images(ctx, out, base, true, 50u << 20, spec.allow_internal)) co_return *e;
    co_return out;
  };
}

// ---- http ------------------------------------------------------------------------------------

asio::awaitable<Result<HttpReply>> call_with_retries(StepContext& ctx, HttpCall call, int retries, milliseconds backoff,
                                                     std::optional<StepError>* fatal) {
  for (int attempt = 0;; ++attempt) {
    auto once = [call](size_t) -> Result<HttpReply> { return http_call(call); };
    auto r = co_await offload<HttpReply>(*ctx.services.http, once);
    if (!r) co_return r;
    if (ctx.cancel.requested()) {
      *fatal = StepError{"cancelled", false};
      co_return r;
    }
    if (r->refused) {  // not worth retrying: the address will not become allowed
      *fatal = refused_target(ctx, r.value());
      co_return r;
    }
    if (r->too_large) {
      *fatal = StepError{fmt::format("response larger than {} bytes refused", call.max_response_bytes), false};
      co_return r;
    }
    bool ok = r->status >= 200 && r->status < 300;
    bool retryable = r->status == 0 || r->status == 429 || r->status >= 500;
    if (ok) co_return r;
    std::string what = r->status ? fmt::format("HTTP {} from {}: {:.300}", r->status, call.url, r->body)
                                 : fmt::format("{}: {}", call.url, r->error);
    if (!retryable || attempt >= retries) {
      *fatal = StepError{what, retryable};
      co_return r;
    }
    milliseconds wait = backoff * (1 << std::min(attempt, 10));
    if (r->status == 429 && !r->retry_after.empty()) {
      char* end = nullptr;
      long s = std::strtol(r->retry_after.c_str(), &end, 10);
      if (end && *end == '\0' && s >= 0) wait = milliseconds(std::min<long>(s, 3600) * 1000);
    }
    if (!co_await cancellable_sleep(ctx, wait)) {
      *fatal = StepError{"cancelled", false};
      co_return r;
    }
  }
}

// CR, LF or NUL in a rendered header or URL would let a value inject headers or a whole
// request into the outgoing call: the step fails instead.
std::optional<StepError> unsafe_text(const std::string& what, std::string_view value) {
  if (value.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos) return std::nullopt;
  return StepError{what + ": the rendered value contains CR, LF or NUL", false};
}

StepFn http_step(HttpSpec spec) {
  return [spec](StepContext& ctx) -> asio::awaitable<StepResult> {
    if (!ctx.services.http) co_return StepError{"http steps are not available", false};
    auto tctx = co_await template_context(ctx);
    if (!tctx) co_return StepError{tctx.error().message, false};
    HttpCall call;
    call.method = spec.method;
    auto url_env = expand_env(spec.url);
    if (!url_env) co_return StepError{url_env.error().message, false};
    auto url = render_url(url_env.value(), tctx.value());
    if (!url) co_return StepError{url.error().message, false};
    if (auto bad = unsafe_text("url", url.value())) co_return *bad;
    if (url->rfind("http://", 0) != 0 && url->rfind("https://", 0) != 0)
      co_return StepError{"url " + url.value() + " is not http:// or https://", false};
    call.url = url.value();
    call.headers.emplace_back("Accept", "application/json");
    for (const auto& [k, v] : spec.headers) {
      auto e = expand_env(v);
      if (!e) co_return StepError{e.error().message, false};
      auto r = render_string(e.value(), tctx.value());
      if (!r) co_return StepError{r.error().message, false};
      if (auto bad = unsafe_text("header " + k, r.value())) co_return *bad;
      call.headers.emplace_back(k, r.value());
    }
    if (!spec.body.is_null()) {
      auto body = render_template(spec.body, tctx.value());
      if (!body) co_return StepError{body.error().message, false};
      call.body = json::serialize(body.value());
      call.headers.emplace_back("Content-Type", "application/json");
    }
    call.timeout = spec.timeout;
    call.connect_timeout = std::min(spec.timeout, ctx.services.outgoing.connect_timeout);
    call.max_response_bytes = spec.max_response;
    call.allow_internal = spec.allow_internal.merged(ctx.services.outgoing.allow_internal);
    call.cancel = ctx.cancel.flag();
    std::optional<StepError> fatal;
    auto first = co_await call_with_retries(ctx, call, spec.retries, spec.backoff, &fatal);
    if (!first) co_return StepError{first.error().message, true};
    if (fatal) co_return *fatal;
    boost::system::error_code ec;
    auto response = json::parse(first->body, ec);
    if (ec) co_return StepError{fmt::format("response is not JSON: {:.200}", first->body), false};

    if (spec.poll) {
      // "Accepted, poll this URL until done": the URL comes from the first answer; GET it every
      // interval until the field says so.
      tctx->as_object()["response"] = response;
      auto poll_url = render_url(spec.poll->url, tctx.value());
      if (!poll_url) co_return StepError{poll_url.error().message, false};
      if (auto bad = unsafe_text("poll url", poll_url.value())) co_return *bad;
      for (int polls = 0;; ++polls) {
        if (!co_await cancellable_sleep(ctx, spec.poll->interval)) co_return StepError{"cancelled", false};
        HttpCall get = call;
        get.method = "GET";
        get.url = poll_url.value();
        get.body.clear();
        std::erase_if(get.headers, [](const auto& h) { return h.first == "Content-Type"; });
        auto r = co_await call_with_retries(ctx, get, spec.retries, spec.backoff, &fatal);
        if (!r) co_return StepError{r.error().message, true};
        if (fatal) co_return *fatal;
        response = json::parse(r->body, ec);
        if (ec) co_return StepError{fmt::format("poll response is not JSON: {:.200}", r->body), false};
        std::string state;
        if (response.is_object())
          if (auto f = response.as_object().if_contains(spec.poll->field); f && f->is_string()) state = f->as_string();
        auto in = [&](const std::vector<std::string>& v) { return std::find(v.begin(), v.end(), state) != v.end(); };
        if (in(spec.poll->success)) break;
        if (in(spec.poll->failure)) co_return StepError{fmt::format("the API reports {} = {}", spec.poll->field, state), true};
        ctx.progress(std::min(0.95, 0.1 + polls * 0.05), state);
      }
    }
    if (!spec.images_from.empty()) {
      json::object root{{"r", response}};
      auto found = render_template(json::value("{{ r." + spec.images_from + " }}"), root);
      if (!found || !found->is_array())
        co_return StepError{"the response has no image array at " + spec.images_from, false};
      if (response.is_object()) response.as_object()["images"] = found.value();
    }
    if (auto e = co_await store_output_images(ctx, response, "", false, spec.max_response, spec.allow_internal))
      co_return *e;
    if (!spec.images_from.empty() && response.is_object()) {
      // The images now live in "images" (with their ids); drop the raw copy.
      json::object root{{"r", response}};
      size_t dot = spec.images_from.rfind('.');
      if (dot == std::string::npos) response.as_object().erase(spec.images_from);
    }
    co_return response;
  };
}

StepFn with_retries(StepFn fn, int retries, milliseconds backoff) {
  if (retries <= 0) return fn;
  return [fn, retries, backoff](StepContext& ctx) -> asio::awaitable<StepResult> {
    for (int attempt = 0;; ++attempt) {
      StepResult r = co_await fn(ctx);
      auto* err = std::get_if<StepError>(&r);
      if (!err || !err->retryable || attempt >= retries || ctx.cancel.requested()) co_return r;
      ctx.progress(0, fmt::format("retrying after: {:.200}", err->message));
      if (!co_await cancellable_sleep(ctx, backoff * (1 << std::min(attempt, 10)))) co_return StepError{"cancelled", false};
    }
  };
}

// ---- parsing -----------------------------------------------------------------------------------

Result<std::string> get_string(const Where& w, const toml::table& t, std::string_view key, bool required) {
  auto n = t.get(key);
  if (!n) {
    if (required) return w.at(t, fmt::format("missing `{}`", key));
    return std::string();
  }
  if (!n->is_string()) return w.at(*n, fmt::format("`{}` must be a string", key));
  return std::string(n->as_string()->get());
}

Result<int64_t> get_int(const Where& w, const toml::table& t, std::string_view key, int64_t lo, int64_t hi, int64_t fallback) {
  auto n = t.get(key);
  if (!n) return fallback;
  if (!n->is_integer()) return w.at(*n, fmt::format("`{}` must be an integer", key));
  int64_t v = n->as_integer()->get();
  if (v < lo || v > hi) return w.at(*n, fmt::format("`{}` must be from {} to {}", key, lo, hi));
  return v;
}

Result<double> get_seconds(const Where& w, const toml::table& t, std::string_view key, double fallback) {
  auto n = t.get(key);
  if (!n) return fallback;
  double v;
  if (n->is_integer()) v = static_cast<double>(n->as_integer()->get());
  else if (n->is_floating_point()) v = n->as_floating_point()->get();
  else return w.at(*n, fmt::format("`{}` must be a number of seconds", key));
  if (v < 0 || v > 86400 * 7) return w.at(*n, fmt::format("`{}` must be from 0 to 604800 seconds", key));
  return v;
}

Result<std::vector<std::string>> get_strings(const Where& w, const toml::table& t, std::string_view key) {
  std::vector<std::string> out;
  auto n = t.get(key);
  if (!n) return out;
  if (!n->is_array()) return w.at(*n, fmt::format("`{}` must be an array of strings", key));
  for (const auto& e : *n->as_array()) {
    if (!e.is_string()) return w.at(e, fmt::format("`{}` must contain only strings", key));
    out.emplace_back(e.as_string()->get());
  }
  return out;
}

Result<std::map<std::string, std::string>> get_string_table(const Where& w, const toml::table& t, std::string_view key) {
  std::map<std::string, std::string> out;
  auto n = t.get(key);
  if (!n) return out;
  if (!n->is_table()) return w.at(*n, fmt::format("`{}` must be a table of strings", key));
  for (const auto& [k, v] : *n->as_table()) {
    if (!v.is_string()) return w.at(v, fmt::format("`{}.{}` must be a string", key, k.str()));
    out[std::string(k.str())] = v.as_string()->get();
  }
  return out;
}

Status only_keys(const Where& w, const toml::table& t, std::initializer_list<std::string_view> allowed, std::string_view what) {
  for (const auto& [k, v] : t) {
    if (std::find(allowed.begin(), allowed.end(), k.str()) == allowed.end())
      return w.at(v, fmt::format("unknown key `{}` in {}", k.str(), what));
  }
  return ok_status();
}

// `allow_internal = ["127.0.0.1", "10.0.0.0/8", "ai.internal"]`: the internal addresses a step
// may reach (see net/address_policy.hpp).
Result<AddressPolicy> get_allow_internal(const Where& w, const toml::table& t) {
  auto entries = get_strings(w, t, "allow_internal");
  if (!entries) return entries.take_error();
  auto policy = AddressPolicy::parse(entries.value());
  if (!policy) return w.at(*t.get("allow_internal"), policy.error().message);
  return policy;
}

milliseconds ms(double s) { return milliseconds(static_cast<int64_t>(s * 1000)); }

#define TRY(var, expr)               \
  auto var##_r = (expr);             \
  if (!var##_r) return var##_r.take_error(); \
  auto var = std::move(var##_r.value())

// The absolute folder a pipelines file is in; a bare "p.toml" is in the current folder.
fs::path folder_of(const std::string& file) {
  std::error_code ec;
  fs::path parent = fs::path(file).parent_path();
  fs::path folder = parent.empty() ? fs::current_path(ec) : fs::absolute(parent, ec);
  return ec ? fs::path(".") : folder;
}

// Every ${VAR} a step reads from creatord's environment (in `env`, `url` and `headers`) must be
// set at start-up, not found missing when a job runs; their values are secrets from then on.
Status check_env_vars(const Where& w, const toml::table& t) {
  for (const char* key : {"env", "url", "headers"}) {
    const toml::node* n = t.get(key);
    if (!n) continue;
    std::vector<const toml::node*> values;
    if (n->is_table()) {
      for (const auto& [k, v] : *n->as_table()) values.push_back(&v);
    } else {
      values.push_back(n);
    }
    for (const toml::node* v : values) {
      if (!v->is_string()) continue;
      if (auto e = expand_env(v->as_string()->get()); !e) return w.at(*v, e.error().message);
      add_env_secrets(v->as_string()->get());
    }
  }
  return ok_status();
}

// The params.NAME a step's templates need, checked against each request at enqueue.
std::vector<std::string> step_params_used(const toml::table& t) {
  std::vector<std::string> names;
  for (const char* key : {"command", "env", "input", "url", "headers", "body", "poll"})
    if (const toml::node* n = t.get(key)) params_used(to_json(*n), names);
  return names;
}

Result<StepDef> parse_step(const Where& w, const toml::table& t) {
  TRY(name, get_string(w, t, "name", true));
  TRY(type, get_string(w, t, "type", true));
  TRY(needs, get_strings(w, t, "needs"));
  TRY(retries, get_int(w, t, "retries", 0, 20, 0));
  TRY(backoff, get_seconds(w, t, "retry_backoff_seconds", 1));
  TRY(timeout, get_seconds(w, t, "timeout_seconds", 0));
  StepDef def;
  def.name = name;
  def.needs = needs;
  auto check_tmpl = [&](const toml::node* n, const json::value& v) -> Status {
    if (auto s = check_template(v); !s) return w.at(n ? *n : static_cast<const toml::node&>(t), s.error().message);
    return ok_status();
  };
  auto check_url = [&](const toml::node* n, const std::string& url) -> Status {
    if (auto s = check_tmpl(n, json::value(url)); !s) return s;
    if (auto s = check_url_template(url); !s) return w.at(*n, s.error().message);
    return ok_status();
  };
  if (type == "exec") {
    if (auto s = only_keys(w, t, {"name", "type", "needs", "retries", "retry_backoff_seconds", "timeout_seconds", "command",
                                  "cwd", "env", "input", "kill_grace_seconds", "max_output_bytes", "allow_internal"},
                           "an exec step");
        !s)
      return s.take_error();
    ExecSpec spec;
    TRY(command, get_strings(w, t, "command"));
    if (command.empty()) return w.at(t, "exec step `" + name + "` needs `command`, e.g. [\"python3\", \"step.py\"]");
    spec.command = command;
    for (const auto& c : command)
      if (auto s = check_tmpl(t.get("command"), json::value(c)); !s) return s.take_error();
    TRY(cwd, get_string(w, t, "cwd", false));
    if (!cwd.empty()) {
      std::error_code ec;
      fs::path p = fs::path(cwd).is_relative() ? folder_of(w.file) / cwd : fs::path(cwd);
      if (!fs::is_directory(p, ec)) return w.at(*t.get("cwd"), "`cwd` " + p.string() + " is not a folder");
      spec.cwd = p.string();
    } else {
      spec.cwd = folder_of(w.file).string();
    }
    TRY(env, get_string_table(w, t, "env"));
    spec.env = env;
    if (auto n = t.get("input")) {
      spec.input = to_json(*n);
      if (auto s = check_tmpl(n, spec.input); !s) return s.take_error();
    }
    spec.timeout = ms(timeout);
    TRY(grace, get_seconds(w, t, "kill_grace_seconds", 5));
    spec.kill_grace = ms(grace);
    TRY(max_out, get_int(w, t, "max_output_bytes", 1, 1LL << 30, 16LL << 20));
    spec.max_output = static_cast<size_t>(max_out);
    TRY(allow, get_allow_internal(w, t));
    spec.allow_internal = std::move(allow);
    def.run = exec_step(std::move(spec));
  } else if (type == "http") {
    if (auto s = only_keys(w, t, {"name", "type", "needs", "retries", "retry_backoff_seconds", "timeout_seconds", "method",
                                  "url", "headers", "body", "max_response_bytes", "request_retries", "poll",
                                  "images_from", "allow_internal"},
                           "an http step");
        !s)
      return s.take_error();
    HttpSpec spec;
    TRY(method, get_string(w, t, "method", false));
    if (!method.empty()) spec.method = method;
    if (spec.method != "GET" && spec.method != "POST" && spec.method != "PUT" && spec.method != "PATCH" && spec.method != "DELETE")
      return w.at(*t.get("method"), "`method` must be GET, POST, PUT, PATCH or DELETE");
    TRY(url, get_string(w, t, "url", true));
    if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0 && url.rfind("{{", 0) != 0 &&
        url.rfind("${", 0) != 0)
      return w.at(*t.get("url"), "`url` must start with http:// or https:// (or a ${VARIABLE} or {{ template }})");
    if (auto s = check_url(t.get("url"), url); !s) return s.take_error();
    spec.url = url;
    TRY(headers, get_string_table(w, t, "headers"));
    for (auto& [k, v] : headers) spec.headers.emplace_back(k, v);
    if (auto n = t.get("body")) {
      spec.body = to_json(*n);
      if (auto s = check_tmpl(n, spec.body); !s) return s.take_error();
    }
    spec.timeout = timeout > 0 ? ms(timeout) : milliseconds(60000);
    TRY(max_resp, get_int(w, t, "max_response_bytes", 1, 1LL << 30, 10LL << 20));
    spec.max_response = static_cast<size_t>(max_resp);
    TRY(request_retries, get_int(w, t, "request_retries", 0, 20, 3));
    spec.retries = static_cast<int>(request_retries);
    spec.backoff = ms(backoff);
    if (auto n = t.get("poll")) {
      if (!n->is_table()) return w.at(*n, "`poll` must be a table");
      const auto& pt = *n->as_table();
      if (auto s = only_keys(w, pt, {"url", "interval_seconds", "field", "success", "failure"}, "poll"); !s) return s.take_error();
      PollSpec ps;
      TRY(purl, get_string(w, pt, "url", true));
      if (auto s = check_url(pt.get("url"), purl); !s) return s.take_error();
      ps.url = purl;
      TRY(interval, get_seconds(w, pt, "interval_seconds", 1));
      ps.interval = ms(std::max(interval, 0.01));
      TRY(field, get_string(w, pt, "field", false));
      if (!field.empty()) ps.field = field;
      TRY(success, get_strings(w, pt, "success"));
      if (!success.empty()) ps.success = success;
      TRY(failure, get_strings(w, pt, "failure"));
      if (!failure.empty()) ps.failure = failure;
      spec.poll = ps;
    }
    TRY(images_from, get_string(w, t, "images_from", false));
    spec.images_from = images_from;
    TRY(allow, get_allow_internal(w, t));
    spec.allow_internal = std::move(allow);
    def.run = http_step(std::move(spec));
    // Step-level retries re-run the whole call; request_retries covers single requests.
  } else if (type == "noop") {
    // Does nothing: a placeholder, and the reference for measuring step overhead.
    if (auto s = only_keys(w, t, {"name", "type", "needs", "retries", "retry_backoff_seconds", "timeout_seconds"}, "a noop step"); !s)
      return s.take_error();
    def.run = [](StepContext&) -> asio::awaitable<StepResult> { co_return json::value(json::object{}); };
  } else {
    return w.at(*t.get("type"), "`type` must be exec, http or noop, not " + type);
  }
  if (auto s = check_env_vars(w, t); !s) return s.take_error();
  def.params_used = step_params_used(t);
  def.run = with_retries(std::move(def.run), static_cast<int>(retries), ms(backoff));
  return def;
}

std::string json_type_of(const json::value& v) {
  if (v.is_string()) return "string";
  if (v.is_int64() || v.is_uint64()) return "integer";
  if (v.is_double()) return "number";
  if (v.is_bool()) return "boolean";
  if (v.is_array()) return "array";
  return "object";
}

Result<ParamSpec> parse_param(const Where& w, std::string name, const toml::node& n) {
  static constexpr std::string_view kTypes[] = {"string", "integer", "number", "boolean", "array", "object"};
  if (name.empty() || name.size() > 64 || name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != std::string::npos)
    return w.at(n, "a param name must be 1 to 64 characters of letters, digits, _ and -");
  if (!n.is_table())
    return w.at(n, fmt::format("param `{}` must be a table, e.g. {{ type = \"string\", default = \"neon\" }}", name));
  const auto& t = *n.as_table();
  if (auto s = only_keys(w, t, {"type", "default", "description"}, "a param"); !s) return s.take_error();
  ParamSpec spec;
  spec.name = std::move(name);
  TRY(type, get_string(w, t, "type", false));
  TRY(description, get_string(w, t, "description", false));
  spec.description = description;
  if (const toml::node* d = t.get("default")) spec.default_value = to_json(*d);
  if (type.empty() && !spec.default_value)
    return w.at(n, "param `" + spec.name + "` needs a `type` (string, integer, number, boolean, array or object) or a `default`");
  spec.type = type.empty() ? json_type_of(*spec.default_value) : type;
  if (std::find(std::begin(kTypes), std::end(kTypes), spec.type) == std::end(kTypes))
    return w.at(*t.get("type"), "`type` must be string, integer, number, boolean, array or object");
  if (spec.default_value) {
    std::string got = json_type_of(*spec.default_value);
    if (got != spec.type && !(spec.type == "number" && got == "integer"))
      return w.at(*t.get("default"), fmt::format("the default of `{}` must be of type {}", spec.name, spec.type));
  }
  return spec;
}

// [pipeline.params]: NAME = { type = "string", default = "neon", description = "..." }. A param
// with no default must be in every request; a default alone gives the type.
Result<std::vector<ParamSpec>> parse_params(const Where& w, const toml::table& pt) {
  std::vector<ParamSpec> out;
  const toml::node* n = pt.get("params");
  if (!n) return out;
  if (!n->is_table()) return w.at(*n, "`params` must be a table: [pipeline.params] NAME = { type = ..., default = ... }");
  for (const auto& [k, v] : *n->as_table()) {
    auto spec = parse_param(w, std::string(k.str()), v);
    if (!spec) return spec.take_error();
    out.push_back(std::move(spec.value()));
  }
  return out;
}

// A pipeline that declares its params declares every one its templates use.
Status check_params_declared(const Where& w, const Pipeline& p, const toml::array& steps) {
  if (p.params.empty()) return ok_status();
  for (size_t i = 0; i < p.steps.size() && i < steps.size(); ++i)
    for (const auto& name : p.steps[i].params_used)
      if (std::none_of(p.params.begin(), p.params.end(), [&](const ParamSpec& s) { return s.name == name; }))
        return w.at(steps[i], fmt::format("step `{}` uses params.{}, which [pipeline.params] does not declare",
                                          p.steps[i].name, name));
  return ok_status();
}

// Where the first non-ASCII byte outside strings and comments is (1-based line, byte column).
// toml++ 3.3 (Debian 12) reaches __builtin_unreachable() when it meets some non-ASCII characters
// where it expects whitespace (its generated is_non_ascii_horizontal_whitespace, e.g. U+00E9 or
// U+FEFD; found by fuzz/pipelines under UBSan). TOML allows non-ASCII only in strings and
// comments, so anything else is refused here, before the parser sees it.
std::optional<std::pair<int, int>> non_ascii_outside_strings(std::string_view s) {
  enum class In { code, comment, basic, literal, ml_basic, ml_literal } in = In::code;
  int line = 1, col = 0;
  size_t i = s.rfind("\xEF\xBB\xBF", 0) == 0 ? 3 : 0;  // a byte order mark
  for (; i < s.size(); ++i) {
    char c = s[i];
    ++col;
    if (c == '\n') {
      line++, col = 0;
      if (in != In::ml_basic && in != In::ml_literal) in = In::code;
      continue;
    }
    switch (in) {
      case In::code:
        if (static_cast<unsigned char>(c) >= 0x80) return std::pair{line, col};
        if (c == '#') in = In::comment;
        else if (c == '"') in = s.compare(i, 3, "\"\"\"") == 0 ? (i += 2, In::ml_basic) : In::basic;
        else if (c == '\'') in = s.compare(i, 3, "'''") == 0 ? (i += 2, In::ml_literal) : In::literal;
        break;
      case In::comment:
        break;
      case In::basic:
        if (c == '\\') ++i;
        else if (c == '"') in = In::code;
        break;
      case In::literal:
        if (c == '\'') in = In::code;
        break;
      case In::ml_basic:
        if (c == '\\') ++i;
        else if (s.compare(i, 3, "\"\"\"") == 0) in = In::code, i += 2;
        break;
      case In::ml_literal:
        if (s.compare(i, 3, "'''") == 0) in = In::code, i += 2;
        break;
    }
  }
  return std::nullopt;
}

Result<toml::table> parse_toml_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error::make(ErrorCode::validation, fmt::format("{}: cannot read the file", path));
  std::stringstream buf;
  buf << in.rdbuf();
  std::string text = buf.str();
  if (auto at = non_ascii_outside_strings(text))
    return Error::make(ErrorCode::validation,
                       fmt::format("{}:{}:{}: a non-ASCII character outside a string or comment (TOML allows them only there)",
                                   path, at->first, at->second));
  toml::parse_result res = toml::parse(text, path);
  if (!res) {
    const auto& e = res.error();
    return Error::make(ErrorCode::validation,
                       fmt::format("{}:{}:{}: {}", path, e.source().begin.line, e.source().begin.column, e.description()));
  }
  return std::move(res).table();
}

}  // namespace

Result<std::vector<Pipeline>> load_pipeline_file(const std::string& path) {
  Where w{path};
  auto res = parse_toml_file(path);
  if (!res) return res.take_error();
  const toml::table& root = res.value();
  if (auto s = only_keys(w, root, {"pipeline", "schedule"}, "the file (expected [[pipeline]] or [[schedule]] tables)"); !s)
    return s.take_error();
  std::vector<Pipeline> out;
  auto list = root.get("pipeline");
  if (!list && root.get("schedule")) return out;  // schedules of built-in pipelines only
  if (!list || !list->is_array_of_tables())
    return Error::make(ErrorCode::validation, path + ":1:1: no [[pipeline]] tables");
  std::set<std::string> names;
  for (const auto& pn : *list->as_array()) {
    const auto& pt = *pn.as_table();
    if (auto s = only_keys(w, pt, {"name", "description", "max_workers", "queue", "concurrency", "result", "params", "step"},
                           "a pipeline");
        !s)
      return s.take_error();
    Pipeline p;
    p.builtin = false;
    TRY(name, get_string(w, pt, "name", true));
    if (name.empty() || name.size() > 64) return w.at(pt, "a pipeline name must be 1 to 64 characters");
    if (!names.insert(name).second) return w.at(*pt.get("name"), "pipeline `" + name + "` is defined twice");
    p.name = name;
    TRY(desc, get_string(w, pt, "description", false));
    p.description = desc;
    TRY(workers, get_int(w, pt, "max_workers", 1, 16, 2));
    p.max_workers = static_cast<int>(workers);
    TRY(queue, get_string(w, pt, "queue", false));
    p.queue = queue.empty() ? name : queue;
    if (p.queue.size() > 64 || p.queue.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") != std::string::npos)
      return w.at(pt, "a queue name must be 1 to 64 characters of a-z, 0-9, _ and -");
    TRY(concurrency, get_int(w, pt, "concurrency", 1, 1000, 0));
    p.concurrency = static_cast<int>(concurrency);
    TRY(params, parse_params(w, pt));
    p.params = std::move(params);
    auto steps = pt.get("step");
    if (!steps || !steps->is_array_of_tables()) return w.at(pt, "pipeline `" + name + "` has no [[pipeline.step]] tables");
    for (const auto& sn : *steps->as_array()) {
      auto def = parse_step(w, *sn.as_table());
      if (!def) return def.take_error();
      p.steps.push_back(std::move(def.value()));
    }
    if (auto s = check_params_declared(w, p, *steps->as_array()); !s) return s.take_error();
    TRY(result, get_string(w, pt, "result", false));
    p.result_step = result;
    if (!result.empty() &&
        std::none_of(p.steps.begin(), p.steps.end(), [&](const StepDef& s) { return s.name == result; }))
      return w.at(*pt.get("result"), "`result` names no step of this pipeline");
    if (auto s = validate_pipeline(p); !s) {
      // Point at the step the mistake is in.
      for (const auto& sn : *steps->as_array()) {
        auto sname = sn.as_table()->get("name");
        if (sname && sname->is_string() && s.error().field && sname->as_string()->get() == *s.error().field)
          return w.at(sn, s.error().message);
      }
      return w.at(pt, s.error().message);
    }
    out.push_back(std::move(p));
  }
  return out;
}

namespace {

bool is_plain_name(const std::string& s) {
  return !s.empty() && s.size() <= 64 && s.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") == std::string::npos;
}

// Which creators a schedule is for: `creator = ID`, or `creators = "all"`.
Status schedule_creators(const Where& w, const toml::table& t, queue::ScheduleDef& s) {
  auto one = t.get("creator");
  auto all = t.get("creators");
  if (one && all) return w.at(t, "give `creator` (an id) or `creators = \"all\"`, not both");
  if (one) {
    if (!one->is_integer() || one->as_integer()->get() < 1) return w.at(*one, "`creator` must be a creator id");
    s.creator_id = one->as_integer()->get();
    return ok_status();
  }
  if (!all || !all->is_string() || all->as_string()->get() != "all")
    return w.at(all ? *all : static_cast<const toml::node&>(t), "a schedule needs `creator = ID` or `creators = \"all\"`");
  return ok_status();
}

Result<queue::ScheduleDef> parse_schedule(const Where& w, const toml::table& t, const PipelineRegistry& pipelines) {
  if (auto s = only_keys(w, t, {"name", "pipeline", "cron", "timezone", "params", "creator", "creators", "missed"},
                         "a schedule");
      !s)
    return s.take_error();
  queue::ScheduleDef s;
  s.line = static_cast<int>(t.source().begin.line);
  TRY(name, get_string(w, t, "name", true));
  if (!is_plain_name(name)) return w.at(t, "a schedule name must be 1 to 64 characters of a-z, 0-9, _ and -");
  s.name = name;
  TRY(pipeline, get_string(w, t, "pipeline", true));
  if (!pipelines.find(pipeline)) return w.at(*t.get("pipeline"), "no pipeline named `" + pipeline + "`");
  s.pipeline = pipeline;
  TRY(cron, get_string(w, t, "cron", true));
  TRY(tz, get_string(w, t, "timezone", false));
  s.cron = cron;
  s.timezone = tz.empty() ? "UTC" : tz;
  auto parsed = queue::make_schedule(s.cron, s.timezone);
  if (!parsed) return w.at(*t.get("cron"), parsed.error().message);
  s.schedule = std::move(parsed.value());
  if (auto p = t.get("params")) {
    if (!p->is_table()) return w.at(*p, "`params` must be a table");
    s.params = to_json(*p).as_object();
  }
  if (const Pipeline* p = pipelines.find(pipeline); p && !p->builtin) {
    auto params = resolve_params(*p, json::value(s.params));  // what its jobs will be given
    if (!params) return w.at(t.get("params") ? *t.get("params") : static_cast<const toml::node&>(t), params.error().message);
    s.params = std::move(params.value());
  }
  if (auto st = schedule_creators(w, t, s); !st) return st.take_error();
  TRY(missed, get_string(w, t, "missed", false));
  if (missed == "run_once") s.missed = queue::ScheduleDef::Missed::run_once;
  else if (!missed.empty() && missed != "skip")
    return w.at(*t.get("missed"), "`missed` must be \"skip\" or \"run_once\"");
  return s;
}

}  // namespace

Result<std::vector<queue::ScheduleDef>> load_schedules(const std::string& path, const PipelineRegistry& pipelines) {
  Where w{path};
  auto res = parse_toml_file(path);
  if (!res) return res.take_error();
  std::vector<queue::ScheduleDef> out;
  auto list = res->get("schedule");
  if (!list) return out;
  if (!list->is_array_of_tables()) return w.at(*list, "`schedule` must be [[schedule]] tables");
  std::set<std::string> names;
  for (const auto& node : *list->as_array()) {
    auto s = parse_schedule(w, *node.as_table(), pipelines);
    if (!s) return s.take_error();
    if (!names.insert(s->name).second) return w.at(node, "schedule `" + s->name + "` is defined twice");
    out.push_back(std::move(s.value()));
  }
  return out;
}

}  // namespace creatord
