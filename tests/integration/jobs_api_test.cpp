// Jobs end to end: the real binary runs the generation pipeline as durable background jobs.
#include <signal.h>

#include <sys/wait.h>

#include <atomic>
#include <fstream>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "harness.hpp"

using namespace harness;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

const std::string kSmall = R"("params":{"variants":2,"avatar_size":64,"banner_width":120,"banner_height":40,"detail":100,"thumb_size":32})";

int64_t make_creator(uint16_t port, const std::string& handle) {
  auto r = post_json(port, "/api/creators", R"({"name":"Gen Erator","handle":")" + handle + R"(","tags":["neon"]})");
  EXPECT_EQ(r.status, 201) << r.body;
  return r.json().at("id").as_int64();
}

Response generate(uint16_t port, int64_t creator, const std::string& body, const std::string& query = "",
                  Headers h = {}) {
  return post_json(port, "/api/creators/" + std::to_string(creator) + "/generate" + query, body, std::move(h));
}

bool terminal(const json::value& j) { return job_in(j, {"succeeded", "failed", "cancelled"}); }

const json::object& step(const json::value& job, const std::string& name) {
  for (const auto& s : job.at("steps").as_array())
    if (s.at("name").as_string() == name) return s.as_object();
  throw std::runtime_error("no step " + name);
}

// Server options that make retries and recovery quick enough for tests.
std::vector<std::string> fast_jobs() {
  return {"--job-retry-base", "0.05", "--job-lease", "3", "--job-heartbeat", "0.5", "--job-poll", "0.2"};
}

}  // namespace

TEST(Jobs, GenerateRunsInTheBackgroundAndStoresImages) {
  Server s;
  auto p = s.port();
  auto cid = make_creator(p, "gen");
  auto r = generate(p, cid, "{" + kSmall + "}");
  ASSERT_EQ(r.status, 202) << r.body;
  auto job = r.json();
  auto id = job.at("id").as_int64();
  EXPECT_EQ(r.header("location"), "/api/jobs/" + std::to_string(id));
  EXPECT_EQ(job.at("steps").as_array().size(), 6u);
  EXPECT_EQ(job.at("links").at("events").as_string(), "/api/jobs/" + std::to_string(id) + "/events");

  // Every step shows up on the event stream, and the stream ends with the job.
  Conn sse(p);
  sse.send_raw(build_request("GET", "/api/jobs/" + std::to_string(id) + "/events", "", {}));
  std::string events = sse.read_until("event: job.finished", 60s);
  EXPECT_NE(events.find("Content-Type: text/event-stream"), std::string::npos);
  for (const char* st : {"load_creator", "render_avatar", "render_banner", "thumbnails", "summarize", "notify"}) {
    EXPECT_NE(events.find(std::string("event: step.started\ndata: {\"step\":\"") + st), std::string::npos) << st;
    EXPECT_NE(events.find(std::string("event: step.finished\ndata: {\"step\":\"") + st), std::string::npos) << st;
  }
  EXPECT_NE(events.find("event: step.progress"), std::string::npos);
  EXPECT_TRUE(sse.wait_closed(5s));

  auto done = wait_job(p, id, terminal);
  ASSERT_EQ(done.at("state").as_string(), "succeeded") << json::serialize(done);
  EXPECT_EQ(done.at("attempt").as_int64(), 1);  // no retry hid a failure
  EXPECT_EQ(done.at("progress").to_number<double>(), 1.0);  // written as 1
  EXPECT_EQ(done.at("result").at("images").as_int64(), 8);  // 2 avatars, 2 banners, 4 thumbnails
  for (const auto& st : done.at("steps").as_array()) {
    EXPECT_EQ(st.at("state").as_string(), "succeeded");
    EXPECT_TRUE(st.at("duration_ms").is_int64());
  }
  auto images = get(p, "/api/creators/" + std::to_string(cid) + "/images?limit=50").json().at("items").as_array();
  ASSERT_EQ(images.size(), 8u);
  auto avatar_id = done.at("result").at("avatars").at(0).at("image_id").as_int64();
  auto content = get(p, "/api/images/" + std::to_string(avatar_id) + "/content");
  EXPECT_EQ(content.status, 200);
  EXPECT_EQ(content.header("content-type"), "image/png");
  EXPECT_EQ(content.body.substr(1, 3), "PNG");
  auto meta = get(p, "/api/images/" + std::to_string(avatar_id)).json();
  EXPECT_EQ(meta.at("width").as_int64(), 64);
  EXPECT_EQ(meta.at("source").as_string(), "generated");
}

// Issue 16: from a job to its images. Each image of the result says where its bytes are, the job
// links to the creator's images, and the email (read far from the API) links absolutely, from
// --public-url.
TEST(Jobs, TheResultLinksEveryImageAndTheEmailLinksAbsolutely) {
  Server s({.args = {"--public-url", "https://creatord.example.com/"}});
  auto p = s.port();
  auto r = post_json(p, "/api/creators", R"({"name":"Link Person","handle":"linked","email":"linked@example.com"})");
  ASSERT_EQ(r.status, 201) << r.body;
  auto cid = r.json().at("id").as_int64();
  auto job = generate(p, cid, "{" + kSmall + "}", "?wait=60").json();
  ASSERT_EQ(job.at("state").as_string(), "succeeded") << json::serialize(job);
  EXPECT_EQ(job.at("links").at("images").as_string(), "/api/creators/" + std::to_string(cid) + "/images");
  for (const char* kind : {"avatars", "banners", "thumbnails"}) {
    for (const auto& image : job.at("result").at(kind).as_array()) {
      auto url = std::string(image.at("url").as_string());
      EXPECT_EQ(url, "/api/images/" + std::to_string(image.at("image_id").as_int64()) + "/content");
      EXPECT_EQ(get(p, url).status, 200) << url;
    }
  }
  // The notify step's email, written as an .eml file (no SMTP server configured).
  std::string mail;
  for (int i = 0; i < 300 && mail.empty(); ++i) {
    std::error_code ec;
    for (const auto& f : std::filesystem::directory_iterator(s.data_dir() + "/outbox", ec)) {
      std::ifstream in(f.path());
      mail.assign(std::istreambuf_iterator<char>(in), {});
    }
    if (mail.empty()) std::this_thread::sleep_for(100ms);
  }
  ASSERT_FALSE(mail.empty()) << "no email in the outbox";
  for (auto at = mail.find("=\r\n"); at != std::string::npos; at = mail.find("=\r\n")) mail.erase(at, 3);
  for (auto at = mail.find("=\n"); at != std::string::npos; at = mail.find("=\n")) mail.erase(at, 2);
  EXPECT_NE(mail.find("https://creatord.example.com/api/creators/" + std::to_string(cid) + "/images"), std::string::npos)
      << mail;
  EXPECT_NE(mail.find("https://creatord.example.com/api/jobs/" + std::to_string(job.at("id").as_int64())),
            std::string::npos)
      << mail;
}

TEST(Jobs, WaitAnswersWithTheFinishedJob) {
  Server s;
  auto cid = make_creator(s.port(), "waiter");
  auto r = generate(s.port(), cid, "{" + kSmall + "}", "?wait=60");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("state").as_string(), "succeeded");
  auto slow = generate(s.port(), cid, R"({"pipeline":"diagnostic","params":{"sleep_ms":5000}})", "?wait=1");
  EXPECT_EQ(slow.status, 202);
  EXPECT_EQ(slow.json().at("state").as_string(), "running");
}

TEST(Jobs, IdempotencyKeyGivesTheSameJob) {
  Server s;
  auto cid = make_creator(s.port(), "idem");
  auto a = generate(s.port(), cid, "{" + kSmall + "}", "", {{"Idempotency-Key", "order-77"}});
  auto b = generate(s.port(), cid, "{" + kSmall + "}", "", {{"Idempotency-Key", "order-77"}});
  ASSERT_EQ(a.status, 202);
  EXPECT_EQ(a.json().at("id"), b.json().at("id"));
  EXPECT_EQ(b.header("idempotent-replayed"), "true");
  auto c = generate(s.port(), cid, "{" + kSmall + "}", "", {{"Idempotency-Key", "order-78"}});
  EXPECT_NE(a.json().at("id"), c.json().at("id"));
  auto list = get(s.port(), "/api/jobs?creator_id=" + std::to_string(cid)).json();
  EXPECT_EQ(list.at("items").as_array().size(), 2u);
}

TEST(Jobs, BadRequestsGetClearErrors) {
  Server s;
  auto p = s.port();
  auto cid = make_creator(p, "bad");
  EXPECT_EQ(generate(p, 999, "{}").status, 404);
  EXPECT_EQ(generate(p, cid, R"({"pipeline":"nope"})").status, 422);
  EXPECT_EQ(generate(p, cid, R"({"params":{"variants":1000}})").status, 422);
  EXPECT_EQ(generate(p, cid, R"({"params":{"colour":1}})").json().at("error").at("field").as_string(), "params.colour");
  EXPECT_EQ(generate(p, cid, R"({"extra":true})").status, 422);
  EXPECT_EQ(generate(p, cid, R"({"max_workers":0})").status, 422);
  EXPECT_EQ(generate(p, cid, "{", "").status, 400);
  EXPECT_EQ(generate(p, cid, "{}", "?wait=abc").status, 400);
  EXPECT_EQ(generate(p, cid, "{}", "?wait=100000").status, 400);
  EXPECT_EQ(generate(p, cid, "{}", "", {{"Idempotency-Key", "has space"}}).status, 400);
  EXPECT_EQ(get(p, "/api/jobs/12345").status, 404);
  EXPECT_EQ(get(p, "/api/jobs/x").status, 400);
  EXPECT_EQ(get(p, "/api/jobs?state=done").status, 400);
  EXPECT_EQ(request(p, "POST", "/api/jobs/12345/cancel").status, 404);
  auto pipelines = get(p, "/api/pipelines").json().at("items").as_array();
  EXPECT_GE(pipelines.size(), 2u);
}

TEST(Jobs, CancelStopsARunningJob) {
  Server s;
  auto p = s.port();
  auto cid = make_creator(p, "cancel");
  auto id = generate(p, cid, R"({"pipeline":"diagnostic","params":{"sleep_ms":60000}})").json().at("id").as_int64();
  auto running = wait_job(p, id, [](const json::value& j) { return job_in(j, {"running"}); });
  ASSERT_EQ(running.at("state").as_string(), "running");
  auto c = request(p, "POST", "/api/jobs/" + std::to_string(id) + "/cancel");
  EXPECT_EQ(c.status, 202) << c.body;
  auto done = wait_job(p, id, terminal, 10s);
  EXPECT_EQ(done.at("state").as_string(), "cancelled");
  EXPECT_EQ(request(p, "POST", "/api/jobs/" + std::to_string(id) + "/cancel").status, 409);
  // A queued job is cancelled at once: fill the generate queue (2 at a time) first.
  std::vector<int64_t> ids;
  for (int i = 0; i < 3; ++i)
    ids.push_back(generate(p, cid, R"({"pipeline":"diagnostic","params":{"sleep_ms":60000}})").json().at("id").as_int64());
  auto third = request(p, "POST", "/api/jobs/" + std::to_string(ids[2]) + "/cancel");
  EXPECT_TRUE(third.status == 200 || third.status == 202);
  for (auto j : ids) request(p, "POST", "/api/jobs/" + std::to_string(j) + "/cancel");
  for (auto j : ids) EXPECT_EQ(wait_job(p, j, terminal, 10s).at("state").as_string(), "cancelled");
  // Cancelled jobs can be retried.
  auto retried = request(p, "POST", "/api/jobs/" + std::to_string(id) + "/retry");
  EXPECT_EQ(retried.status, 202);
  // As it is when answered: an idle worker may already have taken it.
  EXPECT_TRUE(job_in(retried.json(), {"queued", "running"})) << retried.body;
  request(p, "POST", "/api/jobs/" + std::to_string(id) + "/cancel");
}

TEST(Jobs, AStepThatFailsTwiceThenSucceedsAndFinishedStepsAreNotRedone) {
  Server s({.args = fast_jobs()});
  auto p = s.port();
  auto cid = make_creator(p, "flaky");
  auto id = generate(p, cid, R"({"pipeline":"diagnostic","max_attempts":3,"params":{"sleep_ms":10,"fail_until_attempt":3}})")
                .json().at("id").as_int64();
  auto done = wait_job(p, id, terminal);
  ASSERT_EQ(done.at("state").as_string(), "succeeded") << json::serialize(done);
  EXPECT_EQ(done.at("attempt").as_int64(), 3);
  EXPECT_EQ(step(done, "sleep").at("attempt").as_int64(), 1);  // ran once, kept across retries
  EXPECT_EQ(step(done, "flaky").at("attempt").as_int64(), 3);
  // Out of attempts: failed, with the error; then a manual retry runs it again.
  auto id2 = generate(p, cid, R"({"pipeline":"diagnostic","max_attempts":2,"params":{"sleep_ms":10,"fail_until_attempt":5}})")
                 .json().at("id").as_int64();
  auto failed = wait_job(p, id2, terminal);
  EXPECT_EQ(failed.at("state").as_string(), "failed");
  EXPECT_NE(failed.at("last_error").as_string().find("failing on purpose"), std::string::npos);
  EXPECT_EQ(request(p, "POST", "/api/jobs/" + std::to_string(id2) + "/retry").status, 202);
  EXPECT_EQ(wait_job(p, id2, [](const json::value& j) { return job_in(j, {"failed"}) && j.at("attempt").as_int64() == 2; })
                .at("state").as_string(), "failed");
  auto list = get(p, "/api/jobs?state=failed").json().at("items").as_array();
  EXPECT_EQ(list.size(), 1u);
}

TEST(Jobs, TimeoutFailsTheJob) {
  Server s({.args = fast_jobs()});
  auto cid = make_creator(s.port(), "slowpoke");
  auto id = generate(s.port(), cid, R"({"pipeline":"diagnostic","max_attempts":1,"timeout_seconds":1,"params":{"sleep_ms":60000}})")
                .json().at("id").as_int64();
  auto done = wait_job(s.port(), id, terminal, 15s);
  EXPECT_EQ(done.at("state").as_string(), "failed");
  EXPECT_NE(done.at("last_error").as_string().find("timed out"), std::string::npos);
}

TEST(Jobs, EventStreamResumesFromLastEventId) {
  Server s;
  auto cid = make_creator(s.port(), "resume");
  auto id = generate(s.port(), cid, "{" + kSmall + "}", "?wait=60").json().at("id").as_int64();
  Conn sse(s.port());
  sse.send_raw(build_request("GET", "/api/jobs/" + std::to_string(id) + "/events", "", {{"Last-Event-ID", "3"}}));
  std::string events = sse.read_until("event: job.finished", 10s);
  EXPECT_EQ(events.find("id: 3\n"), std::string::npos);
  EXPECT_NE(events.find("id: 4\n"), std::string::npos);
  EXPECT_EQ(get(s.port(), "/api/jobs/" + std::to_string(id) + "/events?last_event_id=x").status, 400);
}

// Issue 10, defect 9: a resume after a finished job's last event used to wait forever.
TEST(Jobs, EventStreamOfAFinishedJobEnds) {
  Server s;
  auto cid = make_creator(s.port(), "ends");
  auto id = generate(s.port(), cid, "{" + kSmall + "}", "?wait=60").json().at("id").as_int64();
  std::string path = "/api/jobs/" + std::to_string(id) + "/events";
  // From the start: every event, then the server closes the stream after job.finished.
  Conn all(s.port());
  all.send_raw(build_request("GET", path, "", {}));
  std::string events = all.read_until("event: job.finished", 10s);
  EXPECT_TRUE(all.wait_closed(5s)) << "the stream stayed open after job.finished";
  auto at = events.rfind("id: ");
  ASSERT_NE(at, std::string::npos) << events;
  std::string last = events.substr(at + 4, events.find('\n', at) - at - 4);
  // Resumed after the last event: nothing is left, so 204, and the connection does not hang.
  Conn resumed(s.port());
  resumed.send_raw(build_request("GET", path, "", {{"Last-Event-ID", last}}));
  EXPECT_EQ(resumed.read_response(false, 5s).status, 204);
  EXPECT_EQ(get(s.port(), path + "?last_event_id=" + last).status, 204);
  // One event before the end still streams it, then ends.
  Conn before(s.port());
  before.send_raw(build_request("GET", path, "", {{"Last-Event-ID", std::to_string(std::stoll(last) - 1)}}));
  EXPECT_NE(before.read_until("event: job.finished", 10s).find("id: " + last + "\n"), std::string::npos);
  EXPECT_TRUE(before.wait_closed(5s));
}

TEST(Jobs, KillNineWhileJobsRunLosesNothing) {
  std::string dir = temp_dir("crash");
  std::vector<int64_t> ids;
  int64_t cid;
  {
    Server s({.args = fast_jobs(), .data_dir = dir});
    cid = make_creator(s.port(), "crash");
    // Rendering takes a while, so the kill lands mid-pipeline.
    for (int i = 0; i < 3; ++i)
      ids.push_back(generate(s.port(), cid,
                             R"({"params":{"variants":2,"avatar_size":512,"banner_width":600,"banner_height":200,"detail":20000,"thumb_size":32}})")
                        .json().at("id").as_int64());
    auto running = wait_job(s.port(), ids[0], [](const json::value& j) {
      return job_in(j, {"running"}) && step(j, "load_creator").at("state").as_string() == "succeeded";
    });
    ASSERT_EQ(running.at("state").as_string(), "running");
    s.stop(SIGKILL);
  }
  Server s({.args = fast_jobs(), .data_dir = dir});
  for (auto id : ids) {
    auto done = wait_job(s.port(), id, terminal, 120s);
    ASSERT_EQ(done.at("state").as_string(), "succeeded") << json::serialize(done);
  }
  auto first = get(s.port(), "/api/jobs/" + std::to_string(ids[0])).json();
  EXPECT_EQ(first.at("attempt").as_int64(), 2);
  EXPECT_EQ(step(first, "load_creator").at("attempt").as_int64(), 1);  // finished before the crash: not redone
  // Each job stored its images exactly once, however often its steps ran.
  auto images = get(s.port(), "/api/creators/" + std::to_string(cid) + "/images?limit=200").json();
  EXPECT_EQ(images.at("items").as_array().size(), 3u * 8u);
  std::filesystem::remove_all(dir);
}

TEST(Jobs, GracefulShutdownHandsRunningJobsBack) {
  std::string dir = temp_dir("release");
  int64_t id;
  {
    Server s({.args = fast_jobs(), .data_dir = dir});
    auto cid = make_creator(s.port(), "release");
    id = generate(s.port(), cid, R"({"pipeline":"diagnostic","params":{"sleep_ms":2000}})").json().at("id").as_int64();
    wait_job(s.port(), id, [](const json::value& j) { return job_in(j, {"running"}); });
    EXPECT_EQ(s.stop(SIGTERM), 0);
  }
  Server s({.args = fast_jobs(), .data_dir = dir});
  auto done = wait_job(s.port(), id, terminal, 30s);
  EXPECT_EQ(done.at("state").as_string(), "succeeded");
  EXPECT_EQ(done.at("attempt").as_int64(), 1);  // the interrupted run was not counted
  std::filesystem::remove_all(dir);
}

TEST(Jobs, TheApiStaysFastWhileGenerateJobsKeepEveryCoreBusy) {
  // Every client is 127.0.0.1; the jobs are heavier than --max-generate-shapes allows by default.
  Server s({.args = {"--max-connections-per-ip", "0", "--max-generate-shapes", "200000"}});
  auto p = s.port();
  auto cid = make_creator(p, "busy");
  std::vector<int64_t> ids;
  for (int i = 0; i < 2; ++i)
    ids.push_back(generate(p, cid, R"({"params":{"variants":4,"detail":30000}})").json().at("id").as_int64());
  wait_job(p, ids[1], [](const json::value& j) { return job_in(j, {"running"}); });
  std::atomic<int> good{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 200; ++t)
    clients.emplace_back([&] {
      auto r = get(p, "/api/creators/" + std::to_string(cid));
      if (r.status == 200 && r.json().at("handle").as_string() == "busy") ++good;
    });
  for (auto& c : clients) c.join();
  EXPECT_EQ(good.load(), 200);
  // Both jobs were still rendering while every request was answered.
  int still_running = 0;
  for (auto id : ids) still_running += job_in(get(p, "/api/jobs/" + std::to_string(id)).json(), {"running"});
  EXPECT_GE(still_running, 1);
  for (auto id : ids) request(p, "POST", "/api/jobs/" + std::to_string(id) + "/cancel");
}

TEST(Jobs, CommandLineShowsAndCancelsJobs) {
  std::string dir = temp_dir("cli");
  int64_t id;
  {
    Server s({.data_dir = dir});
    auto cid = make_creator(s.port(), "cli");
    id = generate(s.port(), cid, R"({"pipeline":"diagnostic","params":{"sleep_ms":100}})", "?wait=30").json().at("id").as_int64();
  }
  std::string bin = CREATORD_BINARY;
  if (testing_postgres()) bin += " --database-url " + postgres_url_for(dir);  // the same store as the server's
  std::string out = dir + "/cli.txt";
  EXPECT_EQ(std::system((bin + " jobs list --data-dir " + dir + " > " + out).c_str()), 0);
  std::string text;
  {
    std::ifstream in(out);
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  EXPECT_NE(text.find("succeeded"), std::string::npos) << text;
  EXPECT_EQ(std::system((bin + " jobs show " + std::to_string(id) + " --data-dir " + dir + " > " + out).c_str()), 0);
  EXPECT_NE(WEXITSTATUS(std::system((bin + " jobs cancel " + std::to_string(id) + " --data-dir " + dir + " 2> " + out).c_str())), 0);
  EXPECT_NE(WEXITSTATUS(std::system((bin + " jobs show 999 --data-dir " + dir + " 2> " + out).c_str())), 0);
  std::filesystem::remove_all(dir);
}
