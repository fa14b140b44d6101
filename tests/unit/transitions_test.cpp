// The queue's rules, each tested once, with exact times (no clock, no sleeping).
#include <gtest/gtest.h>

#include "queue/transitions.hpp"

using namespace creatord;
using namespace creatord::queue;

namespace {

constexpr int64_t kNow = 1'800'000'000'000;

Job running_job(int attempt = 1, int max_attempts = 3) {
  Job j;
  j.id = 7;
  j.queue = "generate";
  j.state = JobState::running;
  j.attempt = attempt;
  j.max_attempts = max_attempts;
  j.lease_owner = "w1";
  j.lease_expires_at_ms = kNow - 1;
  j.run_at_ms = kNow - 5000;
  return j;
}

const RetryPolicy kPolicy{1000, 60000};

}  // namespace

TEST(Transitions, NewJobsAreQueuedOrScheduled) {
  EXPECT_EQ(initial_state(kNow, kNow), JobState::queued);
  EXPECT_EQ(initial_state(kNow - 1, kNow), JobState::queued);
  EXPECT_EQ(initial_state(kNow + 1, kNow), JobState::scheduled);
  EXPECT_STREQ(initial_event(JobState::scheduled), job_event::scheduled);
  EXPECT_STREQ(initial_event(JobState::queued), job_event::queued);
}

TEST(Transitions, SuccessEndsTheJobWithItsResultFencedOnTheWorker) {
  auto w = finish(running_job(), "w1", RunOutcome{RunOutcome::Kind::succeeded, boost::json::object{{"n", 1}}}, kNow,
                  kPolicy, 0.5);
  EXPECT_EQ(w.state, JobState::succeeded);
  EXPECT_EQ(w.finished_at_ms, kNow);
  EXPECT_TRUE(w.progress_complete);
  ASSERT_TRUE(w.result);
  EXPECT_EQ(w.result->at("n").as_int64(), 1);
  EXPECT_EQ(w.fence.state, JobState::running);
  EXPECT_EQ(w.fence.attempt, 1);
  EXPECT_EQ(w.fence.owner, "w1");
  EXPECT_EQ(w.event_type, job_event::finished);
  EXPECT_EQ(w.event_data.at("state").as_string(), "succeeded");
  EXPECT_EQ(w.steps, StepReset::none);
}

TEST(Transitions, RetryableFailureWithAttemptsLeftRetriesAfterBackoff) {
  auto w = finish(running_job(2, 3), "w1", RunOutcome{RunOutcome::Kind::failed, nullptr, "boom", true}, kNow, kPolicy, 1.0);
  EXPECT_EQ(w.state, JobState::retrying);
  EXPECT_EQ(w.run_at_ms, kNow + 2000);  // base * 2^(attempt-1), full jitter at 1.0
  EXPECT_EQ(w.finished_at_ms, 0);
  EXPECT_EQ(w.last_error, "boom");
  EXPECT_EQ(w.steps, StepReset::running_to_pending);
  EXPECT_EQ(w.event_type, job_event::retrying);
  EXPECT_EQ(w.event_data.at("error").as_string(), "boom");
}

TEST(Transitions, FailureIsFinalWithoutAttemptsOrWhenNotRetryable) {
  auto last = finish(running_job(3, 3), "w1", RunOutcome{RunOutcome::Kind::failed, nullptr, "boom", true}, kNow, kPolicy, 0);
  EXPECT_EQ(last.state, JobState::failed);
  EXPECT_EQ(last.finished_at_ms, kNow);
  auto fatal = finish(running_job(1, 3), "w1", RunOutcome{RunOutcome::Kind::failed, nullptr, "bad", false}, kNow, kPolicy, 0);
  EXPECT_EQ(fatal.state, JobState::failed);
  EXPECT_EQ(fatal.event_type, job_event::finished);
}

TEST(Transitions, CancelledRunMarksItsRunningStepsCancelled) {
  auto w = finish(running_job(), "w1", RunOutcome{RunOutcome::Kind::cancelled, nullptr, "cancelled", false}, kNow,
                  kPolicy, 0);
  EXPECT_EQ(w.state, JobState::cancelled);
  EXPECT_EQ(w.steps, StepReset::running_to_cancelled);
  EXPECT_EQ(w.event_data.at("state").as_string(), "cancelled");
}

TEST(Transitions, ReleaseAtShutdownDoesNotCountTheAttempt) {
  auto w = finish(running_job(2), "w1", RunOutcome{RunOutcome::Kind::released}, kNow, kPolicy, 0);
  EXPECT_EQ(w.state, JobState::queued);
  EXPECT_EQ(w.attempt, 1);
  EXPECT_EQ(w.run_at_ms, kNow);
  EXPECT_EQ(w.event_type, job_event::released);
}

TEST(Transitions, RecoveryRetriesFailsOrCancelsAndIsFencedOnTheExpiredLease) {
  auto w = recover(running_job(1, 3), kNow, true, kPolicy);
  EXPECT_EQ(w.state, JobState::retrying);
  EXPECT_EQ(w.run_at_ms, kNow + 1000);
  EXPECT_EQ(w.fence.lease_expired_before, kNow);
  EXPECT_EQ(w.fence.owner, "w1");
  EXPECT_EQ(recover(running_job(3, 3), kNow, true, kPolicy).state, JobState::failed);
  Job asked = running_job();
  asked.cancel_requested = true;
  EXPECT_EQ(recover(asked, kNow, true, kPolicy).state, JobState::cancelled);
  EXPECT_EQ(recover(running_job(), kNow, false, kPolicy).fence.lease_expired_before, 0);  // start-up: all running
}

TEST(Transitions, CancelStopsWaitingJobsAtOnceAndFlagsRunningOnes) {
  for (auto s : {JobState::queued, JobState::scheduled, JobState::retrying}) {
    Job j = running_job();
    j.state = s;
    auto w = cancel(j, kNow);
    ASSERT_TRUE(w);
    EXPECT_EQ(w->state, JobState::cancelled);
    EXPECT_EQ(w->finished_at_ms, kNow);
    EXPECT_EQ(w->fence.state, s);
  }
  auto flagged = cancel(running_job(), kNow);
  ASSERT_TRUE(flagged);
  EXPECT_EQ(flagged->state, JobState::running);
  EXPECT_TRUE(flagged->cancel_requested);
  EXPECT_TRUE(flagged->keep_lease);
  EXPECT_EQ(flagged->event_type, job_event::cancel_requested);
  for (auto s : {JobState::succeeded, JobState::failed, JobState::cancelled}) {
    Job j = running_job();
    j.state = s;
    EXPECT_EQ(cancel(j, kNow).error().code, ErrorCode::conflict);
  }
}

TEST(Transitions, ManualRetryKeepsCountingAttemptsAndAllowsAsManyAgain) {
  Job j = running_job(3, 3);
  j.state = JobState::failed;
  auto w = retry(j, kNow);
  ASSERT_TRUE(w);
  EXPECT_EQ(w->state, JobState::queued);
  EXPECT_EQ(w->attempt, 3);
  EXPECT_EQ(w->max_attempts, 6);
  EXPECT_EQ(w->manual_retries, 1);
  EXPECT_EQ(w->finished_at_ms, 0);
  EXPECT_EQ(w->steps, StepReset::unfinished_to_pending);
  // A second retry after three more failures allows three more again.
  j.attempt = 6;
  j.max_attempts = 6;
  j.manual_retries = 1;
  EXPECT_EQ(retry(j, kNow)->max_attempts, 9);
  for (auto s : {JobState::queued, JobState::running, JobState::succeeded, JobState::scheduled}) {
    j.state = s;
    EXPECT_EQ(retry(j, kNow).error().code, ErrorCode::conflict);
  }
}

TEST(Transitions, StepEventsNameTheStepAndItsOutcome) {
  StepUpdate u{7, 1, "render", StepUpdate::Kind::progress, 0.5};
  auto [type, data] = step_event(u);
  EXPECT_STREQ(type, job_event::step_progress);
  EXPECT_EQ(data.at("progress").as_double(), 0.5);
  u.kind = StepUpdate::Kind::cancelled;
  u.error = "cancelled";
  auto [t2, d2] = step_event(u);
  EXPECT_STREQ(t2, job_event::step_finished);
  EXPECT_EQ(d2.at("state").as_string(), "cancelled");
}
