// The driver conformance suite: every queue driver (SQLite, PostgreSQL) passes the same tests,
// through the JobQueue service, with a manual clock (leases expire and delayed jobs come due
// without sleeping).
#include <algorithm>
#include <gtest/gtest.h>

#include "jobs/event_hub.hpp"
#include "queue/job_queue.hpp"
#include "queue/scheduler.hpp"
#include "run_awaitable.hpp"
#include "store_fixture.hpp"

using namespace creatord;
using queue::Finished;
using queue::RunOutcome;

namespace {

constexpr int64_t kStart = 1'800'000'000'000;

class QueueDriverTest : public StoreFixture {
 protected:
  void SetUp() override {
    StoreFixture::SetUp();
    if (IsSkipped()) return;
    queue_ = std::make_unique<queue::JobQueue>(*driver_, hub_, clock_, queue::RetryPolicy{1000, 60000});
  }
  NewJob job(const std::string& queue = "default", int max_attempts = 3) {
    NewJob n;
    n.kind = "noop";
    n.queue = queue;
    n.max_attempts = max_attempts;
    n.steps = {"a", "b"};
    return n;
  }
  Job enqueue(NewJob n) {
    auto r = run(queue_->enqueue(std::move(n)));
    EXPECT_TRUE(r) << r.error().message;
    return r->job;
  }
  Job enqueue(const std::string& queue = "default", int max_attempts = 3) { return enqueue(job(queue, max_attempts)); }
  std::vector<Job> claim(const std::string& owner, int n = 10, const std::string& queue = "default") {
    auto r = run(queue_->claim(queue, owner, n, 30000));
    EXPECT_TRUE(r) << r.error().message;
    return r.value();
  }
  bool finish(const Job& j, const std::string& owner, RunOutcome o) {
    std::vector<Finished> runs{Finished{j, std::move(o)}};
    auto r = run(queue_->finish(owner, std::move(runs)));
    EXPECT_TRUE(r) << r.error().message;
    return r.value().at(0);
  }
  Job get(int64_t id) { return run(queue_->get_job(id)).value(); }
  QueueInfo counts(const std::string& name) {
    auto qs = run(queue_->queues({}, 3600 * 1000)).value();
    for (auto& q : qs)
      if (q.name == name) return q;
    return QueueInfo{name};
  }

  EventHub hub_;
  ManualClock clock_{kStart};
  std::unique_ptr<queue::JobQueue> queue_;
};

// Thousands of jobs in one insert, one claim and one batch of ends: each is one statement on
// PostgreSQL, whose NOTIFY of the batch's job ids must stay under the 8000-byte payload limit.
TEST_P(QueueDriverTest, ThousandsOfJobsGoThroughOneInsertOneClaimAndOneFinish) {
  constexpr int kJobs = 3000;
  std::vector<NewJob> many;
  for (int i = 0; i < kJobs; ++i) many.push_back(job());
  ASSERT_EQ(run(queue_->enqueue_many(std::move(many))).value(), kJobs);
  auto claimed = claim("w", kJobs);
  ASSERT_EQ(claimed.size(), static_cast<size_t>(kJobs));
  std::vector<Finished> runs;
  for (auto& j : claimed) runs.push_back(Finished{std::move(j), RunOutcome{RunOutcome::Kind::succeeded}});
  auto ended = run(queue_->finish("w", std::move(runs)));
  ASSERT_TRUE(ended) << ended.error().message;
  EXPECT_EQ(std::count(ended->begin(), ended->end(), true), kJobs);
  EXPECT_EQ(counts("default").succeeded, kJobs);
}

TEST_P(QueueDriverTest, ClaimIsBatchedAndEachJobGoesToOneWorker) {
  for (int i = 0; i < 10; ++i) enqueue();
  enqueue("other");
  auto first = claim("w1", 4);
  auto second = claim("w2", 100);
  EXPECT_EQ(first.size(), 4u);
  EXPECT_EQ(second.size(), 6u);
  EXPECT_TRUE(claim("w3", 100).empty());
  for (const auto& j : first) {
    EXPECT_EQ(j.state, JobState::running);
    EXPECT_EQ(j.attempt, 1);
    EXPECT_EQ(j.lease_owner, "w1");
    EXPECT_EQ(j.lease_expires_at_ms, kStart + 30000);
    for (const auto& k : second) EXPECT_NE(j.id, k.id);
  }
}

TEST_P(QueueDriverTest, FinishIsFencedByOwnerAndAttemptAndHappensOnce) {
  Job j = enqueue();
  Job c = claim("w1").at(0);
  EXPECT_FALSE(finish(c, "w2", RunOutcome{RunOutcome::Kind::succeeded}));
  Job stale = c;
  stale.attempt += 1;
  EXPECT_FALSE(finish(stale, "w1", RunOutcome{RunOutcome::Kind::succeeded}));
  StepUpdate u{c.id, c.attempt, "a", StepUpdate::Kind::started};
  EXPECT_FALSE(run(queue_->record_step("w2", u)).value());
  EXPECT_TRUE(run(queue_->record_step("w1", u)).value());
  EXPECT_TRUE(finish(c, "w1", RunOutcome{RunOutcome::Kind::succeeded, boost::json::object{{"answer", 42}}}));
  Job done = get(j.id);
  EXPECT_EQ(done.state, JobState::succeeded);
  EXPECT_EQ(done.result.at("answer").as_int64(), 42);
  EXPECT_EQ(done.progress, 1.0);
  EXPECT_EQ(done.finished_at_ms, kStart);
  EXPECT_TRUE(done.lease_owner.empty());
  EXPECT_FALSE(finish(c, "w1", RunOutcome{RunOutcome::Kind::succeeded}));  // finished once only
}

TEST_P(QueueDriverTest, ExpiredLeasesReturnJobsWithTheAttemptCounted) {
  Job j = enqueue("default", 2);
  Job c1 = claim("dead").at(0);
  EXPECT_EQ(run(queue_->recover(false)).value(), 0);  // lease still good
  clock_.advance(30001);
  EXPECT_EQ(run(queue_->recover(false)).value(), 1);
  Job back = get(j.id);
  EXPECT_EQ(back.state, JobState::retrying);
  EXPECT_EQ(back.attempt, 1);
  EXPECT_EQ(back.run_at_ms, clock_.now_ms() + 1000);
  EXPECT_FALSE(finish(c1, "dead", RunOutcome{RunOutcome::Kind::succeeded}));  // the dead worker lost it
  EXPECT_TRUE(claim("alive").empty());  // not before its backoff
  clock_.advance(1000);
  Job c2 = claim("alive").at(0);
  EXPECT_EQ(c2.attempt, 2);
  clock_.advance(30001);
  EXPECT_EQ(run(queue_->recover(false)).value(), 1);
  EXPECT_EQ(get(j.id).state, JobState::failed);  // attempts used up
}

TEST_P(QueueDriverTest, HeartbeatRenewsLeasesAndReportsCancellation) {
  Job j = enqueue();
  ASSERT_EQ(claim("w1").size(), 1u);
  clock_.advance(20000);
  EXPECT_TRUE(run(queue_->heartbeat("w1", 30000))->empty());
  clock_.advance(20000);  // past the first lease, within the renewed one
  EXPECT_EQ(run(queue_->recover(false)).value(), 0);
  bool stopped = false;
  queue_->watch(j.id, [&] { stopped = true; });
  Job asked = run(queue_->cancel(j.id)).value();
  EXPECT_EQ(asked.state, JobState::running);
  EXPECT_TRUE(asked.cancel_requested);
  EXPECT_TRUE(stopped);  // the worker here was told at once
  EXPECT_EQ(run(queue_->heartbeat("w1", 30000)).value(), std::vector<int64_t>{j.id});
}

TEST_P(QueueDriverTest, CancelAndRetryKeepCountingAttempts) {
  Job j = enqueue("default", 1);
  Job c = claim("w").at(0);
  EXPECT_TRUE(finish(c, "w", RunOutcome{RunOutcome::Kind::failed, nullptr, "boom", true}));
  EXPECT_EQ(get(j.id).state, JobState::failed);
  EXPECT_EQ(run(queue_->cancel(j.id)).error().code, ErrorCode::conflict);
  Job again = run(queue_->retry(j.id)).value();
  EXPECT_EQ(again.state, JobState::queued);
  EXPECT_EQ(again.attempt, 1);
  EXPECT_EQ(again.manual_retries, 1);
  EXPECT_EQ(again.max_attempts, 2);
  EXPECT_EQ(run(queue_->retry(j.id)).error().code, ErrorCode::conflict);
  EXPECT_EQ(claim("w").at(0).attempt, 2);
  Job waiting = enqueue();
  EXPECT_EQ(run(queue_->cancel(waiting.id))->state, JobState::cancelled);
  EXPECT_TRUE(claim("w").empty());  // a cancelled job never runs
}

TEST_P(QueueDriverTest, FailedAttemptsRetryLaterStepsKeepOutputsAndEventsAreOrdered) {
  Job j = enqueue();
  Job c = claim("w").at(0);
  EXPECT_TRUE(run(queue_->record_step("w", StepUpdate{c.id, c.attempt, "a", StepUpdate::Kind::started})).value());
  StepUpdate a_done{c.id, c.attempt, "a", StepUpdate::Kind::succeeded};
  a_done.output = boost::json::object{{"x", 1}};
  EXPECT_TRUE(run(queue_->record_step("w", a_done)).value());
  EXPECT_TRUE(run(queue_->record_step("w", StepUpdate{c.id, c.attempt, "b", StepUpdate::Kind::started})).value());
  EXPECT_TRUE(finish(c, "w", RunOutcome{RunOutcome::Kind::failed, nullptr, "boom", true}));
  Job after = get(j.id);
  EXPECT_EQ(after.state, JobState::retrying);
  EXPECT_EQ(after.last_error, "boom");
  ASSERT_EQ(after.steps.size(), 2u);
  EXPECT_EQ(after.steps[0].state, "succeeded");
  EXPECT_EQ(after.steps[0].output.at("x").as_int64(), 1);
  EXPECT_EQ(after.steps[1].state, "pending");  // interrupted, to run again
  clock_.advance(60000);
  EXPECT_EQ(claim("w").at(0).attempt, 2);
  auto events = run(queue_->job_events(j.id, 0, 100)).value();
  ASSERT_GE(events.size(), 6u);
  EXPECT_EQ(events.front().type, job_event::queued);
  for (size_t i = 1; i < events.size(); ++i) EXPECT_EQ(events[i].seq, events[i - 1].seq + 1);
  EXPECT_EQ(run(queue_->job_events(j.id, 3, 100))->front().seq, 4);
}

TEST_P(QueueDriverTest, CancelledRunsLeaveTheirRunningStepCancelled) {
  Job j = enqueue();
  Job c = claim("w").at(0);
  EXPECT_TRUE(run(queue_->record_step("w", StepUpdate{c.id, c.attempt, "a", StepUpdate::Kind::started})).value());
  EXPECT_TRUE(finish(c, "w", RunOutcome{RunOutcome::Kind::cancelled, nullptr, "cancelled", false}));
  Job after = get(j.id);
  EXPECT_EQ(after.state, JobState::cancelled);
  EXPECT_EQ(after.steps[0].state, "cancelled");
  EXPECT_EQ(after.steps[1].state, "pending");
}

TEST_P(QueueDriverTest, DelayedJobsAreScheduledUntilTheirTimeThenRun) {
  NewJob later = job();
  later.run_at_ms = kStart + 60000;
  Job j = enqueue(later);
  EXPECT_EQ(j.state, JobState::scheduled);
  EXPECT_EQ(run(queue_->job_events(j.id, 0, 10))->front().type, job_event::scheduled);
  EXPECT_EQ(counts("default").scheduled, 1);
  EXPECT_TRUE(claim("w").empty());
  EXPECT_EQ(run(queue_->next_run_at("default")).value(), kStart + 60000);
  EXPECT_EQ(run(queue_->pause("default")).ok(), true);
  EXPECT_EQ(run(queue_->next_run_at("default")).value(), 0);  // paused: nothing to wake for
  EXPECT_EQ(run(queue_->resume("default")).ok(), true);
  enqueue(job());  // due at once: a claim takes it, it is no time to wake at
  EXPECT_EQ(run(queue_->next_run_at("default")).value(), kStart + 60000);
  ASSERT_EQ(claim("w").size(), 1u);
  EXPECT_EQ(run(queue_->cancel(j.id))->state, JobState::cancelled);  // a scheduled job can be cancelled
  Job k = enqueue(later);
  clock_.advance(60000);
  auto claimed = claim("w");
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_EQ(claimed[0].id, k.id);
}

TEST_P(QueueDriverTest, PausedQueuesClaimNothingUntilResumedAndTheFlagIsDurable) {
  enqueue();
  enqueue("other");
  ASSERT_TRUE(run(queue_->pause("default")));
  EXPECT_TRUE(claim("w").empty());
  EXPECT_EQ(claim("w", 10, "other").size(), 1u);  // other queues go on
  EXPECT_TRUE(counts("default").paused);
  reopen();  // the flag survives a restart
  queue_ = std::make_unique<queue::JobQueue>(*driver_, hub_, clock_);
  EXPECT_TRUE(counts("default").paused);
  EXPECT_TRUE(claim("w").empty());
  ASSERT_TRUE(run(queue_->resume("default")));
  EXPECT_FALSE(counts("default").paused);
  EXPECT_EQ(claim("w").size(), 1u);
}

TEST_P(QueueDriverTest, CountsByQueueAndStateIncludeRecentlyFinishedJobs) {
  for (int i = 0; i < 3; ++i) enqueue("count");
  NewJob later = job("count");
  later.run_at_ms = kStart + 1000000;
  enqueue(later);
  auto c = claim("w", 2, "count");
  EXPECT_TRUE(finish(c[0], "w", RunOutcome{RunOutcome::Kind::succeeded}));
  EXPECT_TRUE(finish(c[1], "w", RunOutcome{RunOutcome::Kind::failed, nullptr, "x", false}));
  QueueInfo q = counts("count");
  EXPECT_EQ(q.queued, 1);
  EXPECT_EQ(q.scheduled, 1);
  EXPECT_EQ(q.running, 0);
  EXPECT_EQ(q.succeeded, 1);
  EXPECT_EQ(q.failed, 1);
  clock_.advance(3600 * 1000 + 1);  // finished more than the window ago: no longer counted
  q = counts("count");
  EXPECT_EQ(q.succeeded, 0);
  EXPECT_EQ(q.queued, 1);
}

TEST_P(QueueDriverTest, UniqueKeysReplayWhileLiveRefuseAnotherRequestAndExpire) {
  NewJob a = job();
  a.unique_key = "scope-1";
  a.request_hash = "h1";
  a.unique_ttl_ms = 1000;
  auto first = run(queue_->enqueue(a)).value();
  EXPECT_TRUE(first.created);
  auto replay = run(queue_->enqueue(a)).value();
  EXPECT_FALSE(replay.created);
  EXPECT_EQ(replay.job.id, first.job.id);
  NewJob other = a;
  other.request_hash = "h2";
  EXPECT_EQ(run(queue_->enqueue(other)).error().code, ErrorCode::idempotency_key_reused);
  NewJob scoped = a;
  scoped.unique_key = "scope-2";  // the same client key under another scope is another key
  EXPECT_TRUE(run(queue_->enqueue(scoped))->created);
  clock_.advance(1001);
  auto fresh = run(queue_->enqueue(a)).value();  // the key expired: a new job
  EXPECT_TRUE(fresh.created);
  EXPECT_NE(fresh.job.id, first.job.id);
}

TEST_P(QueueDriverTest, QuotasCountUnfinishedJobsPerPrincipalAndPerCreatorAndReplaysPass) {
  auto quota_job = [this](const std::string& who, int64_t creator) {
    NewJob n = job();
    n.enqueued_by = who;
    n.creator_id = creator;
    n.max_unfinished_by_principal = 2;
    n.max_unfinished_by_creator = 3;
    return n;
  };
  NewJob keyed = quota_job("alice", 1);
  keyed.unique_key = "alice-key";
  EXPECT_TRUE(run(queue_->enqueue(keyed)).value().created);
  Job a2 = enqueue(quota_job("alice", 2));
  auto refused = run(queue_->enqueue(quota_job("alice", 3)));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::too_many_requests);
  EXPECT_EQ(refused.error().field, "quota");
  EXPECT_FALSE(run(queue_->enqueue(keyed)).value().created);  // a replay is never refused
  // Running jobs count; finished ones do not. The first claimed is the keyed one (the oldest).
  auto claimed = claim("w1", 1);
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_FALSE(run(queue_->enqueue(quota_job("alice", 3))));
  EXPECT_TRUE(finish(claimed[0], "w1", RunOutcome{RunOutcome::Kind::succeeded}));
  EXPECT_TRUE(run(queue_->enqueue(quota_job("alice", 3))));
  // The creator's count is everyone's: creator 2 has a2, then two of bob's.
  enqueue(quota_job("bob", 2));
  enqueue(quota_job("bob", 2));
  auto creator_full = run(queue_->enqueue(quota_job("carol", 2)));
  ASSERT_FALSE(creator_full);
  EXPECT_EQ(creator_full.error().code, ErrorCode::too_many_requests);
  EXPECT_TRUE(run(queue_->cancel(a2.id)));
  EXPECT_TRUE(run(queue_->enqueue(quota_job("carol", 2))));
  // Without a principal or limits, nothing is counted.
  NewJob system = job();
  system.creator_id = 2;
  EXPECT_TRUE(run(queue_->enqueue(system)));
}

TEST_P(QueueDriverTest, PruneRemovesOnlyOldFinishedJobs) {
  Job j = enqueue();
  Job keep = enqueue();
  EXPECT_TRUE(run(queue_->cancel(j.id)));
  EXPECT_EQ(run(queue_->prune(1000)).value(), 0);
  clock_.advance(1001);
  EXPECT_EQ(run(queue_->prune(1000)).value(), 1);
  EXPECT_EQ(run(queue_->get_job(j.id)).error().code, ErrorCode::not_found);
  EXPECT_EQ(get(keep.id).state, JobState::queued);
}

TEST_P(QueueDriverTest, ScheduleSlotsAreEnqueuedOnceAcrossSchedulers) {
  auto sched = queue::make_schedule("*/5 * * * *", "UTC");
  ASSERT_TRUE(sched) << sched.error().message;
  queue::ScheduleDef def;
  def.name = "every5";
  def.pipeline = "generate";
  def.creator_id = 1;
  def.schedule = sched.value();
  auto make = [](const queue::ScheduleDef& s, int64_t creator, int64_t slot) {
    NewJob n;
    n.kind = "noop";
    n.queue = "sched";
    n.creator_id = creator;
    n.unique_key = fmt::format("schedule:{}:{}:{}", s.name, slot, creator);
    return n;
  };
  auto none = [](int64_t, int) -> Async<std::vector<int64_t>> { co_return std::vector<int64_t>{}; };
  // Two instances with the same schedule on one store.
  queue::Scheduler a({def}, *queue_, make, none), b({def}, *queue_, make, none);
  clock_.set(kStart - kStart % 300000 + 1000);  // just after a slot
  EXPECT_EQ(run(a.tick()).value(), 0);  // first sight: nothing owed from before
  clock_.advance(300000);
  EXPECT_EQ(run(a.tick()).value() + run(b.tick()).value(), 1);
  EXPECT_EQ(run(b.tick()).value(), 0);
  EXPECT_EQ(counts("sched").queued, 1);
  // Down for an hour and two minutes: `skip` drops the missed slots (the latest is over a minute
  // old); `run_once` runs the latest once.
  clock_.advance(3600 * 1000 + 120000);
  EXPECT_EQ(run(a.tick()).value(), 0);
  def.missed = queue::ScheduleDef::Missed::run_once;
  queue::Scheduler c({def}, *queue_, make, none);
  clock_.advance(3600 * 1000);
  EXPECT_EQ(run(c.tick()).value(), 1);
  EXPECT_EQ(run(c.tick()).value(), 0);
  EXPECT_EQ(counts("sched").queued, 2);
}

// Queue writes cannot change a creators list: they leave the list cache's version alone, so the
// cache keeps working while jobs run.
TEST_P(QueueDriverTest, QueueWritesLeaveTheCreatorsListVersionAlone) {
  auto before = stores_->creators_version();
  enqueue();
  Job c = claim("w").at(0);
  EXPECT_TRUE(run(queue_->record_step("w", StepUpdate{c.id, c.attempt, "a", StepUpdate::Kind::progress, 0.5})).value());
  EXPECT_TRUE(finish(c, "w", RunOutcome{RunOutcome::Kind::succeeded}));
  EXPECT_EQ(stores_->creators_version(), before);
  if (GetParam() == "sqlite") {
    CreatorFields f;
    f.name = "Someone";
    f.handle = "someone";
    ASSERT_TRUE(run(stores_->create_creator(f)));
    EXPECT_NE(stores_->creators_version(), before);  // a creator write does change it
  }
}

INSTANTIATE_TEST_SUITE_P(Drivers, QueueDriverTest, ::testing::Values(std::string("sqlite"), std::string("postgres")),
                         store_param_name);

}  // namespace
