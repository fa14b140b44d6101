// The OpenAPI document against the router, and the metrics' exposition.
#include <filesystem>
#include <set>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "api/errors.hpp"
#include "api/observe.hpp"
#include "core/blocking_pool.hpp"
#include "domain/creator.hpp"
#include "mail/email.hpp"
#include "metrics/exposition.hpp"
#include "metrics/histogram.hpp"
#include "metrics/http_metrics.hpp"
#include "metrics/job_metrics.hpp"
#include "store/blob_store.hpp"
#include "store/sqlite/sqlite_store.hpp"

using namespace creatord;
namespace json = boost::json;

namespace {

// The router exactly as `creatord serve` builds it (with /metrics on the main listener).
class ServedRoutes : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) / ("observe_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    SqliteOptions o;
    o.path = (dir_ / "creatord.db").string();
    auto s = SqliteStore::open(o);
    ASSERT_TRUE(s) << s.error().message;
    store_ = std::move(s.value());
    blobs_ = std::make_unique<FileBlobStore>(dir_ / "blobs");
    ctx_ = std::make_unique<api::Context>(api::Context{*store_, *blobs_, files_, PagingLimits{}});
    api::add_api_routes(router_, *ctx_);
    api::add_metrics_route(router_, *ctx_, sources_, false);
    api::add_ui_routes(router_);
  }
  void TearDown() override {
    if (store_) store_->close();
    files_.stop();
    std::filesystem::remove_all(dir_);
  }

  std::filesystem::path dir_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<FileBlobStore> blobs_;
  BlockingPool files_{"files", 1, 16};
  std::unique_ptr<api::Context> ctx_;
  api::MetricsSources sources_;
  http::Router router_;
};

http::Handler noop() {
  return [](http::Request&) -> boost::asio::awaitable<http::Response> { co_return http::Response::empty(204); };
}

}  // namespace

TEST_F(ServedRoutes, EveryRouteIsInTheOpenApiDocumentAndViceVersa) {
  auto doc = api::openapi_document();
  ASSERT_TRUE(doc.is_object()) << "web/openapi.json is not compiled in, or is not JSON";
  EXPECT_EQ(doc.at("openapi").as_string(), "3.1.0");
  auto problems = api::openapi_mismatches(router_.routes(), doc);
  std::string all;
  for (const auto& p : problems) all += p + "\n";
  EXPECT_TRUE(problems.empty()) << all;
  EXPECT_GE(router_.size(), 25u);
}

TEST(OpenApi, MismatchesAreNamed) {
  http::Router r;
  r.add(http::Method::get, "/a", noop(), {.query = {"limit", "typo"}});
  r.add(http::Method::post, "/b", noop(), {.token_required = true});
  auto doc = json::parse(R"({"paths": {
      "/a": {"get": {"x-scope": "read", "security": [{"apiKey": []}, {}],
                     "parameters": [{"name": "limit", "in": "query"}, {"name": "q", "in": "query"}]}},
      "/c": {"get": {}}}})");
  auto problems = api::openapi_mismatches(r.routes(), doc);
  std::set<std::string> got(problems.begin(), problems.end());
  EXPECT_TRUE(got.count("GET /a: query parameter typo is not in the document"));
  EXPECT_TRUE(got.count("GET /a: the document's query parameter q is not the route's"));
  EXPECT_TRUE(got.count("POST /b: routed but not in the document"));
  EXPECT_TRUE(got.count("get /c: in the document but not routed"));
  EXPECT_EQ(problems.size(), 4u);
}

TEST(OpenApi, TokenRequirementMustMatch) {
  http::Router r;
  r.add(http::Method::get, "/a", noop(), {.token_required = true});
  auto doc = json::parse(R"({"paths": {"/a": {"get": {"x-scope": "read", "security": [{"apiKey": []}]}}}})");
  auto problems = api::openapi_mismatches(r.routes(), doc);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("needs a token"), std::string::npos);
}

TEST(OpenApi, ScopesAndSecurityMustMatch) {
  http::Router r;
  r.add(http::Method::post, "/a", noop(), {.scope = "generate"});
  r.add(http::Method::get, "/b", noop(), {.scope = "public"});
  r.add(http::Method::del, "/c", noop());
  auto doc = json::parse(R"({"paths": {"/a": {"post": {"x-scope": "write", "security": [{"apiKey": []}]}},
                                       "/b": {"get": {"x-scope": "public", "security": [{"apiKey": []}]}},
                                       "/c": {"delete": {"x-scope": "write", "security": [{"apiKey": []}]}}}})");
  auto problems = api::openapi_mismatches(r.routes(), doc);
  std::set<std::string> got(problems.begin(), problems.end());
  EXPECT_TRUE(got.count("POST /a: the route needs scope 'generate'; the document's x-scope says 'write'"));
  EXPECT_TRUE(got.count("GET /b: security must be [] exactly when the route is public"));
  EXPECT_EQ(problems.size(), 2u) << "DELETE defaults to the write scope";
}

TEST(OpenApi, EventNamesAreTheQueuesOwn) {
  auto doc = api::openapi_document();
  const auto& content = doc.at_pointer("/paths/~1api~1jobs~1{id}~1events/get/responses/200/content/text~1event-stream");
  std::set<std::string> documented;
  for (const auto& e : content.at("x-events").as_array()) documented.insert(std::string(e.as_string()));
  std::set<std::string> actual{job_event::queued,  job_event::scheduled,        job_event::started,
                               job_event::retrying, job_event::finished,        job_event::released,
                               job_event::cancel_requested, job_event::step_started, job_event::step_progress,
                               job_event::step_finished};
  EXPECT_EQ(documented, actual);
}

TEST(OpenApi, ErrorCodesAreTheApisOwn) {
  auto doc = api::openapi_document();
  std::set<std::string> documented;
  for (const auto& c : doc.at_pointer("/components/schemas/Error/properties/error/properties/code/enum").as_array())
    documented.insert(std::string(c.as_string()));
  for (int c = 0; c <= static_cast<int>(ErrorCode::unavailable); ++c) {
    std::string name(api::code_name(static_cast<ErrorCode>(c)));
    EXPECT_TRUE(documented.count(name)) << name << " is not in the Error schema's code enum";
  }
}

TEST(OpenApi, ValidationLimitsMatchTheDomain) {
  auto doc = api::openapi_document();
  auto schema = [&](std::string_view p) { return doc.at_pointer(std::string("/components/schemas/") + std::string(p)); };
  EXPECT_EQ(schema("CreatorName/maxLength").to_number<int64_t>(), static_cast<int64_t>(limits::kNameMax));
  EXPECT_EQ(schema("CreatorHandle/maxLength").to_number<int64_t>(), static_cast<int64_t>(limits::kHandleMax));
  EXPECT_EQ(schema("CreatorEmail/maxLength").to_number<int64_t>(), static_cast<int64_t>(limits::kEmailMax));
  EXPECT_EQ(schema("CreatorBio/maxLength").to_number<int64_t>(), static_cast<int64_t>(limits::kBioMax));
  EXPECT_EQ(schema("CreatorTags/maxItems").to_number<int64_t>(), static_cast<int64_t>(limits::kTagsMax));
  EXPECT_EQ(schema("CreatorTags/items/maxLength").to_number<int64_t>(), static_cast<int64_t>(limits::kTagMax));
  MailLimits mail;
  EXPECT_EQ(schema("SendEmailRequest/properties/subject/maxLength").to_number<int64_t>(),
            static_cast<int64_t>(mail.max_subject_chars));
}

TEST(Exposition, EscapesLabelValuesAndFormatsNumbers) {
  EXPECT_EQ(metrics::escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  EXPECT_EQ(metrics::format_value(3), "3");
  EXPECT_EQ(metrics::format_value(0.25), "0.25");
  metrics::Exposition out;
  out.family("x_total", "counter", "Things.");
  out.sample("x_total", {{"route", "/api/creators/{id}"}, {"method", "GET"}}, uint64_t{7});
  EXPECT_EQ(out.text(), "# HELP x_total Things.\n# TYPE x_total counter\nx_total{route=\"/api/creators/{id}\",method=\"GET\"} 7\n");
}

TEST(Exposition, HistogramBucketsAreCumulative) {
  metrics::Bounds bounds{0.1, 1};
  metrics::Histogram h(bounds);
  h.observe(std::chrono::milliseconds(50));
  h.observe(std::chrono::milliseconds(100));  // le="0.1" holds 0.1 itself
  h.observe(std::chrono::milliseconds(500));
  h.observe(std::chrono::seconds(3));
  metrics::Exposition out;
  out.histogram("d_seconds", {{"q", "a"}}, bounds, h.snapshot());
  EXPECT_EQ(out.text(),
            "d_seconds_bucket{q=\"a\",le=\"0.1\"} 2\n"
            "d_seconds_bucket{q=\"a\",le=\"1\"} 3\n"
            "d_seconds_bucket{q=\"a\",le=\"+Inf\"} 4\n"
            "d_seconds_sum{q=\"a\"} 3.65\n"
            "d_seconds_count{q=\"a\"} 4\n");
}

TEST(HttpMetrics, CountsByRouteTemplateMethodAndStatusClass) {
  metrics::HttpMetrics m({"/api/creators", "/api/creators/{id}"});
  m.request_answered(1, http::Method::get, 200, std::chrono::milliseconds(2));
  m.request_answered(1, http::Method::get, 404, std::chrono::milliseconds(1));
  m.request_answered(-1, http::Method::get, 404, std::chrono::microseconds(10));
  m.request_answered(0, http::Method::post, 503, std::chrono::milliseconds(1));
  m.connection_opened();
  m.stream_opened();
  metrics::Exposition out;
  m.write(out);
  const std::string& t = out.text();
  EXPECT_NE(t.find("creatord_http_requests_total{route=\"/api/creators/{id}\",method=\"GET\",status=\"2xx\"} 1\n"), std::string::npos) << t;
  EXPECT_NE(t.find("creatord_http_requests_total{route=\"/api/creators/{id}\",method=\"GET\",status=\"4xx\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("creatord_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"4xx\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("creatord_http_request_duration_seconds_count{route=\"/api/creators/{id}\",method=\"GET\"} 2\n"), std::string::npos);
  EXPECT_NE(t.find("creatord_http_unavailable_responses_total 1\n"), std::string::npos);
  EXPECT_NE(t.find("creatord_http_connections_open 1\n"), std::string::npos);
  EXPECT_NE(t.find("creatord_sse_streams_open 1\n"), std::string::npos);
  EXPECT_EQ(t.find("route=\"/api/creators\",method=\"GET\""), std::string::npos);  // nothing recorded: no series
}

TEST(JobMetrics, RunsStepsAndWaits) {
  metrics::JobMetrics m;
  Job job;
  job.id = 7;
  job.kind = "generate";
  job.queue = "generate";
  job.created_at_ms = 1000;
  job.run_at_ms = 1000;
  m.claimed(job, 1500);
  m.step_recorded(StepUpdate{7, 1, "render", StepUpdate::Kind::started}, 1600);
  m.step_recorded(StepUpdate{7, 1, "render", StepUpdate::Kind::succeeded}, 3600);
  m.finished(job, queue::RunOutcome::Kind::succeeded, 4500);
  metrics::Exposition out;
  m.write(out);
  const std::string& t = out.text();
  EXPECT_NE(t.find("creatord_job_runs_finished_total{pipeline=\"generate\",outcome=\"succeeded\"} 1\n"), std::string::npos) << t;
  EXPECT_NE(t.find("creatord_job_run_duration_seconds_sum{pipeline=\"generate\"} 3\n"), std::string::npos);
  EXPECT_NE(t.find("creatord_job_step_duration_seconds_sum{pipeline=\"generate\",step=\"render\"} 2\n"), std::string::npos);
  EXPECT_NE(t.find("creatord_job_queue_wait_seconds_sum{queue=\"generate\"} 0.5\n"), std::string::npos);
}
