// Issue 14: examples/legacy runs the original service's TaskExecutor as an exec step, for the
// creator's original id (external_id), its stdout chatter kept out of the step's output.
#include <gtest/gtest.h>

#include "harness.hpp"

using namespace harness;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

json::value generate(uint16_t port, int64_t creator) {
  auto r = post_json(port, "/api/creators/" + std::to_string(creator) + "/generate",
                     R"({"pipeline":"legacy","params":{"max_workers":2}})");
  EXPECT_EQ(r.status, 202) << r.body;
  int64_t id = r.json().at("id").as_int64();
  return wait_job(port, id, [](const json::value& j) { return job_in(j, {"succeeded", "failed", "cancelled"}); });
}

}  // namespace

TEST(LegacyExample, RunsTheOriginalExecutorForTheOriginalId) {
  Server s({.args = {"--pipelines", std::string(EXAMPLES_DIR) + "/legacy/pipelines.toml"},
            .env = {{"SUPABASE_URL", "https://project.supabase.co"}, {"SUPABASE_API_KEY", "legacy-test-key"}}});
  auto p = s.port();
  auto c = post_json(p, "/api/creators",
                     R"({"name":"Imported","handle":"imported","external_id":"6b1d3c2e-0000-4000-8000-00000000abcd"})");
  ASSERT_EQ(c.status, 201) << c.body;
  int64_t cid = c.json().at("id").as_int64();
  auto job = generate(p, cid);
  ASSERT_EQ(job.at("state").as_string(), "succeeded") << json::serialize(job);
  const auto& result = job.at("result");
  EXPECT_EQ(result.at("original_id").as_string(), "6b1d3c2e-0000-4000-8000-00000000abcd");
  EXPECT_EQ(result.at("images").as_array().size(), 3u);
  auto images = get(p, "/api/creators/" + std::to_string(cid) + "/images").json().at("items").as_array();
  EXPECT_EQ(images.size(), 3u);
  std::string log(job.at("steps").as_array()[0].at("log").as_string());
  EXPECT_NE(log.find("[TaskExecutor] 6b1d3c2e-0000-4000-8000-00000000abcd: all steps done"), std::string::npos) << log;
  EXPECT_EQ(log.find("legacy-test-key"), std::string::npos) << "the key is a secret";

  // A creator that did not come from the original service has no original id to run.
  auto local = post_json(p, "/api/creators", R"({"name":"Local","handle":"local"})").json().at("id").as_int64();
  auto failed = generate(p, local);
  EXPECT_EQ(failed.at("state").as_string(), "failed");
  EXPECT_NE(json::serialize(failed).find("has no external_id"), std::string::npos) << json::serialize(failed);
}
