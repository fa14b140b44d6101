// Cron schedules for scheduled jobs: the five-field crontab syntax, evaluated in an IANA time zone.
//
// Syntax (fields: minute hour day-of-month month day-of-week), as Vixie cron / cronie:
//   *            every value of the field
//   5            one value;  1-5  a range (inclusive; a start after the end is an error)
//   */15  1-30/5  10/20      steps: over the whole field, over a range, from a start to its end
//   1,15,30-40   a list of any of the above
//   JAN-DEC, SUN-SAT        names (any case) in the month and day-of-week fields, also in ranges
//   day-of-week 0-7         0 and 7 are both Sunday
//   @yearly @annually @monthly @weekly @daily @midnight @hourly   the usual macros (@reboot is not
//                           a schedule and is refused)
// Day matching follows Vixie cron: when both day-of-month and day-of-week are restricted, a day
// matches if EITHER matches ("0 0 1 * MON" = the 1st and every Monday). A field counts as
// unrestricted when it starts with `*` (so "*/2" counts as `*`, as in Vixie cron); then a day must
// match both fields, which means just the restricted one.
//
// Time zones and daylight saving time (next_after computes in the zone's local time):
//   - A local time that does not exist (spring forward: 02:30 on the day clocks jump from 02:00
//     to 03:00) runs once, at the first valid instant after the gap (03:00 local). Several slots
//     inside one gap collapse into that single run.
//   - A local time that occurs twice (fall back: 02:30 on the day clocks go 03:00 -> 02:00) runs
//     once, at its first occurrence. Consequence: a job that runs every few minutes pauses for the
//     repeated hour instead of running twice per local minute.
//   - Zones come from the system's tz database (/usr/share/zoneinfo, Debian package tzdata).
//     Beyond the last transition listed in a zone's file (2037 for Debian's files), the rule in the
//     file's POSIX footer is applied, so DST stays correct after 2037.
#pragma once
#include <bitset>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace creatord::queue {

// The five fields of a cron expression as sets of allowed values (bit i = value i).
struct CronSpec {
  std::bitset<60> minutes;        // 0-59
  std::bitset<24> hours;          // 0-23
  std::bitset<32> days_of_month;  // 1-31 (bit 0 unused)
  std::bitset<13> months;         // 1-12 (bit 0 unused)
  std::bitset<7> days_of_week;    // 0-6, 0 = Sunday (7 in the text is stored as 0)
  bool dom_star = false;          // day-of-month started with `*`: see the day rule above
  bool dow_star = false;          // day-of-week started with `*`
};

// Parses a cron expression (five fields or a macro). Errors are ErrorCode::validation with a
// message naming the field and the bad token, e.g. "cron minute field: 61 is out of range 0-59";
// Error::field is left empty for the caller to name its own input field.
Result<CronSpec> parse_cron(std::string_view expr);

namespace detail {
class Zone;  // the zone's rules (cron.cpp); shared, immutable, safe to use from any thread
}

// A parsed expression bound to its time zone. Cheap to copy.
struct CronSchedule {
  CronSpec spec;
  std::string expression;  // as given
  std::string time_zone;   // IANA name as given, e.g. "Europe/Berlin"
  std::shared_ptr<const detail::Zone> zone;
};

// Parses expr and looks up tz_name in the tz database; an unknown zone is a validation error
// ("unknown time zone 'Mars/Base'"). Zones are loaded once per process and cached.
Result<CronSchedule> make_schedule(std::string_view expr, std::string_view tz_name = "UTC");

// How far next_after searches. Long enough for every satisfiable expression (Feb 29 needs up to
// 8 years across 2100; a date on a given weekday with "*/n" days up to ~12), short enough that an
// impossible one ("0 0 30 2 *", Feb 30) costs microseconds.
inline constexpr int kCronSearchYears = 30;

// The first slot strictly after after_ms (Unix milliseconds, UTC), as Unix milliseconds (always a
// whole minute, or the end of a DST gap). Returns 0 when the expression never fires within
// kCronSearchYears (an impossible date such as Feb 30, Apr 31).
int64_t next_after(const CronSchedule& schedule, int64_t after_ms);

// The slots s with from_ms < s <= to_ms, earliest first, at most max of them (the first max).
// For deciding which runs were missed while the service was down: pass the last slot handled (or
// the downtime start) and now.
std::vector<int64_t> slots_between(const CronSchedule& schedule, int64_t from_ms, int64_t to_ms,
                                   std::size_t max);

}  // namespace creatord::queue
