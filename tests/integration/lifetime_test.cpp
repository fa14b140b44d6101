// Clients that leave mid-request, and shutdowns while requests and background work are in
// flight: the server notices, frees what the request held, and exits cleanly. Run under ASan
// (`make asan`), these are the timings where a coroutine outliving what it uses would show.
#include <csignal>
#include <optional>
#include <thread>

#include <gtest/gtest.h>

#include "harness.hpp"

using namespace harness;
using namespace std::chrono_literals;

namespace {

const Headers kJson = {{"Content-Type", "application/json"}};

int64_t make_creator(uint16_t port, const std::string& handle) {
  auto r = post_json(port, "/api/creators", R"({"name":"Life Time","handle":")" + handle + R"("})");
  EXPECT_EQ(r.status, 201) << r.body;
  return r.json().at("id").as_int64();
}

// A job that stays scheduled (not yet due) for the whole test, so a `?wait=` on it waits its full time.
const std::string kLaterJob = R"({"pipeline":"diagnostic","params":{"sleep_ms":10},"delay_seconds":3600})";

std::string generate_request(int64_t creator, const std::string& query) {
  return build_request("POST", "/api/creators/" + std::to_string(creator) + "/generate" + query, kLaterJob, kJson);
}

// The value of a metric without labels, or -1.
double metric(uint16_t port, const std::string& name) {
  auto r = get(port, "/metrics");
  auto at = r.body.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stod(r.body.substr(at + name.size() + 2));
}

// Polls until the metric has the value (true) or the time is up (false).
bool metric_reaches(uint16_t port, const std::string& name, double value, std::chrono::milliseconds within) {
  auto until = std::chrono::steady_clock::now() + within;
  for (;;) {
    if (metric(port, name) == value) return true;
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(20ms);
  }
}

const char* kInFlight = "creatord_http_requests_in_flight";  // a scrape counts itself

}  // namespace

// Before: the handler waited its 30 s for nobody, holding its request (and a store
// subscription) after the client had gone.
TEST(Lifetime, WaitingGenerateStopsWhenItsClientLeaves) {
  Server s;
  auto cid = make_creator(s.port(), "leaver");
  std::optional<Conn> client(std::in_place, s.port());
  ASSERT_TRUE(client->send_raw(generate_request(cid, "?wait=30")));
  ASSERT_TRUE(metric_reaches(s.port(), kInFlight, 2, 10s));  // the wait has begun
  client.reset();
  EXPECT_TRUE(metric_reaches(s.port(), kInFlight, 1, 5s)) << "the waiting request outlived its client";
  EXPECT_TRUE(s.wait_output("client went away", 5s));
  // The server goes on serving, and the job itself was not touched.
  auto jobs = get(s.port(), "/api/jobs?limit=5");
  ASSERT_EQ(jobs.status, 200);
  EXPECT_EQ(jobs.json().at("items").as_array().at(0).at("state").as_string(), "scheduled");
}

// A client that stays gets its answer when the wait ends on its own (no false "gone").
TEST(Lifetime, WaitingGenerateAnswersAClientThatStays) {
  Server s;
  auto cid = make_creator(s.port(), "stayer");
  Conn client(s.port());
  ASSERT_TRUE(client.send_raw(generate_request(cid, "?wait=1")));
  auto r = client.read_response();
  EXPECT_EQ(r.status, 202) << r.body;
  // Keep-alive still works after a watched request.
  EXPECT_EQ(client.request("GET", "/healthz").status, 200);
}

TEST(Lifetime, EventStreamEndsWhenItsClientLeaves) {
  Server s;
  auto cid = make_creator(s.port(), "watcher");
  auto job = post_json(s.port(), "/api/creators/" + std::to_string(cid) + "/generate", kLaterJob);
  ASSERT_EQ(job.status, 202) << job.body;
  auto events = "/api/jobs/" + std::to_string(job.json().at("id").as_int64()) + "/events";
  std::vector<std::unique_ptr<Conn>> clients;
  for (int i = 0; i < 4; ++i) {
    clients.push_back(std::make_unique<Conn>(s.port()));
    ASSERT_TRUE(clients.back()->send_raw(build_request("GET", events, "", {})));
    ASSERT_NE(clients.back()->read_until("retry:", 10s).find("retry:"), std::string::npos);
  }
  ASSERT_TRUE(metric_reaches(s.port(), "creatord_sse_streams_open", 4, 5s));
  clients.clear();
  EXPECT_TRUE(metric_reaches(s.port(), "creatord_sse_streams_open", 0, 5s));
  EXPECT_TRUE(metric_reaches(s.port(), "creatord_http_connections_open", 1, 5s));  // the scrape
}

TEST(Lifetime, UploadCutMidBodyFreesItsRequest) {
  Server s;
  auto cid = make_creator(s.port(), "cutter");
  for (int i = 0; i < 4; ++i) {
    Conn c(s.port());
    std::string head = "POST /api/creators/" + std::to_string(cid) +
                       "/images HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
                       "Content-Length: 1000000\r\n\r\n";
    ASSERT_TRUE(c.send_raw(head + std::string(4096, 'x')));
    ASSERT_TRUE(metric_reaches(s.port(), kInFlight, 2, 5s));
  }  // each connection closes mid-body
  EXPECT_TRUE(metric_reaches(s.port(), kInFlight, 1, 5s));
  EXPECT_TRUE(metric_reaches(s.port(), "creatord_http_connections_open", 1, 5s));  // the scrape
  EXPECT_EQ(get(s.port(), "/healthz").status, 200);
}

// SIGTERM with a `?wait=` client, event streams, a half-sent upload and a running job: the
// waiting client is answered at once (before: it waited out the grace period and was cut off
// without an answer), and the process exits 0.
TEST(Lifetime, SigtermWithRequestsInFlightExitsCleanly) {
  Server s({.args = {"--shutdown-grace", "5", "--job-poll", "0.2"}});
  auto p = s.port();
  auto cid = make_creator(p, "sigterm");
  auto running = post_json(p, "/api/creators/" + std::to_string(cid) + "/generate",
                           R"({"pipeline":"diagnostic","params":{"sleep_ms":60000}})");
  ASSERT_EQ(running.status, 202);
  auto events = "/api/jobs/" + std::to_string(running.json().at("id").as_int64()) + "/events";
  wait_job(p, running.json().at("id").as_int64(), [](const boost::json::value& j) { return job_in(j, {"running"}); });

  Conn waiting(p);
  ASSERT_TRUE(waiting.send_raw(generate_request(cid, "?wait=30")));
  Conn stream(p);
  ASSERT_TRUE(stream.send_raw(build_request("GET", events, "", {})));
  ASSERT_NE(stream.read_until("retry:", 10s).find("retry:"), std::string::npos);
  Conn upload(p);
  ASSERT_TRUE(upload.send_raw("POST /api/creators/" + std::to_string(cid) +
                              "/images HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
                              "Content-Length: 1000000\r\n\r\n" + std::string(1000, 'x')));
  ASSERT_TRUE(metric_reaches(p, kInFlight, 4, 10s));  // the wait, the stream, the upload, the scrape

  ::kill(s.pid(), SIGTERM);
  auto answer = waiting.read_response(false, 30s);
  EXPECT_EQ(answer.status, 202) << "a waiting request is answered when the server shuts down";
  EXPECT_EQ(answer.header("connection"), "close");
  EXPECT_EQ(s.wait_exit(30s), 0) << s.output();
}
