// Several creatord instances on one PostgreSQL: they share the work without a coordinator.
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include "harness.hpp"

using namespace harness;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

// A fresh database on the test cluster; skipped without one, and in the pg.* pass (these tests
// are PostgreSQL-only already). The pooler passes (CREATORD_TEST_STORE=postgres-*) run some through TLS and
// PgBouncer.
class ScaleOut : public ::testing::Test {
 protected:
  void SetUp() override {
    if (pg_admin_url().empty()) GTEST_SKIP() << "CREATORD_TEST_POSTGRES_URL is not set (make test sets it)";
    if (testing_postgres() && pg_via().empty()) GTEST_SKIP() << "runs in the main pass";
    admin_ = pg_admin_url();
    db_ = "scale_" + std::to_string(::getpid());
    exec("DROP DATABASE IF EXISTS " + db_ + " WITH (FORCE)");
    exec("CREATE DATABASE " + db_);
    url_ = pg_url_for_database(db_);
  }
  void TearDown() override {
    if (!admin_.empty()) exec("DROP DATABASE IF EXISTS " + db_ + " WITH (FORCE)");
  }
  void exec(const std::string& sql) {
    PGconn* c = PQconnectdb(admin_.c_str());
    PQclear(PQexec(c, sql.c_str()));
    PQfinish(c);
  }
  std::unique_ptr<Server> instance(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--database-url", url_, "--job-lease", "10", "--job-heartbeat", "0.5",
                                     "--job-poll", "0.2", "--access-log=false", "--queues", "generate=8,default=8,email=2",
                                     // thousands of jobs at once are the point here: no quotas
                                     "--max-unfinished-jobs-per-token", "0", "--max-unfinished-jobs-per-creator", "0",
                                     "--enqueue-rate", "0"};
    if (pg_via() == "session") args.insert(args.end(), {"--database-connections", "4"});  // 10 server connections
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<Server>(Server::Options{.args = args});
  }
  std::string admin_, db_, url_;
};

int64_t creator(uint16_t port) {
  return post_json(port, "/api/creators", R"({"name":"Shared","handle":"shared"})").json().at("id").as_int64();
}

bool terminal(const json::value& j) { return job_in(j, {"succeeded", "failed", "cancelled"}); }

}  // namespace

TEST_F(ScaleOut, ThreeInstancesRunEveryJobExactlyOnce) {
  std::vector<std::unique_ptr<Server>> inst;
  for (int i = 0; i < 3; ++i) inst.push_back(instance());
  auto cid = creator(inst[0]->port());
  constexpr int kJobs = 2000;
  std::vector<std::thread> clients;
  std::atomic<int> accepted{0};
  for (int t = 0; t < 6; ++t)
    clients.emplace_back([&, t] {
      Conn c(inst[t % 3]->port());
      for (int i = t; i < kJobs; i += 6) {
        auto r = c.request("POST", "/api/creators/" + std::to_string(cid) + "/generate",
                           R"({"pipeline":"diagnostic","params":{"sleep_ms":0}})", {{"Content-Type", "application/json"}});
        accepted += r.status == 202;
      }
    });
  for (auto& c : clients) c.join();
  ASSERT_EQ(accepted.load(), kJobs);
  // Every job succeeds, on its first attempt: none lost, none run twice.
  auto deadline = std::chrono::steady_clock::now() + 120s;
  int done = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    done = static_cast<int>(get(inst[1]->port(), "/api/jobs?state=succeeded&limit=1").json().at("items").as_array().size());
    auto queued = get(inst[1]->port(), "/api/jobs?state=queued&limit=1").json().at("items").as_array().size();
    auto running = get(inst[1]->port(), "/api/jobs?state=running&limit=1").json().at("items").as_array().size();
    auto retrying = get(inst[1]->port(), "/api/jobs?state=retrying&limit=1").json().at("items").as_array().size();
    if (done && !queued && !running && !retrying) break;
    std::this_thread::sleep_for(200ms);
  }
  std::map<std::string, int> per_state;
  int second_attempts = 0, seen = 0;
  std::string target = "/api/jobs?limit=200";
  for (;;) {
    auto page = get(inst[2]->port(), target).json();
    for (const auto& j : page.at("items").as_array()) {
      ++seen;
      ++per_state[std::string(j.at("state").as_string())];
      second_attempts += j.at("attempt").as_int64() != 1;
    }
    if (!page.at("has_more").as_bool()) break;
    target = "/api/jobs?limit=200&cursor=" + std::string(page.at("next_cursor").as_string());
  }
  EXPECT_EQ(seen, kJobs);
  EXPECT_EQ(per_state["succeeded"], kJobs) << "queued " << per_state["queued"] << ", running " << per_state["running"]
                                          << ", retrying " << per_state["retrying"] << ", failed " << per_state["failed"];
  // A job runs once unless its worker's lease lapses; on a loaded 2-core machine running other
  // suites at the same time a few do, and then run again (at least once, never lost; that a job
  // finishes once is checked by AKilledInstancesJobsAreFinishedByTheOthers).
  EXPECT_LE(second_attempts, kJobs / 50);
  // The work was shared: every instance ran some.
  for (auto& s : inst) {
    s->stop();
    size_t ran = 0, pos = 0;
    std::string out = s->output();
    while ((pos = out.find("\"msg\":\"job ended\"", pos)) != std::string::npos) ++ran, ++pos;
    EXPECT_GT(ran, 0u) << "an instance ran no job";
  }
}

TEST_F(ScaleOut, AKilledInstancesJobsAreFinishedByTheOthers) {
  auto a = instance();
  auto b = instance();
  auto cid = creator(a->port());
  std::vector<int64_t> ids;
  for (int i = 0; i < 24; ++i)
    ids.push_back(post_json(a->port(), "/api/creators/" + std::to_string(cid) + "/generate",
                            R"({"pipeline":"diagnostic","params":{"sleep_ms":1500}})").json().at("id").as_int64());
  std::this_thread::sleep_for(700ms);  // both are running some
  a->stop(SIGKILL);
  int on_second_attempt = 0;
  for (auto id : ids) {
    auto j = wait_job(b->port(), id, terminal, 60s);
    ASSERT_EQ(j.at("state").as_string(), "succeeded") << json::serialize(j);
    on_second_attempt += j.at("attempt").as_int64() == 2;
    // Finished once: one job.finished event.
    auto ev = get(b->port(), "/api/jobs/" + std::to_string(id) + "/events?last_event_id=0").body;
    size_t finished = 0, pos = 0;
    while ((pos = ev.find("event: job.finished", pos)) != std::string::npos) ++finished, ++pos;
    EXPECT_EQ(finished, 1u);
  }
  EXPECT_GT(on_second_attempt, 0) << "the killed instance ran none of the jobs";
}

TEST_F(ScaleOut, AnInstanceStreamsTheProgressOfAJobRunningElsewhere) {
  auto api_only = instance({"--run-jobs=false"});
  auto worker = instance();
  auto cid = creator(api_only->port());
  auto id = post_json(api_only->port(), "/api/creators/" + std::to_string(cid) + "/generate",
                      R"({"pipeline":"diagnostic","params":{"sleep_ms":600}})").json().at("id").as_int64();
  Conn sse(api_only->port());
  sse.send_raw(build_request("GET", "/api/jobs/" + std::to_string(id) + "/events", "", {}));
  std::string events = sse.read_until("event: job.finished", 30s);
  EXPECT_NE(events.find("event: step.progress"), std::string::npos) << events;
  EXPECT_NE(events.find("event: job.finished\ndata: {\"state\":\"succeeded\""), std::string::npos) << events;
  worker->stop();
  EXPECT_NE(worker->output().find("\"job_id\":" + std::to_string(id)), std::string::npos);  // it ran there
}

TEST(ScaleOutOutage, RequestsFailCleanlyWhilePostgresIsDownAndRecoverAfter) {
  if (!std::getenv("CREATORD_TEST_POSTGRES_URL") || testing_postgres()) GTEST_SKIP() << "needs the test cluster";
  // A cluster of its own, so stopping it disturbs no other test.
  std::string dir = temp_dir("pgown");
  std::string env = "CREATORD_TEST_PG_DIR=" + dir + "/pg CREATORD_TEST_PG_PORT=" + std::to_string(15500 + ::getpid() % 400);
  std::string script = std::string(SCRIPTS_DIR) + "/test-postgres.sh";
  std::string url;
  {
    FILE* p = ::popen((env + " bash " + script + " start").c_str(), "r");
    char buf[256] = {0};
    if (p && std::fgets(buf, sizeof buf, p)) url = buf;
    if (p) ::pclose(p);
    while (!url.empty() && (url.back() == '\n')) url.pop_back();
  }
  ASSERT_FALSE(url.empty());
  Server s({.args = {"--database-url", url, "--database-acquire-timeout", "1"}});
  auto cid = post_json(s.port(), "/api/creators", R"({"name":"Out","handle":"out"})").json().at("id").as_int64();
  ASSERT_EQ(std::system((env + " bash " + script + " down").c_str()), 0);
  auto during = get(s.port(), "/api/creators/" + std::to_string(cid));
  EXPECT_EQ(during.status, 503) << during.body;
  EXPECT_EQ(during.json().at("error").at("code").as_string(), "unavailable");
  EXPECT_EQ(get(s.port(), "/readyz").status, 503);
  EXPECT_EQ(get(s.port(), "/healthz").status, 200);  // the process itself is fine
  ASSERT_EQ(std::system((env + " bash " + script + " up").c_str()), 0);
  int status = 0;
  for (int i = 0; i < 100 && status != 200; ++i) {
    status = get(s.port(), "/api/creators/" + std::to_string(cid)).status;
    if (status != 200) std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(status, 200);
  EXPECT_EQ(post_json(s.port(), "/api/creators", R"({"name":"Back","handle":"back"})").status, 201);
  s.stop();
  std::system((env + " bash " + script + " stop").c_str());
  std::filesystem::remove_all(dir);
}

TEST_F(ScaleOut, ListCachesFollowWritesOnOtherInstances) {
  auto a = instance();
  auto b = instance();
  auto count = [](uint16_t port) { return get(port, "/api/creators?limit=200").json().at("items").as_array().size(); };
  EXPECT_EQ(count(b->port()), 0u);
  EXPECT_EQ(count(b->port()), 0u);  // cached on b now
  ASSERT_EQ(post_json(a->port(), "/api/creators", R"({"name":"New","handle":"new"})").status, 201);
  EXPECT_EQ(count(a->port()), 1u);  // the writer reads its own write at once
  size_t seen = 0;
  for (int i = 0; i < 100 && seen != 1; ++i) {  // b learns of it through NOTIFY, milliseconds later
    seen = count(b->port());
    if (seen != 1) std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(seen, 1u);
}

TEST_F(ScaleOut, APausedQueueClaimsNothingOnAnyInstance) {
  auto a = instance();
  auto b = instance();
  auto cid = creator(a->port());
  ASSERT_EQ(post_json(a->port(), "/api/queues/generate/pause", "").status, 200);
  std::vector<int64_t> ids;
  for (int i = 0; i < 6; ++i)
    ids.push_back(post_json(b->port(), "/api/creators/" + std::to_string(cid) + "/generate",
                            R"({"pipeline":"diagnostic","params":{"sleep_ms":0}})").json().at("id").as_int64());
  std::this_thread::sleep_for(1500ms);  // both poll every 0.2 s: neither claims
  for (auto id : ids) EXPECT_EQ(get(a->port(), "/api/jobs/" + std::to_string(id)).json().at("state").as_string(), "queued");
  // Resumed on the other instance: both go back to work at once.
  ASSERT_EQ(post_json(b->port(), "/api/queues/generate/resume", "").status, 200);
  for (auto id : ids) EXPECT_EQ(wait_job(a->port(), id, terminal, 30s).at("state").as_string(), "succeeded");
}

// Waits for the next minute's slot: up to about a minute.
TEST_F(ScaleOut, AScheduleFiresExactlyOnceWithTwoInstancesRunning) {
  std::string dir = temp_dir("sched");
  std::ofstream(dir + "/p.toml") << "[[schedule]]\nname = \"every-minute\"\npipeline = \"diagnostic\"\n"
                                    "cron = \"* * * * *\"\ncreator = 1\nparams = { sleep_ms = 0 }\n";
  auto a = instance({"--pipelines", dir + "/p.toml"});
  auto cid = creator(a->port());
  ASSERT_EQ(cid, 1);
  auto b = instance({"--pipelines", dir + "/p.toml"});
  auto deadline = std::chrono::steady_clock::now() + 75s;
  json::array jobs;
  while (std::chrono::steady_clock::now() < deadline && jobs.empty()) {
    jobs = get(b->port(), "/api/jobs?kind=diagnostic").json().at("items").as_array();
    std::this_thread::sleep_for(200ms);
  }
  ASSERT_FALSE(jobs.empty()) << "no slot fired within 75 s";
  std::this_thread::sleep_for(3s);  // both instances have seen the slot by now
  jobs = get(b->port(), "/api/jobs?kind=diagnostic").json().at("items").as_array();
  std::set<std::string> slots;
  for (const auto& j : jobs) EXPECT_TRUE(slots.insert(std::string(j.at("payload").at("slot").as_string())).second);
  EXPECT_EQ(jobs.size(), slots.size()) << "a slot was enqueued twice";
  auto listed = get(a->port(), "/api/schedules").json().at("items").as_array();
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_TRUE(listed[0].at("last_slot").is_string());
  std::filesystem::remove_all(dir);
}
