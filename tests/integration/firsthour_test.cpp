// The first hour of a new user (issue 16): what a person reads and types, end to end.
#include <sys/wait.h>

#include <cstdio>

#include <gtest/gtest.h>

#include "harness.hpp"

using namespace harness;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

int64_t make_creator(uint16_t port, const std::string& handle) {
  auto r = post_json(port, "/api/creators", R"({"name":"First Hour","handle":")" + handle + R"("})");
  EXPECT_EQ(r.status, 201) << r.body;
  return r.json().at("id").as_int64();
}

}  // namespace

TEST(FirstHour, NumbersReadAsPeopleWriteThem) {
  Server s;
  auto cid = make_creator(s.port(), "numbers");
  auto r = post_json(s.port(), "/api/creators/" + std::to_string(cid) + "/generate",
                     R"({"params":{"variants":3,"avatar_size":32,"banner_width":60,"banner_height":20,)"
                     R"("detail":10,"thumb_size":16}})");
  ASSERT_EQ(r.status, 202) << r.body;
  auto id = r.json().at("id").as_int64();
  auto job = wait_job(s.port(), id, [](const json::value& j) { return job_in(j, {"succeeded", "failed"}); });
  ASSERT_EQ(job.at("state").as_string(), "succeeded") << json::serialize(job);

  auto raw = get(s.port(), "/api/jobs/" + std::to_string(id)).body;
  EXPECT_NE(raw.find(R"("progress":1,)"), std::string::npos) << raw;
  EXPECT_EQ(raw.find("E0"), std::string::npos) << raw;

  Conn c(s.port());
  ASSERT_TRUE(c.send_raw(build_request("GET", "/api/jobs/" + std::to_string(id) + "/events", "", {})));
  auto events = c.read_until("event: job.finished", 10s);
  EXPECT_NE(events.find(R"("progress":0.333)"), std::string::npos) << events;
  EXPECT_NE(events.find(R"("progress":1,)"), std::string::npos) << events;
  EXPECT_EQ(events.find("E-1"), std::string::npos) << events;
  EXPECT_EQ(events.find("E0"), std::string::npos) << events;
}

namespace {

using Run = CliRun;  // stdout only (libpq notices on stderr stay out of it)

Run run(const std::string& args) { return run_creatord(args); }

}  // namespace

TEST(FirstHour, VersionIsAFlagAndACommand) {
  auto flag = run("--version");
  EXPECT_EQ(flag.rc, 0) << flag.out;
  EXPECT_EQ(flag.out, "creatord 0.1.0\n");
  auto command = run("version");
  EXPECT_EQ(command.rc, 0);
  EXPECT_EQ(command.out, flag.out);
}

TEST(FirstHour, BooleanOptionsTakeAValueAfterASpace) {
  // As the README writes it: --render-idle true.
  Server s({.args = {"--render-idle", "true", "--access-log", "false"}});
  EXPECT_EQ(get(s.port(), "/healthz").status, 200);
}

TEST(FirstHour, UnknownQueryParametersAreNamed) {
  Server s;
  auto p = s.port();
  auto cid = std::to_string(make_creator(p, "query"));
  struct Case {
    std::string method, target, unknown;
  };
  for (const auto& c : std::vector<Case>{{"GET", "/api/creators?limt=5", "limt"},
                                         {"HEAD", "/api/creators?limit=5&page=2", "page"},
                                         {"GET", "/api/creators/" + cid + "?expand=images", "expand"},
                                         {"GET", "/api/creators/" + cid + "/images?q=x", "q"},
                                         {"GET", "/api/jobs?status=failed", "status"},
                                         {"POST", "/api/creators/" + cid + "/generate?wiat=5", "wiat"},
                                         {"GET", "/healthz?verbose=1", "verbose"},
                                         {"DELETE", "/api/creators/" + cid + "?force=true", "force"}}) {
    auto r = request(p, c.method, c.target);
    EXPECT_EQ(r.status, 400) << c.method << " " << c.target;
    if (c.method == "HEAD") continue;
    auto e = r.json().at("error");
    EXPECT_EQ(e.at("field").as_string(), c.unknown) << r.body;
    EXPECT_NE(e.at("message").as_string().find("unknown query parameter '" + c.unknown + "'"), std::string::npos);
  }
  EXPECT_EQ(get(p, "/api/creators?limit=5&q=qu").status, 200);
  EXPECT_EQ(get(p, "/api/jobs?state=failed&kind=generate&creator_id=" + cid + "&limit=5").status, 200);
  EXPECT_EQ(get(p, "/api/creators/" + cid + "/images?limit=5").status, 200);
  EXPECT_EQ(get(p, "/api/creators/" + cid).status, 200);  // still there
}

namespace {

// The error a server-level refusal carries: status, code and field.
void expect_error(const Response& r, int status, const std::string& code, const std::string& field) {
  EXPECT_EQ(r.status, status) << r.body;
  EXPECT_FALSE(r.header("x-request-id").empty());
  if (r.status != status) return;
  auto e = r.json().at("error");
  EXPECT_EQ(e.at("code").as_string(), code) << r.body;
  EXPECT_EQ(e.at("field").as_string(), field) << r.body;
}

Response raw_exchange(uint16_t port, const std::string& bytes) {
  Conn c(port);
  c.send_raw(bytes);
  return c.read_response(false, 10s);
}

}  // namespace

TEST(FirstHour, ServerLevelErrorsNameTheField) {
  Server s({.args = {"--header-timeout", "0.5", "--max-json-bytes", "1000", "--max-header-bytes", "1024"}});
  auto p = s.port();
  expect_error(raw_exchange(p, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4000, 'a') + "\r\n\r\n"),
               431, "header_too_large", "headers");
  expect_error(raw_exchange(p, "GET /healthz HTTP/1.1\r\nHost: x\r\n"), 408, "request_timeout", "headers");
  expect_error(raw_exchange(p, "POST /api/creators HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                               "Content-Length: 5000\r\n\r\n"),
               413, "payload_too_large", "body");
  expect_error(raw_exchange(p, "POST /api/creators HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                               "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"),
               400, "bad_request", "body");
  expect_error(raw_exchange(p, "GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n"), 400, "bad_request", "target");
  expect_error(raw_exchange(p, "GET /healthz HTTP/1.1\r\nBad Header\r\n\r\n"), 400, "bad_request", "request");
}

TEST(FirstHour, TheConnectionCapAnswerHasARequestId) {
  Server s({.args = {"--max-connections", "1"}});
  Conn held(s.port());
  EXPECT_EQ(held.request("GET", "/healthz").status, 200);
  Conn extra(s.port());
  auto r = extra.read_response(false, 5s);
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.header("x-request-id").size(), 16u) << r.header("x-request-id");
}

TEST(FirstHour, JobsCommandsPrintForPeopleAndForScripts) {
  std::string dir = temp_dir("jobs-cli");
  int64_t id;
  {
    Server s({.data_dir = dir});
    EXPECT_TRUE(s.wait_output("try: curl 'http://127.0.0.1:")) << s.output();
    auto cid = make_creator(s.port(), "cli");
    auto r = post_json(s.port(), "/api/creators/" + std::to_string(cid) + "/generate?wait=30",
                       R"({"pipeline":"diagnostic","params":{"sleep_ms":50}})");
    id = r.json().at("id").as_int64();
  }
  std::string store = " --data-dir " + dir;
  if (testing_postgres()) store += " --database-url " + postgres_url_for(dir);
  auto list = run("jobs list" + store);
  ASSERT_EQ(list.rc, 0) << list.out;
  EXPECT_EQ(list.out.rfind("    ID  KIND", 0), 0u) << list.out;
  EXPECT_NE(list.out.find("succeeded"), std::string::npos) << list.out;
  EXPECT_EQ(list.out.find('\x1b'), std::string::npos) << "no colours when not on a terminal";
  auto scripted = run("jobs list --json" + store);
  ASSERT_EQ(scripted.rc, 0) << scripted.out;
  EXPECT_EQ(json::parse(scripted.out).at("items").as_array().at(0).at("id").as_int64(), id);
  auto shown = run("jobs show " + std::to_string(id) + store);
  ASSERT_EQ(shown.rc, 0) << shown.out;
  EXPECT_EQ(shown.out.rfind("{\n  \"id\": " + std::to_string(id) + ",\n", 0), 0u) << shown.out;
  EXPECT_EQ(json::parse(shown.out).at("state").as_string(), "succeeded");
}

// Issue 16: `jobs watch ID` follows a job live from the store, a progress bar per step; no
// colours when the output is not a terminal; exit 0 once the job succeeded.
TEST(FirstHour, JobsWatchFollowsAJobUntilItEnds) {
  Server s;
  auto cid = make_creator(s.port(), "watcher");
  auto r = post_json(s.port(), "/api/creators/" + std::to_string(cid) + "/generate",
                     R"({"pipeline":"diagnostic","params":{"sleep_ms":1500}})");
  ASSERT_EQ(r.status, 202) << r.body;
  auto id = r.json().at("id").as_int64();
  std::string store = " --data-dir " + s.data_dir();
  if (testing_postgres()) store += " --database-url " + postgres_url_for(s.data_dir());
  auto watched = run("jobs watch " + std::to_string(id) + store);  // returns when the job has ended
  ASSERT_EQ(watched.rc, 0) << watched.out;
  EXPECT_NE(watched.out.find("step.progress sleep"), std::string::npos) << watched.out;
  EXPECT_NE(watched.out.find("job.finished succeeded"), std::string::npos) << watched.out;
  EXPECT_NE(watched.out.find("job " + std::to_string(id) + " diagnostic: succeeded  100%"), std::string::npos)
      << watched.out;
  EXPECT_NE(watched.out.find("sleep  [####################] 100%  succeeded"), std::string::npos) << watched.out;
  EXPECT_EQ(watched.out.find('\x1b'), std::string::npos) << "no colours when not on a terminal";
  EXPECT_EQ(get(s.port(), "/api/jobs/" + std::to_string(id)).json().at("state").as_string(), "succeeded");
  EXPECT_EQ(run("jobs watch 999999" + store).rc, 3);
}
