// Issue 10, defects 12 and 16: secrets and private data in public reads; quotas on work.
#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "harness.hpp"

using namespace harness;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

const std::string kToken = "security-token-0123456789abcdef";
const Headers kAuth = {{"Authorization", "Bearer " + kToken}};
// What the pipelines file takes from the environment (${STEP_API_KEY}), and a password
// written into a step URL's userinfo by hand: neither may appear anywhere a client or the log sees.
const std::string kSecret = "s3cr3t-from-the-environment-42";
const std::string kUrlPassword = "literal-url-password";

struct PipelineDir {
  std::string dir = temp_dir("security");
  std::string file = dir + "/pipelines.toml";
  explicit PipelineDir(const std::string& toml) { std::ofstream(file) << toml; }
  ~PipelineDir() { std::filesystem::remove_all(dir); }
};

// An exec step whose program prints its credential in its error (as careless tools do), and an
// http step whose URL carries the credential and URL userinfo (port 1, allowed as an internal
// target: the call is made and fails).
const std::string kLeakyPipelines =
    "[[pipeline]]\nname = \"leaky_exec\"\n"
    "  [[pipeline.step]]\n  name = \"call\"\n  type = \"exec\"\n"
    "  command = [\"/bin/sh\", \"-c\", \"echo \\\"using key=$API_KEY\\\" >&2; exit 3\"]\n"
    "  env = { API_KEY = \"${STEP_API_KEY}\" }\n"
    "[[pipeline]]\nname = \"leaky_http\"\n"
    "  [[pipeline.step]]\n  name = \"call\"\n  type = \"http\"\n"
    "  url = \"http://admin:" + kUrlPassword + "@127.0.0.1:1/v1?api_key=${STEP_API_KEY}\"\n"
    "  request_retries = 0\n"
    "  allow_internal = [\"127.0.0.1\"]\n";  // so the call is made, and fails with its URL in the error

int64_t creator(uint16_t port, const Headers& h = {}) {
  auto r = post_json(port, "/api/creators", R"({"name":"Sec Person","handle":"secperson"})", h);
  EXPECT_EQ(r.status, 201) << r.body;
  return r.json().at("id").as_int64();
}

Response generate(uint16_t port, int64_t cid, const std::string& body, const Headers& h = {}) {
  return post_json(port, "/api/creators/" + std::to_string(cid) + "/generate", body, h);
}

bool terminal(const json::value& j) { return job_in(j, {"succeeded", "failed", "cancelled"}); }

std::string events_of(uint16_t port, int64_t id, const Headers& h = {}) {
  Conn c(port);
  std::string req = build_request("GET", "/api/jobs/" + std::to_string(id) + "/events", "", h, false);
  c.send_raw(req);
  return c.read_until("event: job.finished", 10s);
}

void expect_no_secret(const std::string& where, const std::string& text) {
  EXPECT_EQ(text.find(kSecret), std::string::npos) << where << ": " << text;
  EXPECT_EQ(text.find(kUrlPassword), std::string::npos) << where << ": " << text;
}

}  // namespace

// Defect 12: a secret from ${VAR} or a URL's userinfo surfaced in step errors, last_error, events
// and the log. Without tokens (loopback demo mode) reads stay open: the job is readable in full,
// redacted.
TEST(Security, SecretsFromTheEnvironmentAndUrlCredentialsNeverSurface) {
  PipelineDir cfg(kLeakyPipelines);
  Server s({.args = {"--pipelines", cfg.file, "--job-retry-base", "0.05"}, .env = {{"STEP_API_KEY", kSecret}}});
  auto cid = creator(s.port());
  for (const char* pipeline : {"leaky_exec", "leaky_http"}) {
    auto r = generate(s.port(), cid, std::string(R"({"pipeline":")") + pipeline + R"(","max_attempts":1})");
    ASSERT_EQ(r.status, 202) << r.body;
    auto id = r.json().at("id").as_int64();
    auto done = wait_job(s.port(), id, terminal, 30s);
    ASSERT_EQ(done.at("state").as_string(), "failed") << json::serialize(done);
    ASSERT_TRUE(done.at("last_error").is_string()) << "reads stay open without tokens";
    std::string text = json::serialize(done);
    expect_no_secret(pipeline, text);
    EXPECT_NE(text.find("[redacted]"), std::string::npos) << text;
    expect_no_secret(std::string(pipeline) + " events", events_of(s.port(), id));
    expect_no_secret(std::string(pipeline) + " list", get(s.port(), "/api/jobs").body);
  }
  EXPECT_TRUE(s.wait_output("using key=[redacted]", 5s)) << "the exec step's failure is logged, redacted";
  expect_no_secret("log", s.output());
}

// Defect 12: with tokens configured, anonymous reads got job outputs, logs, errors and email jobs
// (SMTP replies, server paths). Now they get an explicit list of public fields; email jobs need a
// token.
TEST(Security, WithTokensAnonymousReadsGetOnlyPublicJobFields) {
  PipelineDir cfg(kLeakyPipelines);
  Server s({.args = {"--pipelines", cfg.file},
            .env = {{"STEP_API_KEY", kSecret}, {"CREATORD_API_TOKENS", kToken}}});
  auto cid = creator(s.port(), kAuth);
  auto r = generate(s.port(), cid, R"({"pipeline":"leaky_exec","max_attempts":1})", kAuth);
  ASSERT_EQ(r.status, 202) << r.body;
  auto id = r.json().at("id").as_int64();
  std::string path = "/api/jobs/" + std::to_string(id);
  ASSERT_EQ(wait_job(s.port(), id, terminal, 30s).at("state").as_string(), "failed");

  auto full = get(s.port(), path, kAuth).json().as_object();
  EXPECT_TRUE(full.at("last_error").is_string());
  EXPECT_TRUE(full.contains("payload"));
  EXPECT_TRUE(full.at("steps").at(0).at("error").is_string());

  auto anon = get(s.port(), path);
  ASSERT_EQ(anon.status, 200);
  json::value anon_json = anon.json();
  const auto& pub = anon_json.as_object();
  for (const char* hidden : {"last_error", "payload", "result", "idempotency_key"})
    EXPECT_FALSE(pub.contains(hidden)) << hidden << " in " << anon.body;
  for (const char* shown : {"id", "kind", "state", "attempt", "max_attempts", "created_at", "finished_at", "steps", "links"})
    EXPECT_TRUE(pub.contains(shown)) << shown << " missing from " << anon.body;
  const auto& step = pub.at("steps").at(0).as_object();
  EXPECT_EQ(step.at("state").as_string(), "failed");
  for (const char* hidden : {"error", "log", "output"}) EXPECT_FALSE(step.contains(hidden)) << hidden << " in " << anon.body;
  auto listed = get(s.port(), "/api/jobs").json().at("items").at(0).as_object();
  EXPECT_FALSE(listed.contains("last_error")) << json::serialize(listed);
  std::string events = events_of(s.port(), id);
  EXPECT_NE(events.find("event: job.finished"), std::string::npos) << events;
  EXPECT_EQ(events.find("\"error\""), std::string::npos) << events;
  EXPECT_NE(events_of(s.port(), id, kAuth).find("\"error\""), std::string::npos);

  // An email job (no SMTP server: written to the outbox folder) is the token holders' alone.
  auto sent = post_json(s.port(), "/api/send-email", R"({"to":"a@example.com","subject":"hi","text":"x"})", kAuth);
  ASSERT_EQ(sent.status, 202) << sent.body;
  auto mail_jobs = get(s.port(), "/api/jobs?kind=email", kAuth).json().at("items").as_array();
  ASSERT_EQ(mail_jobs.size(), 1u);
  std::string mail_job = "/api/jobs/" + std::to_string(mail_jobs.at(0).at("id").as_int64());
  EXPECT_EQ(get(s.port(), mail_job).status, 401);
  EXPECT_EQ(get(s.port(), mail_job + "/events").status, 401);
  EXPECT_EQ(get(s.port(), "/api/jobs?kind=email").status, 401);
  json::value anon_list = get(s.port(), "/api/jobs").json();
  for (const auto& j : anon_list.at("items").as_array())
    EXPECT_NE(j.at("kind").as_string(), "email") << "anonymous lists leave email jobs out";
  EXPECT_EQ(get(s.port(), mail_job, kAuth).status, 200);
}

// Defect 16: 2,000 jobs were accepted in seconds. The unfinished jobs of a token are capped, and
// concurrent requests cannot pass the cap together (the count and the insert are one step).
TEST(Security, UnfinishedJobsPerTokenAndPerCreatorAreCappedWith429) {
  // --run-jobs=false: every accepted job stays queued, so each one counts.
  Server s({.args = {"--run-jobs=false", "--max-unfinished-jobs-per-token", "5", "--max-unfinished-jobs-per-creator",
                     "3", "--enqueue-rate", "0"},
            .env = {{"CREATORD_API_TOKENS", kToken + ",second-token-0123456789abcdef"}}});
  std::vector<int64_t> creators;
  for (int i = 0; i < 3; ++i)
    creators.push_back(post_json(s.port(), "/api/creators",
                                 R"({"name":"Q","handle":"q)" + std::to_string(i) + "\"}", kAuth)
                           .json().at("id").as_int64());
  std::atomic<int> accepted{0}, refused{0}, other{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t)
    clients.emplace_back([&, t] {
      for (int i = 0; i < 5; ++i) {
        auto r = generate(s.port(), creators[(t + i) % 3], R"({"pipeline":"diagnostic"})", kAuth);
        if (r.status == 202) ++accepted;
        else if (r.status == 429 && r.header("retry-after") != "" && r.json().at("error").at("field").as_string() == "quota") ++refused;
        else ++other;
      }
    });
  for (auto& c : clients) c.join();
  EXPECT_EQ(accepted.load(), 5);
  EXPECT_EQ(refused.load(), 35);
  EXPECT_EQ(other.load(), 0);

  // Another token has its own count; the creator's count is shared.
  Headers second = {{"Authorization", "Bearer second-token-0123456789abcdef"}};
  std::string body = R"({"pipeline":"diagnostic"})";
  auto per_creator = [&](int64_t cid) {
    return get(s.port(), "/api/jobs?creator_id=" + std::to_string(cid), kAuth).json().at("items").as_array().size();
  };
  int64_t roomy = creators[0];
  for (auto c : creators)
    if (per_creator(c) < per_creator(roomy)) roomy = c;
  size_t before = per_creator(roomy);
  ASSERT_LT(before, 3u);
  for (size_t i = before; i < 3; ++i) EXPECT_EQ(generate(s.port(), roomy, body, second).status, 202);
  auto full = generate(s.port(), roomy, body, second);
  EXPECT_EQ(full.status, 429) << full.body;
  EXPECT_EQ(full.json().at("error").at("code").as_string(), "too_many_requests");

  // A finished job frees its place.
  auto first = get(s.port(), "/api/jobs?creator_id=" + std::to_string(roomy), kAuth).json().at("items").at(0).at("id").as_int64();
  ASSERT_EQ(request(s.port(), "POST", "/api/jobs/" + std::to_string(first) + "/cancel", "", second).status, 200);
  EXPECT_EQ(generate(s.port(), roomy, body, second).status, 202);
}

TEST(Security, TheEnqueueRateOfATokenIsLimitedWith429AndRetryAfter) {
  Server s({.args = {"--run-jobs=false", "--enqueue-rate", "1", "--enqueue-burst", "3"},
            .env = {{"CREATORD_API_TOKENS", kToken}}});
  auto cid = creator(s.port(), kAuth);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(generate(s.port(), cid, R"({"pipeline":"diagnostic"})", kAuth).status, 202);
  auto r = generate(s.port(), cid, R"({"pipeline":"diagnostic"})", kAuth);
  ASSERT_EQ(r.status, 429) << r.body;
  EXPECT_GE(std::stoi(r.header("retry-after")), 1);
  EXPECT_EQ(r.json().at("error").at("field").as_string(), "rate");
}

// Defect 16: one generate could ask for 1.5 CPU-hours, and timeout_seconds 86400 × 20 attempts
// held a slot for days.
TEST(Security, AJobCannotAskForUnboundedWorkTimeOrAttempts) {
  Server s({.args = {"--run-jobs=false"}});
  auto cid = creator(s.port());
  struct Case {
    std::string body, field;
  };
  for (const auto& c : std::vector<Case>{
           {R"({"params":{"variants":16,"avatar_size":4096,"banner_width":8192,"banner_height":4096}})", "params"},
           {R"({"params":{"variants":16,"detail":200000}})", "params"},
           {R"({"timeout_seconds":86400})", "timeout_seconds"},
           {R"({"max_attempts":20})", "max_attempts"}}) {
    auto r = generate(s.port(), cid, c.body);
    EXPECT_EQ(r.status, 422) << c.body << " -> " << r.body;
    if (r.status == 422) EXPECT_EQ(r.json().at("error").at("field").as_string(), c.field) << r.body;
  }
  EXPECT_EQ(generate(s.port(), cid, R"({"timeout_seconds":3600,"max_attempts":10})").status, 202);
  EXPECT_EQ(generate(s.port(), cid, R"({"params":{"variants":3,"avatar_size":1024,"detail":6000}})").status, 202);

  Server wide({.args = {"--run-jobs=false", "--max-job-timeout", "86400", "--max-job-attempts", "20",
                        "--max-generate-pixels", "0", "--max-generate-shapes", "0"}});
  auto wid = creator(wide.port());
  EXPECT_EQ(generate(wide.port(), wid, R"({"timeout_seconds":86400,"max_attempts":20,"params":{"variants":16,"detail":200000}})").status,
            202);
}
