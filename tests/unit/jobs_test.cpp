#include <filesystem>
#include <thread>

#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "run_awaitable.hpp"
#include "store_fixture.hpp"

#include "jobs/job.hpp"
#include "jobs/pipeline.hpp"
#include "store/sqlite/sqlite_store.hpp"

using namespace creatord;
namespace asio = boost::asio;

namespace {


class JobStoreTest : public StoreFixture {
 protected:
  void SetUp() override {
    StoreFixture::SetUp();
    store_ = jobs_;
  }
  Job enqueue(const std::string& queue = "default", std::optional<std::string> key = {}, int max_attempts = 3) {
    NewJob n;
    n.kind = "noop";
    n.queue = queue;
    n.max_attempts = max_attempts;
    n.idempotency_key = key;
    n.steps = {"a", "b"};
    auto r = run(store_->enqueue(n));
    EXPECT_TRUE(r) << r.error().message;
    return r->job;
  }
  JobStore* store_ = nullptr;
};

}  // namespace

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
  for (auto s : {JobState::queued, JobState::running, JobState::retrying, JobState::succeeded, JobState::failed,
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

TEST_P(JobStoreTest, IdempotencyKeyReturnsTheSameJob) {
  Job a = enqueue("default", "key-1");
  NewJob again;
  again.kind = "noop";
  again.idempotency_key = "key-1";
  auto r = run(store_->enqueue(again));
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->created);
  EXPECT_EQ(r->job.id, a.id);
  EXPECT_NE(enqueue("default", "key-2").id, a.id);
}

TEST_P(JobStoreTest, ClaimIsBatchedAndEachJobGoesToOneWorker) {
  for (int i = 0; i < 10; ++i) enqueue();
  enqueue("other");
  auto first = run(store_->claim("default", "w1", 4, 30000)).value();
  auto second = run(store_->claim("default", "w2", 100, 30000)).value();
  EXPECT_EQ(first.size(), 4u);
  EXPECT_EQ(second.size(), 6u);
  EXPECT_TRUE(run(store_->claim("default", "w3", 100, 30000))->empty());
  for (const auto& j : first) {
    EXPECT_EQ(j.state, JobState::running);
    EXPECT_EQ(j.attempt, 1);
    for (const auto& k : second) EXPECT_NE(j.id, k.id);
  }
}

TEST_P(JobStoreTest, CompletionIsFencedByOwnerAndAttempt) {
  Job j = enqueue();
  auto claimed = run(store_->claim("default", "w1", 1, 30000)).value().at(0);
  std::vector<JobFinish> wrong_owner{{claimed.id, claimed.attempt, JobFinish::Kind::succeeded}};
  EXPECT_FALSE(run(store_->finish("w2", wrong_owner)).value().at(0));
  std::vector<JobFinish> wrong_attempt{{claimed.id, claimed.attempt + 1, JobFinish::Kind::succeeded}};
  EXPECT_FALSE(run(store_->finish("w1", wrong_attempt)).value().at(0));
  StepUpdate u{claimed.id, claimed.attempt, "a", StepUpdate::Kind::started};
  EXPECT_FALSE(run(store_->update_step("w2", u)).value());
  EXPECT_TRUE(run(store_->update_step("w1", u)).value());
  JobFinish ok{claimed.id, claimed.attempt, JobFinish::Kind::succeeded};
  ok.result = boost::json::object{{"answer", 42}};
  std::vector<JobFinish> right{ok};
  EXPECT_TRUE(run(store_->finish("w1", right)).value().at(0));
  auto done = run(store_->get_job(j.id)).value();
  EXPECT_EQ(done.state, JobState::succeeded);
  EXPECT_EQ(done.result.at("answer").as_int64(), 42);
  EXPECT_EQ(done.progress, 1.0);
  EXPECT_FALSE(run(store_->finish("w1", right)).value().at(0));  // finished once only
}

TEST_P(JobStoreTest, ExpiredLeasesReturnJobsWithTheAttemptCounted) {
  Job j = enqueue("default", {}, 2);
  auto c1 = run(store_->claim("default", "dead", 1, 1)).value().at(0);  // 1 ms lease
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(run(store_->recover_jobs(false, 0)).value(), 1);
  auto back = run(store_->get_job(j.id)).value();
  EXPECT_EQ(back.state, JobState::retrying);
  EXPECT_EQ(back.attempt, 1);
  // The dead worker cannot finish it any more.
  std::vector<JobFinish> late{{c1.id, c1.attempt, JobFinish::Kind::succeeded}};
  EXPECT_FALSE(run(store_->finish("dead", late)).value().at(0));
  auto c2 = run(store_->claim("default", "alive", 1, 1)).value().at(0);
  EXPECT_EQ(c2.attempt, 2);
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(run(store_->recover_jobs(false, 0)).value(), 1);
  EXPECT_EQ(run(store_->get_job(j.id))->state, JobState::failed);  // attempts used up
}

TEST_P(JobStoreTest, HeartbeatRenewsLeasesAndReportsCancellation) {
  Job j = enqueue();
  ASSERT_EQ(run(store_->claim("default", "w1", 1, 50)).value().size(), 1u);
  EXPECT_TRUE(run(store_->heartbeat("w1", 60000))->empty());
  std::this_thread::sleep_for(std::chrono::milliseconds(80));
  EXPECT_EQ(run(store_->recover_jobs(false, 0)).value(), 0);  // renewed: not expired
  auto cancel = run(store_->request_cancel(j.id)).value();
  EXPECT_EQ(cancel.state, JobState::running);
  EXPECT_TRUE(cancel.cancel_requested);
  EXPECT_EQ(run(store_->heartbeat("w1", 60000)).value(), std::vector<int64_t>{j.id});
}

TEST_P(JobStoreTest, CancelAndRetry) {
  Job queued = enqueue();
  auto c = run(store_->request_cancel(queued.id)).value();
  EXPECT_EQ(c.state, JobState::cancelled);
  EXPECT_EQ(run(store_->request_cancel(queued.id)).error().code, ErrorCode::conflict);
  EXPECT_TRUE(run(store_->claim("default", "w", 10, 30000))->empty());  // never runs
  auto r = run(store_->retry_job(queued.id)).value();
  EXPECT_EQ(r.state, JobState::queued);
  EXPECT_EQ(r.attempt, 0);
  EXPECT_EQ(run(store_->retry_job(queued.id)).error().code, ErrorCode::conflict);
  EXPECT_EQ(run(store_->claim("default", "w", 10, 30000))->size(), 1u);
}

TEST_P(JobStoreTest, FailedAttemptsRetryLaterAndStepsKeepTheirOutputs) {
  Job j = enqueue();
  auto c = run(store_->claim("default", "w", 1, 30000)).value().at(0);
  StepUpdate a{c.id, c.attempt, "a", StepUpdate::Kind::started};
  EXPECT_TRUE(run(store_->update_step("w", a)));
  StepUpdate a_done{c.id, c.attempt, "a", StepUpdate::Kind::succeeded};
  a_done.output = boost::json::object{{"x", 1}};
  EXPECT_TRUE(run(store_->update_step("w", a_done)));
  StepUpdate b{c.id, c.attempt, "b", StepUpdate::Kind::started};
  EXPECT_TRUE(run(store_->update_step("w", b)));
  JobFinish f{c.id, c.attempt, JobFinish::Kind::failed};
  f.error = "boom";
  f.retry_at_ms = 1;  // due at once
  std::vector<JobFinish> fs{f};
  EXPECT_TRUE(run(store_->finish("w", fs)).value().at(0));
  auto after = run(store_->get_job(j.id)).value();
  EXPECT_EQ(after.state, JobState::retrying);
  EXPECT_EQ(after.last_error, "boom");
  ASSERT_EQ(after.steps.size(), 2u);
  EXPECT_EQ(after.steps[0].state, "succeeded");
  EXPECT_EQ(after.steps[0].output.at("x").as_int64(), 1);
  EXPECT_EQ(after.steps[1].state, "pending");  // interrupted, to run again
  EXPECT_EQ(run(store_->claim("default", "w", 1, 30000)).value().at(0).attempt, 2);
  auto events = run(store_->job_events(j.id, 0, 100)).value();
  ASSERT_GE(events.size(), 6u);
  EXPECT_EQ(events.front().type, "job.queued");
  for (size_t i = 1; i < events.size(); ++i) EXPECT_EQ(events[i].seq, events[i - 1].seq + 1);
  EXPECT_EQ(run(store_->job_events(j.id, 3, 100))->front().seq, 4);
}

TEST_P(JobStoreTest, DelayedJobsWaitForRunAtAndPruneRemovesOldFinishedJobs) {
  NewJob later;
  later.kind = "noop";
  later.run_at_ms = INT64_MAX / 2;
  EXPECT_TRUE(run(store_->enqueue(later)));
  EXPECT_TRUE(run(store_->claim("default", "w", 10, 30000))->empty());
  EXPECT_EQ(run(store_->next_run_at("default")).value(), INT64_MAX / 2);
  Job j = enqueue();
  EXPECT_TRUE(run(store_->request_cancel(j.id)));
  EXPECT_EQ(run(store_->prune_jobs(0)).value(), 0);
  EXPECT_EQ(run(store_->prune_jobs(INT64_MAX)).value(), 1);
  EXPECT_EQ(run(store_->get_job(j.id)).error().code, ErrorCode::not_found);
}

INSTANTIATE_TEST_SUITE_P(Stores, JobStoreTest, ::testing::Values(std::string("sqlite"), std::string("postgres")),
                         store_param_name);
