// Five-field cron expressions in a time zone, for scheduled jobs.
//
//   minute hour day-of-month month day-of-week      e.g. "*/15 9-17 * * MON-FRI"
//
// Each field takes `*`, numbers, ranges `a-b`, steps `*/n`, `a-b/n` and `a/n`, and lists
// `a,b,c`; months JAN-DEC and days SUN-SAT by name (any case; day 7 is Sunday too). The macros
// @hourly, @daily (@midnight), @weekly, @monthly and @yearly (@annually) stand for their usual
// expressions. As in Vixie cron, when both day-of-month and day-of-week are restricted, a day
// matches when either does.
//
// Times are local times of the schedule's IANA zone (the system's tz database). Around DST:
// a local time that does not exist (the spring-forward gap) runs once, at the first instant
// after the gap; a local time that happens twice (fall back) runs once, at its first occurrence.
#pragma once
#include <bitset>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace date {
class time_zone;
}

namespace creatord::queue {

struct CronSpec {
  std::bitset<60> minutes;
  std::bitset<24> hours;
  std::bitset<32> days;     // 1..31
  std::bitset<13> months;   // 1..12
  std::bitset<7> weekdays;  // 0 = Sunday
  bool any_day = true;      // day-of-month was `*`
  bool any_weekday = true;  // day-of-week was `*`
};

// Errors name the field and the token, e.g. "hour: 25 is out of range 0-23".
Result<CronSpec> parse_cron(std::string_view expr);

struct CronSchedule {
  CronSpec spec;
  const date::time_zone* zone = nullptr;  // null: UTC
  std::string zone_name = "UTC";
};

// Errors: a bad expression, or a zone the tz database does not know.
Result<CronSchedule> make_schedule(std::string_view expr, std::string_view zone);

// The first slot strictly after `after_ms` (Unix ms), as Unix ms; 0 when there is none within
// five years (e.g. "0 0 30 2 *").
int64_t next_after(const CronSchedule& schedule, int64_t after_ms);

// Slots in (from_ms, to_ms], oldest first, at most `max`.
std::vector<int64_t> slots_between(const CronSchedule& schedule, int64_t from_ms, int64_t to_ms, size_t max);

}  // namespace creatord::queue
