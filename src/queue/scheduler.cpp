#include "queue/scheduler.hpp"

#include <map>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "core/log.hpp"

namespace creatord::queue {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

// A slot this recent still runs under the `skip` policy: the instance was only a little late.
constexpr int64_t kOnTimeMs = 60'000;
constexpr int kCreatorPage = 500;

}  // namespace

Scheduler::Scheduler(std::vector<ScheduleDef> schedules, JobQueue& queue, ScheduledJob make_job, CreatorIds creators)
    : schedules_(std::move(schedules)), queue_(queue), make_job_(std::move(make_job)), creators_(std::move(creators)) {}

Async<int64_t> Scheduler::enqueue_slot(const ScheduleDef& s, int64_t slot_ms) {
  if (s.creator_id) {
    std::vector<NewJob> one{make_job_(s, *s.creator_id, slot_ms)};
    co_return co_await queue_.enqueue_many(std::move(one));
  }
  int64_t created = 0, after = 0;
  for (;;) {
    auto ids = co_await creators_(after, kCreatorPage);
    if (!ids) co_return ids.take_error();
    if (ids->empty()) co_return created;
    std::vector<NewJob> jobs;
    for (int64_t id : ids.value()) jobs.push_back(make_job_(s, id, slot_ms));
    auto n = co_await queue_.enqueue_many(std::move(jobs));
    if (!n) co_return n.take_error();
    created += n.value();
    after = ids->back();
    if (static_cast<int>(ids->size()) < kCreatorPage) co_return created;
  }
}

Async<int64_t> Scheduler::tick() {
  auto marks = co_await queue_.driver().schedule_marks();
  if (!marks) co_return marks.take_error();
  std::map<std::string, int64_t> last;
  for (const auto& m : marks.value()) last[m.name] = m.last_slot_ms;
  int64_t now = queue_.clock().now_ms(), created = 0;
  for (const auto& s : schedules_) {
    auto it = last.find(s.name);
    if (it == last.end()) {
      // New schedule: nothing is owed before now.
      if (auto r = co_await queue_.driver().set_schedule_mark(s.name, now); !r) co_return r.take_error();
      continue;
    }
    // The latest slot that has come since the mark (slots are unique keys: enqueued once).
    int64_t due = 0;
    for (int64_t t = next_after(s.schedule, it->second); t > 0 && t <= now; t = next_after(s.schedule, t)) due = t;
    if (due == 0) continue;
    bool on_time = now - due <= kOnTimeMs;
    if (on_time || s.missed == ScheduleDef::Missed::run_once) {
      auto n = co_await enqueue_slot(s, due);
      if (!n) co_return n.take_error();
      created += n.value();
      log::info("schedule fired", {{"schedule", s.name}, {"slot", format_rfc3339(due)}, {"jobs", n.value()}});
    } else {
      log::warn("schedule slots missed while no instance ran; skipped",
                {{"schedule", s.name}, {"last_slot", format_rfc3339(due)}});
    }
    if (auto r = co_await queue_.driver().set_schedule_mark(s.name, due); !r) co_return r.take_error();
  }
  co_return created;
}

int64_t Scheduler::next_slot(int64_t after_ms) const {
  int64_t next = 0;
  for (const auto& s : schedules_) {
    int64_t t = next_after(s.schedule, after_ms);
    if (t > 0 && (next == 0 || t < next)) next = t;
  }
  return next;
}

asio::awaitable<void> Scheduler::run(int64_t poll_ms) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    auto r = co_await tick();
    if (!r) log::warn("schedules could not be checked", {{"error", r.error().message}});
    int64_t now = queue_.clock().now_ms();
    int64_t next = next_slot(now);
    int64_t wait = next > 0 ? std::clamp<int64_t>(next - now + 5, 5, poll_ms) : poll_ms;
    timer.expires_after(std::chrono::milliseconds(wait));
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
  }
}

Async<json::array> Scheduler::describe() const {
  auto marks = co_await queue_.driver().schedule_marks();
  if (!marks) co_return marks.take_error();
  std::map<std::string, int64_t> last;
  for (const auto& m : marks.value()) last[m.name] = m.last_slot_ms;
  int64_t now = queue_.clock().now_ms();
  json::array out;
  for (const auto& s : schedules_) {
    int64_t next = next_after(s.schedule, now);
    json::object o{{"name", s.name},
                   {"pipeline", s.pipeline},
                   {"cron", s.cron},
                   {"timezone", s.timezone},
                   {"params", s.params},
                   {"missed", s.missed == ScheduleDef::Missed::skip ? "skip" : "run_once"}};
    if (s.creator_id) o["creator_id"] = *s.creator_id;
    else o["creators"] = "all";
    o["next_run"] = next > 0 ? json::value(format_rfc3339(next)) : json::value(nullptr);
    auto it = last.find(s.name);
    o["last_slot"] = it != last.end() ? json::value(format_rfc3339(it->second)) : json::value(nullptr);
    out.emplace_back(std::move(o));
  }
  co_return out;
}

}  // namespace creatord::queue
