#include "jobs/builtin.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/json.hpp>

#include "core/offload.hpp"
#include "core/sha256.hpp"
#include "domain/image_decode.hpp"
#include "render/art.hpp"
#include "mail/email.hpp"
#include "store/blob_store.hpp"
#include "mail/outbox.hpp"
#include "store/store.hpp"

namespace creatord {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

int64_t param_int(const json::object& p, const char* key, int64_t fallback) {
  auto it = p.find(key);
  return it != p.end() && it->value().is_int64() ? it->value().as_int64() : fallback;
}

}  // namespace

asio::awaitable<Result<Image>> store_generated(StepContext& ctx, std::string png, const std::string& origin_key,
                                               const char* source) {
  // Our own renderer's bytes are trusted; bytes from outside (an http or exec step) are decoded
  // in full, within the limits, like an upload, on the file pool with the hashing.
  bool outside = std::string_view(source) != "generated";
  auto info = std::make_shared<std::optional<ImageInfo>>(probe_image(png));
  if (!*info) co_return Error::make(ErrorCode::internal, "a step produced bytes that are not an image");
  auto bytes = std::make_shared<std::string>(std::move(png));
  BlobStore& blobs = ctx.services.blobs;
  DecodeLimits limits = ctx.services.image_limits;
  auto hash_and_store = [&blobs, bytes, info, outside, limits](size_t) -> Result<std::string> {
    if (outside) {
      auto decoded = decode_image(*bytes, limits);
      if (!decoded) return Error::make(decoded.error().code, "a step produced an image that does not decode: " + decoded.error().message);
      bytes->resize(decoded->length);
      *info = decoded->info;
    }
    std::string h = sha256_hex(*bytes);
    if (auto s = blobs.put(h, *bytes); !s) return s.take_error();
    return h;
  };
  auto sha = co_await offload<std::string>(ctx.services.files, hash_and_store);
  if (!sha) co_return sha.take_error();
  NewImage n;
  n.creator_id = ctx.job.creator_id.value_or(0);
  n.sha256 = std::move(sha.value());
  n.content_type = (*info)->content_type;
  n.width = (*info)->width;
  n.height = (*info)->height;
  n.size_bytes = static_cast<int64_t>(bytes->size());
  n.source = source;
  n.origin_key = origin_key;
  n.job_id = ctx.job.id;
  co_return co_await ctx.services.store.add_image(std::move(n));
}

namespace {

StepError step_error(const Error& e, const CancelState& cancel) {
  if (cancel.requested()) return StepError{"cancelled", false};
  // A missing creator will not appear by retrying; everything else might pass next time.
  return StepError{e.message, e.code != ErrorCode::not_found && e.code != ErrorCode::validation};
}

asio::awaitable<StepResult> load_creator(StepContext& ctx) {
  if (!ctx.job.creator_id) co_return StepError{"the job names no creator", false};
  auto c = co_await ctx.services.store.get_creator(*ctx.job.creator_id);
  if (!c) co_return step_error(c.error(), ctx.cancel);
  json::array tags;
  for (const auto& t : c->tags) tags.emplace_back(t);
  co_return json::value(json::object{{"id", c->id}, {"name", c->name}, {"handle", c->handle}, {"tags", tags}});
}

asio::awaitable<StepResult> render_step(StepContext& ctx, render::ArtKind kind) {
  const auto& creator = ctx.outputs.at("load_creator").as_object();
  int variants = static_cast<int>(param_int(ctx.params, "variants", 3));
  render::ArtSpec base;
  base.kind = kind;
  base.name = std::string(creator.at("name").as_string());
  for (const auto& t : creator.at("tags").as_array()) base.tags.emplace_back(t.as_string());
  base.seed = static_cast<uint64_t>(param_int(ctx.params, "seed", 0));
  base.detail = static_cast<int>(param_int(ctx.params, "detail", 6000));
  if (kind == render::ArtKind::avatar) {
    base.width = base.height = static_cast<int>(param_int(ctx.params, "avatar_size", 1024));
  } else {
    base.width = static_cast<int>(param_int(ctx.params, "banner_width", 1500));
    base.height = static_cast<int>(param_int(ctx.params, "banner_height", 500));
    base.detail = base.detail * 2 / 3;
  }
  json::array ids;
  for (int v = 0; v < variants; ++v) {
    if (ctx.cancel.requested()) co_return StepError{"cancelled", false};
    render::ArtSpec spec = base;
    spec.variant = v;
    const std::atomic<bool>* flag = ctx.cancel.flag();
    auto draw = [spec, flag](size_t) { return render::render_png(spec, flag); };
    auto png = co_await offload<std::string>(ctx.services.render, draw);
    if (!png) co_return step_error(png.error(), ctx.cancel);
    std::string origin = fmt::format("job:{}:{}:{}", ctx.job.id, ctx.step, v);
    auto img = co_await store_generated(ctx, std::move(png.value()), origin, "generated");
    if (!img) co_return step_error(img.error(), ctx.cancel);
    ids.emplace_back(img->id);
    ctx.progress((v + 1.0) / variants, fmt::format("{} {} of {}", ctx.step, v + 1, variants));
  }
  co_return json::value(json::object{{"images", ids}});
}

asio::awaitable<StepResult> thumbnails(StepContext& ctx) {
  int side = static_cast<int>(param_int(ctx.params, "thumb_size", 256));
  std::vector<int64_t> sources;
  for (const char* step : {"render_avatar", "render_banner"})
    for (const auto& id : ctx.outputs.at(step).as_object().at("images").as_array()) sources.push_back(id.as_int64());
  json::array ids;
  for (size_t i = 0; i < sources.size(); ++i) {
    if (ctx.cancel.requested()) co_return StepError{"cancelled", false};
    auto img = co_await ctx.services.store.get_image(sources[i]);
    if (!img) co_return step_error(img.error(), ctx.cancel);
    BlobStore& blobs = ctx.services.blobs;
    std::string sha = img->sha256;
    auto read = [&blobs, sha](size_t) { return blobs.get(sha); };
    auto bytes = co_await offload<std::string>(ctx.services.files, read);
    if (!bytes) co_return step_error(bytes.error(), ctx.cancel);
    auto shared = std::make_shared<std::string>(std::move(bytes.value()));
    auto scale = [shared, side](size_t) { return render::thumbnail_png(*shared, side); };
    auto thumb = co_await offload<std::string>(ctx.services.render, scale);
    if (!thumb) co_return step_error(thumb.error(), ctx.cancel);
    std::string origin = fmt::format("job:{}:{}:{}", ctx.job.id, ctx.step, sources[i]);
    auto stored = co_await store_generated(ctx, std::move(thumb.value()), origin, "thumbnail");
    if (!stored) co_return step_error(stored.error(), ctx.cancel);
    ids.emplace_back(stored->id);
    ctx.progress((i + 1.0) / sources.size(), fmt::format("thumbnail {} of {}", i + 1, sources.size()));
  }
  co_return json::value(json::object{{"images", ids}});
}

// The images a step stored, as the job's result lists them: each with its id and where its bytes
// are ({"image_id": 3, "url": "/api/images/3/content"}, as an exec or http step's images).
json::array image_entries(const json::value& step_output) {
  json::array out;
  for (const auto& id : step_output.as_object().at("images").as_array())
    out.emplace_back(json::object{{"image_id", id}, {"url", fmt::format("/api/images/{}/content", id.to_number<int64_t>())}});
  return out;
}

asio::awaitable<StepResult> summarize(StepContext& ctx) {
  json::array avatars = image_entries(ctx.outputs.at("render_avatar"));
  json::array banners = image_entries(ctx.outputs.at("render_banner"));
  json::array thumbs = image_entries(ctx.outputs.at("thumbnails"));
  auto count = static_cast<int64_t>(avatars.size() + banners.size() + thumbs.size());
  co_return json::value(json::object{{"creator_id", ctx.job.creator_id.value_or(0)},
                                     {"avatars", std::move(avatars)},
                                     {"banners", std::move(banners)},
                                     {"thumbnails", std::move(thumbs)},
                                     {"images", count}});
}

// Tells the creator, by email through the outbox, that their images are ready. Once per job: the
// email's idempotency key is the job's.
asio::awaitable<StepResult> notify(StepContext& ctx) {
  if (!ctx.services.outbox) co_return json::value(json::object{{"skipped", "email is not configured"}});
  auto c = co_await ctx.services.store.get_creator(ctx.job.creator_id.value_or(0));
  if (!c) co_return step_error(c.error(), ctx.cancel);
  if (!c->email) co_return json::value(json::object{{"skipped", "the creator has no email address"}});
  const auto& summary = ctx.outputs.at("summarize").as_object();
  int64_t count = summary.at("images").to_number<int64_t>();
  Email e;
  e.to = {*c->email};
  e.from = ctx.services.outbox->options().from;
  e.message_id = new_message_id(e.from);
  e.idempotency_key = fmt::format("job:{}:notify", ctx.job.id);
  e.subject = fmt::format("{} new images are ready, {}", count, c->name);
  // Read in a mail program, far from the API: absolute, from --public-url.
  std::string link = fmt::format("{}/api/creators/{}/images", ctx.services.public_url, c->id);
  std::string job_link = fmt::format("{}/api/jobs/{}", ctx.services.public_url, ctx.job.id);
  e.text = fmt::format("Hello {},\n\ncreatord made {} new images for you ({} avatars, {} banners and their "
                       "thumbnails).\nThey are listed at {}\n\nThe job: {}\n",
                       c->name, count, summary.at("avatars").as_array().size(), summary.at("banners").as_array().size(),
                       link, job_link);
  std::string safe_name;
  for (char ch : c->name) {
    if (ch == '<') safe_name += "&lt;";
    else if (ch == '>') safe_name += "&gt;";
    else if (ch == '&') safe_name += "&amp;";
    else if (ch == '"') safe_name += "&quot;";
    else safe_name += ch;
  }
  e.html = fmt::format("<p>Hello {},</p><p>creatord made <b>{}</b> new images for you.</p><p>They are listed at "
                       "<a href=\"{}\">{}</a>.</p><p>The job: <a href=\"{}\">{}</a></p>",
                       safe_name, count, link, link, job_link, job_link);
  auto accepted = co_await ctx.services.outbox->accept(std::move(e));
  if (!accepted) co_return step_error(accepted.error(), ctx.cancel);
  co_return json::value(json::object{{"email_id", accepted->email.id}});
}

asio::awaitable<StepResult> sleep_step(StepContext& ctx) {
  int64_t total = param_int(ctx.params, "sleep_ms", 1000);
  asio::steady_timer t(co_await asio::this_coro::executor);
  for (int64_t slept = 0; slept < total; slept += 50) {
    if (ctx.cancel.requested()) co_return StepError{"cancelled", false};
    t.expires_after(std::chrono::milliseconds(std::min<int64_t>(50, total - slept)));
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
    ctx.progress(static_cast<double>(slept + 50) / std::max<int64_t>(total, 1), "");
  }
  co_return json::value(json::object{{"slept_ms", total}});
}

asio::awaitable<StepResult> flaky_step(StepContext& ctx) {
  int64_t until = param_int(ctx.params, "fail_until_attempt", 0);
  if (ctx.job.attempt < until)
    co_return StepError{fmt::format("failing on purpose (attempt {} of the {} asked for)", ctx.job.attempt, until), true};
  co_return json::value(json::object{{"attempt", ctx.job.attempt}});
}

}  // namespace

void add_builtin_pipelines(PipelineRegistry& registry) {
  Pipeline gen;
  gen.name = "generate";
  gen.description = "Render a creator's avatars and banners from their name and tags, make thumbnails, "
                    "store them all as the creator's images, summarize, and email the creator";
  gen.max_workers = 2;
  gen.queue = "generate";
  gen.steps = {
      {"load_creator", {}, load_creator},
      {"render_avatar", {"load_creator"}, [](StepContext& c) { return render_step(c, render::ArtKind::avatar); }},
      {"render_banner", {"load_creator"}, [](StepContext& c) { return render_step(c, render::ArtKind::banner); }},
      {"thumbnails", {"render_avatar", "render_banner"}, thumbnails},
      {"summarize", {"thumbnails"}, summarize},
      {"notify", {"summarize"}, notify},
  };
  gen.result_step = "summarize";
  (void)registry.add(std::move(gen));

  Pipeline diag;
  diag.name = "diagnostic";
  diag.description = "Sleeps sleep_ms (cancellable), then fails until attempt fail_until_attempt";
  diag.max_workers = 1;
  diag.queue = "generate";  // it checks the generate path end to end
  diag.steps = {{"sleep", {}, sleep_step}, {"flaky", {"sleep"}, flaky_step}};
  (void)registry.add(std::move(diag));
}

Result<json::object> parse_generate_params(const json::value& v) {
  json::object out;
  if (v.is_null()) return out;
  if (!v.is_object()) return Error::make(ErrorCode::validation, "params must be an object", "params");
  struct Range {
    const char* key;
    int64_t lo, hi;
  };
  static constexpr Range kRanges[] = {
      {"variants", 1, 16},         {"avatar_size", 16, 4096}, {"banner_width", 16, 8192}, {"banner_height", 16, 4096},
      {"thumb_size", 16, 1024},    {"detail", 0, 200000},     {"seed", INT32_MIN, INT32_MAX}, {"sleep_ms", 0, 3600000},
      {"fail_until_attempt", 0, 100},
  };
  for (const auto& kv : v.get_object()) {
    const Range* r = nullptr;
    for (const auto& k : kRanges)
      if (kv.key() == k.key) r = &k;
    std::string field = "params." + std::string(kv.key());
    if (!r) return Error::make(ErrorCode::validation, "unknown parameter " + std::string(kv.key()), field);
    if (!kv.value().is_int64())
      return Error::make(ErrorCode::validation, field + " must be an integer", field);
    int64_t x = kv.value().as_int64();
    if (x < r->lo || x > r->hi)
      return Error::make(ErrorCode::validation, fmt::format("{} must be from {} to {}", field, r->lo, r->hi), field);
    out[kv.key()] = x;
  }
  return out;
}

Status check_generate_work(const json::object& params, const GenerateLimits& limits) {
  int64_t variants = param_int(params, "variants", 3);
  int64_t avatar = param_int(params, "avatar_size", 1024);
  int64_t pixels = variants * (avatar * avatar + param_int(params, "banner_width", 1500) * param_int(params, "banner_height", 500));
  int64_t shapes = variants * param_int(params, "detail", 6000);
  if (limits.max_pixels > 0 && pixels > limits.max_pixels)
    return Error::make(ErrorCode::validation,
                       fmt::format("params ask for {} pixels (variants × (avatar_size² + banner_width × banner_height)); "
                                   "this server allows {}",
                                   pixels, limits.max_pixels),
                       "params");
  if (limits.max_shapes > 0 && shapes > limits.max_shapes)
    return Error::make(ErrorCode::validation,
                       fmt::format("params ask for {} shapes (variants × detail); this server allows {}", shapes, limits.max_shapes),
                       "params");
  return ok_status();
}

JobHandler pipeline_job_handler(const PipelineRegistry& registry, queue::JobQueue& jobs, Services& services) {
  return [&registry, &jobs, &services](JobRun& run) -> asio::awaitable<JobOutcome> {
    const auto& payload = run.job.payload;
    std::string name = run.job.kind;
    json::object params;
    int max_workers = 0;
    if (payload.is_object()) {
      const auto& o = payload.get_object();
      if (auto it = o.find("pipeline"); it != o.end() && it->value().is_string()) name = it->value().as_string();
      if (auto it = o.find("params"); it != o.end() && it->value().is_object()) params = it->value().as_object();
      if (auto it = o.find("max_workers"); it != o.end() && it->value().is_int64())
        max_workers = static_cast<int>(it->value().as_int64());
    }
    const Pipeline* p = registry.find(name);
    if (!p) co_return JobOutcome{JobOutcome::Kind::failed, nullptr, "unknown pipeline " + name, false};
    if (max_workers <= 0) max_workers = p->max_workers;
    // Resume: steps that succeeded in an earlier attempt keep their outputs.
    std::map<std::string, json::value> done;
    auto full = co_await jobs.get_job(run.job.id);
    if (!full) co_return JobOutcome{JobOutcome::Kind::failed, nullptr, full.error().message, true};
    for (const auto& s : full->steps)
      if (s.state == "succeeded") done[s.name] = s.output;
    // Built first: no temporaries in the co_await expression (GCC 12 coroutine bugs).
    auto pipeline = run_pipeline(*p, run.job, params, std::clamp(max_workers, 1, 16), std::move(done), run.cancel,
                                 services, run.record);
    co_return co_await std::move(pipeline);
  };
}

JobHandler noop_job_handler() {
  return [](JobRun&) -> asio::awaitable<JobOutcome> {
    co_return JobOutcome{JobOutcome::Kind::succeeded, json::object{}, "", false};
  };
}

}  // namespace creatord
