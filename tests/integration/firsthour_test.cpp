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
