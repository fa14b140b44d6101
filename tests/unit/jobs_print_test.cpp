#include "app/jobs_print.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

using namespace creatord;

namespace {
Job sample() {
  Job j;
  j.id = 7;
  j.kind = "generate";
  j.state = JobState::failed;
  j.attempt = 2;
  j.max_attempts = 3;
  j.progress = 1.0 / 3;
  j.creator_id = 1;
  j.created_at_ms = 1'700'000'000'000;
  return j;
}
}  // namespace

TEST(JobsPrint, TableHasAHeaderAndOneLinePerJob) {
  auto text = jobs_table({sample()}, false);
  auto nl = text.find('\n');
  ASSERT_NE(nl, std::string::npos);
  std::string header = text.substr(0, nl);
  for (const char* col : {"ID", "KIND", "STATE", "ATTEMPT", "PROGRESS", "CREATOR", "CREATED"})
    EXPECT_NE(header.find(col), std::string::npos) << col;
  std::string row = text.substr(nl + 1);
  EXPECT_NE(row.find("generate"), std::string::npos) << row;
  EXPECT_NE(row.find("failed"), std::string::npos);
  EXPECT_NE(row.find("2/3"), std::string::npos);
  EXPECT_NE(row.find("33%"), std::string::npos);
  EXPECT_NE(row.find("2023-11-14T22:13:20"), std::string::npos) << row;
  EXPECT_EQ(header.find("STATE"), row.find("failed")) << text;  // the columns line up
  EXPECT_EQ(text.find('\x1b'), std::string::npos);
  EXPECT_NE(jobs_table({}, false).find("(no jobs)"), std::string::npos);
}

TEST(JobsPrint, ColoursOnlyWhenAsked) {
  auto plain = jobs_table({sample()}, false);
  auto colored = jobs_table({sample()}, true);
  EXPECT_NE(colored.find("\x1b[31mfailed"), std::string::npos) << colored;
  EXPECT_EQ(job_details(sample(), false).find('\x1b'), std::string::npos);
  EXPECT_NE(job_details(sample(), true).find("\x1b[31m\"state\": \"failed\""), std::string::npos);
}

TEST(JobsPrint, ShowIsIndentedAndJsonIsOneLine) {
  auto shown = job_details(sample(), false);
  EXPECT_NE(shown.find("{\n  \"id\": 7,\n"), std::string::npos) << shown;
  EXPECT_NE(shown.find("\"progress\": 0.333"), std::string::npos) << shown;
  auto line = jobs_json({sample()});
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  auto v = boost::json::parse(line);
  EXPECT_EQ(v.at("items").as_array().at(0).at("id").as_int64(), 7);
}

// Issue 16: `jobs watch` draws what the job's events say, a bar per step.
TEST(JobsPrint, WatchDrawsABarPerStepFromTheEvents) {
  Job j;
  j.id = 3;
  j.kind = "generate";
  j.state = JobState::queued;
  j.steps = {StepRecord{"load_creator", "pending"}, StepRecord{"render_avatar", "pending"}};
  WatchView view(j);
  int64_t seq = 0;
  auto event = [&](const char* type, const char* data) { view.apply(JobEvent{++seq, type, data, 0}); };
  event("job.started", R"({"attempt":1})");
  event("step.started", R"({"step":"load_creator","attempt":1})");
  event("step.finished", R"({"step":"load_creator","attempt":1,"state":"succeeded"})");
  event("step.started", R"({"step":"render_avatar","attempt":1})");
  event("step.progress", R"({"step":"render_avatar","attempt":1,"progress":0.5,"message":"avatar 1 of 2"})");
  std::string frame = view.frame(false);
  EXPECT_NE(frame.find("job 3 generate: running  75%"), std::string::npos) << frame;
  EXPECT_NE(frame.find("load_creator   [####################] 100%  succeeded"), std::string::npos) << frame;
  EXPECT_NE(frame.find("render_avatar  [##########----------]  50%  running  avatar 1 of 2"), std::string::npos) << frame;
  EXPECT_EQ(frame.find('\x1b'), std::string::npos);
  EXPECT_NE(view.frame(true).find("\x1b[36m"), std::string::npos);  // running, in colour when asked
  EXPECT_FALSE(view.finished());
  event("job.finished", R"({"state":"succeeded","attempt":1})");
  EXPECT_TRUE(view.finished());
  EXPECT_TRUE(view.succeeded());
  EXPECT_EQ(event_line(JobEvent{9, "step.progress", R"({"step":"s","progress":0.25,"message":"m"})", 0}),
            "step.progress s 25% m\n");
}
