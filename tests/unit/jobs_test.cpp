#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "core/clock.hpp"
#include "queue/job.hpp"
#include "jobs/pipeline.hpp"
#include "queue/transitions.hpp"

using namespace creatord;
namespace asio = boost::asio;

namespace {


}  // namespace

using queue::retry_delay_ms;

TEST(Backoff, GrowsExponentiallyWithJitterAndCap) {
  EXPECT_EQ(retry_delay_ms(1, 1000, 60000, 1.0), 1000);
  EXPECT_EQ(retry_delay_ms(1, 1000, 60000, 0.0), 500);
  EXPECT_EQ(retry_delay_ms(3, 1000, 60000, 1.0), 4000);
  EXPECT_EQ(retry_delay_ms(30, 1000, 60000, 1.0), 60000);
  for (int a = 1; a < 10; ++a) {
    auto d = retry_delay_ms(a, 100, 100000, 0.5);
    EXPECT_GE(d, retry_delay_ms(a, 100, 100000, 0.0));
    EXPECT_LE(d, retry_delay_ms(a, 100, 100000, 1.0));
  }
}

TEST(JobState, Names) {
  for (auto s : {JobState::queued, JobState::scheduled, JobState::running, JobState::retrying, JobState::succeeded, JobState::failed,
                 JobState::cancelled})
    EXPECT_EQ(parse_job_state(to_string(s)).value(), s);
  EXPECT_FALSE(parse_job_state("done"));
  EXPECT_TRUE(is_terminal(JobState::cancelled));
  EXPECT_FALSE(is_terminal(JobState::retrying));
}

TEST(Pipeline, ValidationRefusesCyclesUnknownNeedsAndDuplicates) {
  auto noop = [](StepContext&) -> asio::awaitable<StepResult> { co_return boost::json::value(nullptr); };
  Pipeline ok{"ok", "", {{"a", {}, noop}, {"b", {"a"}, noop}, {"c", {"a", "b"}, noop}}};
  EXPECT_TRUE(validate_pipeline(ok));
  Pipeline cycle{"cyc", "", {{"a", {"c"}, noop}, {"b", {"a"}, noop}, {"c", {"b"}, noop}}};
  auto c = validate_pipeline(cycle);
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("cycle"), std::string::npos);
  Pipeline unknown{"u", "", {{"a", {"zzz"}, noop}}};
  EXPECT_NE(validate_pipeline(unknown).error().message.find("unknown step zzz"), std::string::npos);
  Pipeline dup{"d", "", {{"a", {}, noop}, {"a", {}, noop}}};
  EXPECT_FALSE(validate_pipeline(dup));
  Pipeline self{"s", "", {{"a", {"a"}, noop}}};
  EXPECT_FALSE(validate_pipeline(self));
}

TEST(Clock, ParsesRfc3339WithOffsetsAndFractions) {
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parse_rfc3339("1970-01-01T01:00:00+01:00"), 0);
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:01.5Z"), 1500);
  EXPECT_EQ(format_rfc3339(*parse_rfc3339("2026-11-29T10:11:12.345-05:30")), "2026-11-29T15:41:12.345Z");
  EXPECT_FALSE(parse_rfc3339("2026-11-29 10:11"));
  EXPECT_FALSE(parse_rfc3339("2026-13-01T00:00:00Z"));
  EXPECT_FALSE(parse_rfc3339("2026-11-29T10:11:12"));  // no offset: ambiguous
}
