// Scheduled (cron) jobs: `[[schedule]]` entries of the pipelines file. Each slot of each schedule
// is enqueued exactly once however many instances run and however often they restart: the job's
// unique key names the schedule and the slot, and a durable mark records the last slot handled.
// Slots missed while no instance ran follow the schedule's policy: skip them, or run once.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "queue/cron.hpp"
#include "queue/job_queue.hpp"

namespace creatord::queue {

struct ScheduleDef {
  std::string name;
  std::string pipeline;
  std::string cron;               // five fields, or @hourly, @daily...
  std::string timezone = "UTC";   // IANA name
  boost::json::object params;
  std::optional<int64_t> creator_id;  // nullopt: every creator
  enum class Missed { skip, run_once } missed = Missed::skip;
  CronSchedule schedule;          // parsed from cron and timezone
  int line = 0;                   // where it is declared (for messages)
};

// Builds the job of one slot for one creator (the API's own rules: kind, queue, steps).
using ScheduledJob = std::function<NewJob(const ScheduleDef&, int64_t creator_id, int64_t slot_ms)>;
// Lists creator ids after `after_id` (ascending, up to `limit`), for schedules of every creator.
using CreatorIds = std::function<Async<std::vector<int64_t>>(int64_t after_id, int limit)>;

class Scheduler {
 public:
  Scheduler(std::vector<ScheduleDef> schedules, JobQueue& queue, ScheduledJob make_job, CreatorIds creators);

  // One pass: enqueues every slot that is due (per the missed-slot policy) and moves the marks.
  Async<int64_t> tick();
  // tick() whenever the next slot comes (or every `poll_ms` at most), until the executor stops.
  boost::asio::awaitable<void> run(int64_t poll_ms);
  // name, pipeline, cron, timezone, creators, missed, next_run, last_slot.
  Async<boost::json::array> describe() const;
  const std::vector<ScheduleDef>& schedules() const { return schedules_; }

 private:
  Async<int64_t> enqueue_slot(const ScheduleDef& s, int64_t slot_ms);
  int64_t next_slot(int64_t after_ms) const;

  std::vector<ScheduleDef> schedules_;
  JobQueue& queue_;
  ScheduledJob make_job_;
  CreatorIds creators_;
};

}  // namespace creatord::queue
