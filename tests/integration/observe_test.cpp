// What the service says about itself, from the real binary: the OpenAPI document and Swagger UI
// served from the binary, and /metrics (checked by promtool) with its token rules.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "harness.hpp"

using namespace harness;
using namespace std::chrono_literals;

namespace {

const std::string kToken = "observe-token-0123456789";

Server::Options with_token(std::vector<std::string> args = {}) {
  return Server::Options{.args = std::move(args), .env = {{"CREATORD_API_TOKENS", kToken}}};
}

// Runs promtool check metrics on the text; returns its exit status and output.
std::pair<int, std::string> promtool_check(const std::string& text) {
  auto file = std::filesystem::path(temp_dir("promtool")) / "metrics.txt";
  std::ofstream(file) << text;
  auto r = run_command("promtool check metrics < " + file.string() + " 2>&1");
  std::filesystem::remove_all(file.parent_path());
  return {r.rc, r.out};
}

// The value of the first sample line that starts with `series` (name and labels), or -1.
double sample(const std::string& text, const std::string& series) {
  auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

std::string fmt_percent(unsigned char c) {
  char buf[4];
  std::snprintf(buf, sizeof buf, "%%%02X", c);
  return buf;
}

// Every creatord_* metric family a file in deploy/ names.
std::set<std::string> families_named_in(const std::string& file) {
  std::ifstream in(std::string(DEPLOY_DIR) + "/" + file);
  std::stringstream text;
  text << in.rdbuf();
  std::set<std::string> out;
  std::string s = text.str();
  std::regex name("creatord_[a-z_]+");
  for (auto it = std::sregex_iterator(s.begin(), s.end(), name); it != std::sregex_iterator(); ++it) {
    std::string n = it->str();
    for (std::string suffix : {"_bucket", "_sum", "_count"})
      if (n.size() > suffix.size() && n.ends_with(suffix)) n.resize(n.size() - suffix.size());
    out.insert(n);
  }
  return out;
}

}  // namespace

TEST(Observe, OpenApiDocumentIsServed) {
  Server s;
  auto r = get(s.port(), "/openapi.json");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-type"), "application/json");
  auto doc = r.json();
  EXPECT_EQ(doc.at("openapi").as_string(), "3.1.0");
  EXPECT_TRUE(doc.at("paths").as_object().contains("/api/creators/{id}/generate"));
  EXPECT_EQ(doc.at_pointer("/components/securitySchemes/apiKey/scheme").as_string(), "bearer");
}

TEST(Observe, SwaggerUiIsServedFromTheBinary) {
  Server s;
  auto page = get(s.port(), "/docs");
  ASSERT_EQ(page.status, 200);
  EXPECT_EQ(page.header("content-type"), "text/html; charset=utf-8");
  EXPECT_NE(page.body.find("/docs/swagger-ui-bundle.js"), std::string::npos);
  EXPECT_EQ(page.body.find("http"), std::string::npos) << "the page must load nothing from elsewhere";
  auto bundle = get(s.port(), "/docs/swagger-ui-bundle.js");
  ASSERT_EQ(bundle.status, 200);
  EXPECT_GT(bundle.body.size(), 500'000u);
  EXPECT_EQ(bundle.header("content-type"), "text/javascript; charset=utf-8");
  auto init = get(s.port(), "/docs/init.js");
  ASSERT_EQ(init.status, 200);
  EXPECT_NE(init.body.find("\"/openapi.json\""), std::string::npos);
  EXPECT_EQ(get(s.port(), "/docs/swagger-ui.css").status, 200);
  EXPECT_EQ(get(s.port(), "/docs/nothing.js").status, 404);
}

// The dashboard: / redirects to it, its page names content-hashed files that are cached for good,
// everything carries the strict policy, and --ui=false leaves none of it.
TEST(Observe, DashboardIsServedFromTheBinary) {
  Server s;
  auto root = get(s.port(), "/");
  ASSERT_EQ(root.status, 302);
  EXPECT_EQ(root.header("location"), "/ui/");
  auto page = get(s.port(), "/ui/");
  ASSERT_EQ(page.status, 200);
  EXPECT_EQ(page.header("content-type"), "text/html; charset=utf-8");
  EXPECT_EQ(page.header("cache-control"), "no-cache");
  std::string csp = page.header("content-security-policy");
  EXPECT_NE(csp.find("default-src 'none'"), std::string::npos) << csp;
  EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("unsafe"), std::string::npos) << csp;
  EXPECT_EQ(page.body.find("http"), std::string::npos) << "the page must load nothing from elsewhere";
  EXPECT_EQ(get(s.port(), "/ui").body, page.body);
  // The script the page names: /ui/main-<hash>.js.
  auto at = page.body.find("src=\"/ui/main-");
  ASSERT_NE(at, std::string::npos) << page.body;
  auto from = at + 5;
  std::string script = page.body.substr(from, page.body.find('"', from) - from);
  auto js = get(s.port(), script);
  ASSERT_EQ(js.status, 200) << script;
  EXPECT_EQ(js.header("content-type"), "text/javascript; charset=utf-8");
  EXPECT_EQ(js.header("cache-control"), "public, max-age=31536000, immutable");
  EXPECT_EQ(js.header("content-security-policy"), csp);
  EXPECT_GT(js.body.size(), 5'000u);
  EXPECT_LT(js.body.size(), 150'000u) << "the whole dashboard is meant to stay a few tens of KB";
  EXPECT_EQ(get(s.port(), "/ui/main-00000000.js").status, 404);

  Server off(Server::Options{.args = {"--ui=false"}});
  EXPECT_EQ(get(off.port(), "/").status, 404);
  EXPECT_EQ(get(off.port(), "/ui/").status, 404);
  EXPECT_EQ(get(off.port(), script).status, 404);
  EXPECT_EQ(get(off.port(), "/api/creators").status, 200);
}

TEST(Observe, MetricsPassPromtoolAndCountByRouteTemplate) {
  Server s;
  for (int i = 0; i < 3; ++i) ASSERT_EQ(get(s.port(), "/api/creators/999999").status, 404);
  ASSERT_EQ(get(s.port(), "/api/creators?limit=1").status, 200);
  ASSERT_EQ(get(s.port(), "/no/such/path").status, 404);
  auto created = post_json(s.port(), "/api/creators", R"({"name":"Metric Maker","handle":"metricmaker"})");
  ASSERT_EQ(created.status, 201);
  auto id = created.json().at("id").as_int64();
  auto job = post_json(s.port(), "/api/creators/" + std::to_string(id) + "/generate",
                       R"({"pipeline":"diagnostic","params":{"sleep_ms":10}})");
  ASSERT_EQ(job.status, 202);
  wait_job(s.port(), job.json().at("id").as_int64(), [](const auto& j) { return job_in(j, {"succeeded"}); });

  auto r = get(s.port(), "/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  auto [rc, out] = promtool_check(r.body);
  EXPECT_EQ(rc, 0) << out << "\n" << r.body;
  const auto& t = r.body;
  EXPECT_EQ(sample(t, R"(creatord_http_requests_total{route="/api/creators/{id}",method="GET",status="4xx"})"), 3) << t;
  EXPECT_EQ(sample(t, R"(creatord_http_requests_total{route="/api/creators",method="GET",status="2xx"})"), 1);
  EXPECT_EQ(sample(t, R"(creatord_http_requests_total{route="unmatched",method="GET",status="4xx"})"), 1);
  EXPECT_EQ(sample(t, R"(creatord_http_request_duration_seconds_count{route="/api/creators/{id}",method="GET"})"), 3);
  EXPECT_EQ(sample(t, "creatord_http_requests_in_flight"), 1);  // this scrape
  EXPECT_GE(sample(t, "creatord_http_connections_open"), 1);
  EXPECT_EQ(sample(t, R"(creatord_job_runs_finished_total{pipeline="diagnostic",outcome="succeeded"})"), 1);
  EXPECT_EQ(sample(t, R"(creatord_job_run_duration_seconds_count{pipeline="diagnostic"})"), 1);
  EXPECT_EQ(sample(t, R"(creatord_queue_jobs{queue="generate",state="queued"})"), 0);
  EXPECT_EQ(sample(t, R"(creatord_queue_jobs_finished_last_hour{queue="generate",state="succeeded"})"), 1);
  EXPECT_EQ(sample(t, "creatord_store_up"), 1);
  EXPECT_GT(sample(t, "process_resident_memory_bytes"), 1e6);
  EXPECT_GT(sample(t, "process_open_fds"), 3);
  EXPECT_GT(sample(t, "process_start_time_seconds"), 1.7e9);
  EXPECT_NE(t.find("creatord_build_info{version=\""), std::string::npos);
  // The blocking pools and the store's own queue.
  EXPECT_EQ(sample(t, R"(creatord_pool_threads{pool="files"})"), 4) << t;
  EXPECT_EQ(sample(t, R"(creatord_pool_rejected_total{pool="files"})"), 0);
  if (testing_postgres()) {
    EXPECT_GE(sample(t, R"(creatord_database_connections{state="max"})"), 1) << t;
    EXPECT_EQ(sample(t, "creatord_database_pool_timeouts_total"), 0);
    EXPECT_GE(sample(t, R"(creatord_store_wait_seconds_count{resource="postgresql_connection"})"), 5) << t;
    EXPECT_GE(sample(t, R"(creatord_store_hold_seconds_count{resource="postgresql_connection"})"), 5) << t;
  } else {
    EXPECT_GE(sample(t, R"(creatord_pool_wait_seconds_count{pool="sqlite-read"})"), 1) << t;
    EXPECT_EQ(sample(t, "creatord_store_write_queue_length"), 0);
    // The creator, the job's insert, claim, steps and end: each waited for the writer.
    EXPECT_GE(sample(t, R"(creatord_store_wait_seconds_count{resource="sqlite_writer"})"), 4) << t;
    EXPECT_GE(sample(t, R"(creatord_store_hold_seconds_count{resource="sqlite_writer"})"), 1) << t;
  }
}

TEST(Observe, EmailsByStateAndDeliveryAttemptsAreCounted) {
  std::string tempfail = temp_dir("tempfail") + "/on";
  { std::ofstream(tempfail) << "1"; }
  SmtpServer smtp({"--reject", "nobody", "--tempfail", tempfail});
  Server s(with_token({"--smtp-url", "smtp://127.0.0.1:" + std::to_string(smtp.port()), "--job-retry-base", "0.05",
                      "--job-retry-cap", "0.2", "--job-poll", "0.2"}));
  const Headers auth = {{"Authorization", "Bearer " + kToken}};
  auto metrics = [&] {
    auto r = get(s.port(), "/metrics", auth);
    EXPECT_EQ(r.status, 200);
    return r.body;
  };
  auto t = metrics();
  for (const char* state : {"queued", "sending", "sent", "failed"})
    EXPECT_EQ(sample(t, std::string("creatord_emails{state=\"") + state + "\"}"), 0) << t;

  auto send = [&](const std::string& to) {
    auto r = post_json(s.port(), "/api/send-email", R"({"to":")" + to + R"(","subject":"x","text":"y"})", auth);
    EXPECT_EQ(r.status, 202) << r.body;
  };
  send("nobody@example.com");    // 550: failed at once
  send("somebody@example.com");  // 451 while the file exists, then sent
  auto wait_for = [&](const std::string& series, double at_least) {
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (sample(t = metrics(), series) < at_least && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(50ms);
    return sample(t, series);
  };
  EXPECT_GE(wait_for(R"(creatord_email_delivery_attempts_total{result="retried"})", 1), 1) << t;
  EXPECT_EQ(wait_for(R"(creatord_emails{state="failed"})", 1), 1) << t;
  std::filesystem::remove(tempfail);
  EXPECT_EQ(wait_for(R"(creatord_emails{state="sent"})", 1), 1) << t;
  EXPECT_EQ(sample(t, R"(creatord_email_delivery_attempts_total{result="sent"})"), 1) << t;
  EXPECT_EQ(sample(t, R"(creatord_email_delivery_attempts_total{result="failed"})"), 1) << t;
  EXPECT_EQ(sample(t, R"(creatord_emails{state="queued"})"), 0) << t;
  auto [rc, out] = promtool_check(t);
  EXPECT_EQ(rc, 0) << out;
}

TEST(Observe, DashboardAndAlertsNameOnlyMetricsThatExist) {
  Server s;
  ASSERT_EQ(get(s.port(), "/api/creators").status, 200);
  auto r = get(s.port(), "/metrics");
  ASSERT_EQ(r.status, 200);
  for (const char* file : {"grafana-dashboard.json", "prometheus-rules.yml"}) {
    auto names = families_named_in(file);
    EXPECT_GT(names.size(), 5u) << file;
    for (const auto& n : names)
      EXPECT_NE(r.body.find("# TYPE " + n + " "), std::string::npos) << file << " names " << n << ", which /metrics lacks";
  }
}

TEST(Observe, MetricsNeedATokenWhenTokensAreConfigured) {
  Server s(with_token());
  EXPECT_EQ(get(s.port(), "/metrics").status, 401);
  EXPECT_EQ(get(s.port(), "/metrics", {{"Authorization", "Bearer " + kToken}}).status, 200);
  EXPECT_EQ(get(s.port(), "/api/creators").status, 200);  // reads stay open
}

TEST(Observe, MetricsPublicServesThemWithoutAToken) {
  Server s(with_token({"--metrics-public"}));
  EXPECT_EQ(get(s.port(), "/metrics").status, 200);
}

TEST(Observe, MetricsListenMovesThemToAnAddressOfTheirOwn) {
  uint16_t port = free_port();
  Server s(with_token({"--metrics-listen", "127.0.0.1:" + std::to_string(port)}));
  EXPECT_EQ(get(s.port(), "/metrics", {{"Authorization", "Bearer " + kToken}}).status, 404);
  ASSERT_EQ(get(s.port(), "/api/creators").status, 200);
  // A request is counted once its answer has been written, which may be just after the client
  // has read it: look again for a while.
  const std::string series = R"(creatord_http_requests_total{route="/api/creators",method="GET",status="2xx"})";
  Response r;
  for (auto deadline = std::chrono::steady_clock::now() + 5s; std::chrono::steady_clock::now() < deadline;) {
    r = get(port, "/metrics");
    ASSERT_EQ(r.status, 200);
    if (sample(r.body, series) >= 1) break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(sample(r.body, series), 1);
  EXPECT_EQ(s.stop(), 0);
}

TEST(Observe, MetricsOffAnswers404) {
  Server s(Server::Options{.args = {"--metrics=false"}});
  EXPECT_EQ(get(s.port(), "/metrics").status, 404);
}

// A real Prometheus server (Debian's prometheus) scrapes /metrics with the bearer token: the
// target is up, and the series it stored are the ones creatord exposes, with their values.
TEST(Observe, ARealPrometheusScrapesTheMetrics) {
  Server s(with_token());
  ASSERT_EQ(get(s.port(), "/api/creators?limit=1").status, 200);
  std::string dir = temp_dir("prometheus");
  uint16_t web = free_port();
  std::ofstream(dir + "/prometheus.yml") << "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n"
                                         << "scrape_configs:\n  - job_name: creatord\n"
                                         << "    authorization:\n      credentials: " << kToken << "\n"
                                         << "    static_configs:\n      - targets: ['127.0.0.1:" << s.port() << "']\n";
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::string log = dir + "/prometheus.log";
    std::freopen(log.c_str(), "w", stdout);
    std::freopen(log.c_str(), "a", stderr);
    std::string config = "--config.file=" + dir + "/prometheus.yml", storage = "--storage.tsdb.path=" + dir + "/data",
                listen = "--web.listen-address=127.0.0.1:" + std::to_string(web);
    ::execlp("prometheus", "prometheus", config.c_str(), storage.c_str(), listen.c_str(), static_cast<char*>(nullptr));
    std::_Exit(127);
  }
  struct Reaper {
    pid_t pid;
    ~Reaper() {
      ::kill(pid, SIGTERM);
      int st;
      ::waitpid(pid, &st, 0);
    }
  } reaper{pid};
  // The value of the first sample of an instant query, or "" while there is none.
  auto query = [&](const std::string& q) -> std::string {
    std::string encoded;
    for (unsigned char c : q) {
      if (std::isalnum(c) || c == '_') encoded += static_cast<char>(c);
      else encoded += fmt_percent(c);
    }
    auto r = get(web, "/api/v1/query?query=" + encoded);
    if (r.status != 200) return "";
    auto v = r.json();
    const auto& result = v.at("data").at("result").as_array();
    if (result.empty()) return "";
    return std::string(result.at(0).at("value").as_array().at(1).as_string());
  };
  std::string up;
  for (int i = 0; i < 300 && up != "1"; ++i) {
    std::this_thread::sleep_for(100ms);
    up = query(R"(up{job="creatord"})");
  }
  std::ifstream log(dir + "/prometheus.log");
  std::stringstream log_text;
  log_text << log.rdbuf();
  ASSERT_EQ(up, "1") << "Prometheus never scraped creatord successfully:\n" << log_text.str();
  EXPECT_EQ(query(R"(creatord_http_requests_total{route="/api/creators",method="GET",status="2xx"})"), "1");
  EXPECT_EQ(query("creatord_store_up"), "1");
  EXPECT_NE(query("count(creatord_build_info)"), "");
  // A scrape's own request shows in the next one.
  std::string scrapes;
  for (int i = 0; i < 100 && scrapes.empty(); ++i) {
    scrapes = query(R"(creatord_http_request_duration_seconds_bucket{route="/metrics",method="GET",le="+Inf"})");
    if (scrapes.empty()) std::this_thread::sleep_for(100ms);
  }
  EXPECT_NE(scrapes, "");
  std::filesystem::remove_all(dir);
}

namespace {

size_t occurrences(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

}  // namespace

// Access lines are written by a background thread; a clean shutdown writes every one.
TEST(Observe, EveryAccessLineIsWrittenByACleanShutdown) {
  Server s;
  constexpr int kRequests = 2000;
  Conn c(s.port());
  for (int i = 0; i < kRequests; ++i) {
    auto r = c.request("GET", "/healthz", "", {{"X-Request-Id", "line-" + std::to_string(i) + "-end"}});
    ASSERT_EQ(r.status, 200);
  }
  EXPECT_EQ(s.stop(), 0);
  std::string out = s.output();
  for (int i = 0; i < kRequests; ++i)
    ASSERT_EQ(occurrences(out, "\"request_id\":\"line-" + std::to_string(i) + "-end\""), 1u) << "request " << i;
}

// Lines that do not fit the thread's buffer are dropped and counted, never waited for; with no
// buffer at all, every access line is.
TEST(Observe, DroppedAccessLinesAreCounted) {
  Server s({.args = {"--access-log-buffer", "0"}});
  Conn c(s.port());
  auto before = c.request("GET", "/metrics");
  ASSERT_EQ(before.status, 200);
  auto at = before.body.find("\ncreatord_log_dropped_lines_total ");
  ASSERT_NE(at, std::string::npos) << before.body;
  double dropped = std::stod(before.body.substr(at + 34));
  for (int i = 0; i < 25; ++i) ASSERT_EQ(c.request("GET", "/healthz").status, 200);
  auto after = c.request("GET", "/metrics").body;
  at = after.find("\ncreatord_log_dropped_lines_total ");
  ASSERT_NE(at, std::string::npos);
  EXPECT_EQ(std::stod(after.substr(at + 34)), dropped + 26);  // the first scrape's line too
  EXPECT_EQ(s.stop(), 0);
  EXPECT_EQ(s.output().find("\"msg\":\"request\""), std::string::npos);
}
