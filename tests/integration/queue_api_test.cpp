// The queue as clients and operators see it: delayed jobs, one kind per pipeline, queue counts,
// pause and resume, schedules, and idempotency keys scoped as Stripe scopes them.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "harness.hpp"

using namespace harness;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

int64_t make_creator(uint16_t port, const std::string& handle) {
  auto r = post_json(port, "/api/creators", R"({"name":"Queue Person","handle":")" + handle + R"("})");
  EXPECT_EQ(r.status, 201) << r.body;
  return r.json().at("id").as_int64();
}

Response generate(uint16_t port, int64_t creator, const std::string& body, Headers h = {}) {
  return post_json(port, "/api/creators/" + std::to_string(creator) + "/generate", body, std::move(h));
}

bool terminal(const json::value& j) { return job_in(j, {"succeeded", "failed", "cancelled"}); }

json::object queue_named(uint16_t port, const std::string& name) {
  auto r = get(port, "/api/queues");
  EXPECT_EQ(r.status, 200) << r.body;
  json::value body = r.json();  // the loop below must not iterate a temporary's innards
  for (const auto& q : body.at("items").as_array())
    if (q.at("name").as_string() == name) return q.as_object();
  return {};
}

const std::string kQuick = R"({"pipeline":"diagnostic","params":{"sleep_ms":0}})";

}  // namespace

TEST(Queue, DelayedJobsAreScheduledThenRun) {
  Server s({.args = {"--job-poll", "0.2"}});
  auto cid = make_creator(s.port(), "delayed");
  auto r = generate(s.port(), cid, R"({"pipeline":"diagnostic","params":{"sleep_ms":0},"delay_seconds":2})");
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(r.json().at("state").as_string(), "scheduled");
  auto id = r.json().at("id").as_int64();
  EXPECT_EQ(queue_named(s.port(), "generate").at("counts").at("scheduled").as_int64(), 1);
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(get(s.port(), "/api/jobs/" + std::to_string(id)).json().at("state").as_string(), "scheduled");
  EXPECT_EQ(wait_job(s.port(), id, terminal, 20s).at("state").as_string(), "succeeded");
  // run_at as RFC 3339; both at once, or a bad time, is a 422 naming the field.
  auto at = generate(s.port(), cid, R"({"pipeline":"diagnostic","run_at":"2099-01-01T00:00:00Z"})");
  EXPECT_EQ(at.status, 422) << at.body;  // more than a year ahead
  EXPECT_EQ(at.json().at("error").at("field").as_string(), "run_at");
  auto both = generate(s.port(), cid, R"({"run_at":"2026-01-01T00:00:00Z","delay_seconds":5})");
  EXPECT_EQ(both.status, 422);
  auto bad = generate(s.port(), cid, R"({"run_at":"tomorrow"})");
  EXPECT_EQ(bad.status, 422);
  EXPECT_EQ(bad.json().at("error").at("field").as_string(), "run_at");
  auto past = generate(s.port(), cid, R"({"pipeline":"diagnostic","params":{"sleep_ms":0},"run_at":"2020-01-01T00:00:00Z"})");
  ASSERT_EQ(past.status, 202) << past.body;
  EXPECT_EQ(past.json().at("state").as_string(), "queued");
}

TEST(Queue, IdempotencyKeysAreScopedAndARequestMismatchIsRefused) {
  Server s;
  auto a = make_creator(s.port(), "idem-a");
  auto b = make_creator(s.port(), "idem-b");
  Headers key{{"Idempotency-Key", "order-1"}};
  auto first = generate(s.port(), a, kQuick, key);
  ASSERT_EQ(first.status, 202) << first.body;
  auto id = first.json().at("id").as_int64();
  auto replay = generate(s.port(), a, kQuick, key);
  EXPECT_EQ(replay.json().at("id").as_int64(), id);
  EXPECT_EQ(replay.header("idempotent-replayed"), "true");
  // The same key for another creator is another key: a new job, for that creator.
  auto other = generate(s.port(), b, kQuick, key);
  ASSERT_TRUE(other.status == 202 || other.status == 200) << other.body;
  EXPECT_NE(other.json().at("id").as_int64(), id);
  EXPECT_EQ(other.json().at("creator_id").as_int64(), b);
  EXPECT_TRUE(other.header("idempotent-replayed").empty());
  // The same key with a different request: 422, not the old job.
  auto changed = generate(s.port(), a, R"({"pipeline":"diagnostic","params":{"sleep_ms":5}})", key);
  EXPECT_EQ(changed.status, 422) << changed.body;
  EXPECT_EQ(changed.json().at("error").at("code").as_string(), "idempotency_key_reused");
}

TEST(Queue, ConfiguredPipelinesHaveTheirOwnKindAndQueue) {
  std::string dir = temp_dir("kinds");
  std::ofstream(dir + "/p.toml") << "[[pipeline]]\nname = \"tiny\"\nqueue = \"light\"\nconcurrency = 3\n"
                                    "[[pipeline.step]]\nname = \"nothing\"\ntype = \"noop\"\n";
  Server s({.args = {"--pipelines", dir + "/p.toml"}});
  auto cid = make_creator(s.port(), "kinds");
  auto r = generate(s.port(), cid, R"({"pipeline":"tiny"})");
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(r.json().at("kind").as_string(), "tiny");
  EXPECT_EQ(r.json().at("queue").as_string(), "light");
  auto id = r.json().at("id").as_int64();
  EXPECT_EQ(wait_job(s.port(), id, terminal, 20s).at("state").as_string(), "succeeded");
  auto listed = get(s.port(), "/api/jobs?kind=tiny").json().at("items").as_array();
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(get(s.port(), "/api/jobs?queue=light").json().at("items").as_array().size(), 1u);
  EXPECT_EQ(queue_named(s.port(), "light").at("concurrency").as_int64(), 3);
  auto pipelines = get(s.port(), "/api/pipelines").json().at("items").as_array();
  bool found = false;
  for (const auto& p : pipelines)
    if (p.at("name").as_string() == "tiny") found = p.at("queue").as_string() == "light";
  EXPECT_TRUE(found);
  std::filesystem::remove_all(dir);
}

TEST(Queue, PausedQueuesHoldTheirJobsUntilResumed) {
  Server s({.args = {"--job-poll", "0.2"}});
  auto cid = make_creator(s.port(), "paused");
  auto p = post_json(s.port(), "/api/queues/generate/pause", "");
  ASSERT_EQ(p.status, 200) << p.body;
  EXPECT_TRUE(p.json().at("paused").as_bool());
  auto id = generate(s.port(), cid, kQuick).json().at("id").as_int64();
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(get(s.port(), "/api/jobs/" + std::to_string(id)).json().at("state").as_string(), "queued");
  auto q = queue_named(s.port(), "generate");
  EXPECT_TRUE(q.at("paused").as_bool());
  EXPECT_EQ(q.at("counts").at("queued").as_int64(), 1);
  EXPECT_EQ(post_json(s.port(), "/api/queues/no-such-queue/pause", "").status, 404);
  ASSERT_EQ(post_json(s.port(), "/api/queues/generate/resume", "").status, 200);
  EXPECT_EQ(wait_job(s.port(), id, terminal, 20s).at("state").as_string(), "succeeded");
  EXPECT_GE(queue_named(s.port(), "generate").at("counts").at("succeeded").as_int64(), 1);
}

// Store operations so far: every PostgreSQL connection use, every SQLite write and every task of
// the store's reader pool (where SQLite reads run), read from /metrics.
double store_operations(uint16_t port) {
  auto text = get(port, "/metrics").body;
  double total = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    bool counted = line.rfind("creatord_store_wait_seconds_count", 0) == 0 ||
                   line.rfind("creatord_pool_task_duration_seconds_count{pool=\"reader\"}", 0) == 0;
    if (counted) total += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return total;
}

// A paused queue with a waiting job used to make its dispatcher claim, find nothing, ask when
// the next job is due (that job: in the past), and look again 1 ms later: a thousand store
// operations a second for as long as the queue stayed paused.
TEST(Queue, APausedQueueWithWaitingJobsIsNotPolledInALoop) {
  Server s({.args = {"--job-poll", "0.2"}});
  auto cid = make_creator(s.port(), "idle");
  ASSERT_EQ(post_json(s.port(), "/api/queues/generate/pause", "").status, 200);
  auto id = generate(s.port(), cid, kQuick).json().at("id").as_int64();
  std::this_thread::sleep_for(300ms);
  double before = store_operations(s.port());
  ASSERT_GT(before, 0);  // the series exist
  std::this_thread::sleep_for(1s);
  double during = store_operations(s.port()) - before;
  // Polling every 0.2 s: a claim and a look each time, on each queue, and the scrape's own.
  EXPECT_LT(during, 60) << "store operations in 1 s while paused";
  ASSERT_EQ(post_json(s.port(), "/api/queues/generate/resume", "").status, 200);
  EXPECT_EQ(wait_job(s.port(), id, terminal, 20s).at("state").as_string(), "succeeded");
}

TEST(Queue, SchedulesAreListedWithTheirNextRunAndCheckedByTheCli) {
  std::string dir = temp_dir("sched");
  std::ofstream(dir + "/p.toml") << "[[schedule]]\nname = \"nightly\"\npipeline = \"diagnostic\"\n"
                                    "cron = \"30 2 * * *\"\ntimezone = \"Europe/Berlin\"\ncreators = \"all\"\n"
                                    "params = { sleep_ms = 0 }\n";
  Server s({.args = {"--pipelines", dir + "/p.toml"}});
  auto items = get(s.port(), "/api/schedules").json().at("items").as_array();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].at("name").as_string(), "nightly");
  EXPECT_EQ(items[0].at("creators").as_string(), "all");
  EXPECT_TRUE(items[0].at("next_run").is_string());
  std::ofstream(dir + "/bad.toml") << "[[schedule]]\nname = \"x\"\npipeline = \"diagnostic\"\ncron = \"61 * * * *\"\n"
                                      "creator = 1\n";
  Server refused({.args = {"--pipelines", dir + "/bad.toml"}, .expect_listening = false});
  EXPECT_NE(refused.wait_exit(), 0);
  EXPECT_NE(refused.output().find("bad.toml:4:"), std::string::npos) << refused.output();
  EXPECT_NE(refused.output().find("minute"), std::string::npos) << refused.output();
  std::filesystem::remove_all(dir);
}
