#include "queue/cron.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

using namespace creatord;
using namespace creatord::queue;

namespace {

// Unix ms of a UTC wall time (tests state expected slots in UTC, with the local time beside).
int64_t utc(int y, unsigned mo, unsigned d, int h = 0, int mi = 0) {
  using namespace std::chrono;
  auto t = sys_days{year{y} / month{mo} / day{d}} + hours{h} + minutes{mi};
  return duration_cast<milliseconds>(t.time_since_epoch()).count();
}

CronSpec spec_of(std::string_view expr) {
  auto r = parse_cron(expr);
  EXPECT_TRUE(r.ok()) << expr << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? r.value() : CronSpec{};
}

CronSchedule schedule(std::string_view expr, std::string_view tz = "UTC") {
  auto r = make_schedule(expr, tz);
  if (!r.ok()) ADD_FAILURE() << expr << " in " << tz << ": " << r.error().message;
  return r.ok() ? r.value() : CronSchedule{};
}

template <std::size_t N>
std::vector<int> values(const std::bitset<N>& bits) {
  std::vector<int> out;
  for (std::size_t i = 0; i < N; ++i) {
    if (bits[i]) out.push_back(static_cast<int>(i));
  }
  return out;
}

using V = std::vector<int>;

}  // namespace

TEST(CronParse, StarNumbersRangesStepsLists) {
  auto s = spec_of("5 1-3 */10 1,6,12 *");
  EXPECT_EQ(values(s.minutes), V{5});
  EXPECT_EQ(values(s.hours), (V{1, 2, 3}));
  EXPECT_EQ(values(s.days_of_month), (V{1, 11, 21, 31}));
  EXPECT_EQ(values(s.months), (V{1, 6, 12}));
  EXPECT_EQ(values(s.days_of_week), (V{0, 1, 2, 3, 4, 5, 6}));
  EXPECT_TRUE(s.dom_star);  // "*/10" starts with `*`, as in Vixie cron
  EXPECT_TRUE(s.dow_star);
  EXPECT_EQ(s.hours.count(), 3u);

  EXPECT_EQ(values(spec_of("*/15 * * * *").minutes), (V{0, 15, 30, 45}));
  EXPECT_EQ(values(spec_of("10-30/10 * * * *").minutes), (V{10, 20, 30}));
  EXPECT_EQ(values(spec_of("50/5 * * * *").minutes), (V{50, 55}));
  EXPECT_EQ(values(spec_of("0 */7 * * *").hours), (V{0, 7, 14, 21}));
  EXPECT_EQ(values(spec_of("1,3,5-6,59 * * * *").minutes), (V{1, 3, 5, 6, 59}));
  EXPECT_EQ(spec_of("* * * * *").minutes.count(), 60u);
  EXPECT_EQ(values(spec_of("0 0 * */4 *").months), (V{1, 5, 9}));
  // Tabs and repeated spaces separate fields too.
  EXPECT_EQ(values(spec_of("  7\t8  9 10 1 ").minutes), V{7});
}

TEST(CronParse, NamesAndSunday) {
  auto s = spec_of("0 0 * JAN-mar,Dec mon-FRI");
  EXPECT_EQ(values(s.months), (V{1, 2, 3, 12}));
  EXPECT_EQ(values(s.days_of_week), (V{1, 2, 3, 4, 5}));
  EXPECT_FALSE(s.dow_star);
  EXPECT_EQ(values(spec_of("0 0 * * sun,Sat").days_of_week), (V{0, 6}));
  EXPECT_EQ(values(spec_of("0 0 * * 7").days_of_week), V{0});
  EXPECT_EQ(values(spec_of("0 0 * * 5-7").days_of_week), (V{0, 5, 6}));
  EXPECT_EQ(values(spec_of("0 0 * * */2").days_of_week), (V{0, 2, 4, 6}));
  EXPECT_EQ(values(spec_of("0 0 * JUL/2 *").months), (V{7, 9, 11}));
}

TEST(CronParse, Macros) {
  auto same = [](std::string_view macro, std::string_view expr) {
    auto a = spec_of(macro);
    auto b = spec_of(expr);
    EXPECT_EQ(a.minutes, b.minutes) << macro;
    EXPECT_EQ(a.hours, b.hours) << macro;
    EXPECT_EQ(a.days_of_month, b.days_of_month) << macro;
    EXPECT_EQ(a.months, b.months) << macro;
    EXPECT_EQ(a.days_of_week, b.days_of_week) << macro;
    EXPECT_EQ(a.dom_star, b.dom_star) << macro;
    EXPECT_EQ(a.dow_star, b.dow_star) << macro;
  };
  same("@hourly", "0 * * * *");
  same("@daily", "0 0 * * *");
  same("@midnight", "0 0 * * *");
  same("@weekly", "0 0 * * 0");
  same("@monthly", "0 0 1 * *");
  same("@yearly", "0 0 1 1 *");
  same("@annually", "0 0 1 1 *");
  same(" @DAILY ", "0 0 * * *");
  auto reboot = parse_cron("@reboot");
  ASSERT_FALSE(reboot.ok());
  EXPECT_NE(reboot.error().message.find("'@reboot'"), std::string::npos);
}

TEST(CronParse, ErrorsNameTheFieldAndToken) {
  struct Case {
    const char* expr;
    const char* field;
    const char* token;
  };
  const Case cases[] = {
      {"60 * * * *", "minute", "'60'"},
      {"-1 * * * *", "minute", "'-1'"},
      {"*/0 * * * *", "minute", "'*/0'"},
      {"*/61 * * * *", "minute", "'61'"},
      {"5-2 * * * *", "minute", "'5-2'"},
      {"1,,2 * * * *", "minute", "empty"},
      {"1, * * * *", "minute", "empty"},
      {"1-2-3 * * * *", "minute", "'2-3'"},
      {"x * * * *", "minute", "'x'"},
      {"* 24 * * *", "hour", "'24'"},
      {"* 1/ * * *", "hour", "''"},
      {"* * 0 * *", "day-of-month", "'0'"},
      {"* * 32 * *", "day-of-month", "'32'"},
      {"* * MON * *", "day-of-month", "'MON'"},
      {"* * * 13 *", "month", "'13'"},
      {"* * * FOO *", "month", "'FOO'"},
      {"* * * JANUARY *", "month", "'JANUARY'"},
      {"* * * * 8", "day-of-week", "'8'"},
      {"* * * * MOO", "day-of-week", "'MOO'"},
      {"* * * * FRI-MON", "day-of-week", "'FRI-MON'"},
      {"* * * * */8", "day-of-week", "'8'"},
  };
  for (const auto& c : cases) {
    auto r = parse_cron(c.expr);
    ASSERT_FALSE(r.ok()) << c.expr;
    EXPECT_EQ(r.error().code, ErrorCode::validation) << c.expr;
    const std::string& msg = r.error().message;
    EXPECT_NE(msg.find(std::string("cron ") + c.field + " field"), std::string::npos)
        << c.expr << " -> " << msg;
    EXPECT_NE(msg.find(c.token), std::string::npos) << c.expr << " -> " << msg;
  }
  for (const char* expr : {"", "* * * *", "* * * * * *", "@"}) {
    auto r = parse_cron(expr);
    ASSERT_FALSE(r.ok()) << '"' << expr << '"';
    EXPECT_EQ(r.error().code, ErrorCode::validation);
  }
  EXPECT_NE(parse_cron("* * * *").error().message.find("5 fields"), std::string::npos);
}

TEST(CronNext, StrictlyAfterAndSubMinute) {
  auto s = schedule("*/15 * * * *");
  EXPECT_EQ(next_after(s, utc(2026, 5, 4, 10, 0)), utc(2026, 5, 4, 10, 15));
  EXPECT_EQ(next_after(s, utc(2026, 5, 4, 10, 0) - 1), utc(2026, 5, 4, 10, 0));
  EXPECT_EQ(next_after(s, utc(2026, 5, 4, 10, 14) + 59'999), utc(2026, 5, 4, 10, 15));
  EXPECT_EQ(next_after(s, utc(2026, 5, 4, 23, 50)), utc(2026, 5, 5, 0, 0));
  auto hourly = schedule("@hourly");
  EXPECT_EQ(next_after(hourly, utc(2026, 5, 4, 10, 0)), utc(2026, 5, 4, 11, 0));
  EXPECT_EQ(next_after(hourly, utc(1969, 12, 31, 22, 30)), utc(1969, 12, 31, 23, 0));
}

TEST(CronNext, AcrossYearBoundary) {
  EXPECT_EQ(next_after(schedule("0 0 1 1 *"), utc(2025, 12, 31, 23, 59) + 59'999), utc(2026, 1, 1));
  EXPECT_EQ(next_after(schedule("59 23 31 12 *"), utc(2025, 12, 31, 23, 59)),
            utc(2026, 12, 31, 23, 59));
  EXPECT_EQ(next_after(schedule("0 9 * * MON"), utc(2026, 12, 30)), utc(2027, 1, 4, 9, 0));
  EXPECT_EQ(next_after(schedule("@yearly", "Europe/Berlin"), utc(2026, 6, 1)),
            utc(2026, 12, 31, 23, 0));  // 00:00 CET on Jan 1
}

TEST(CronNext, DayOfMonthOrDayOfWeek) {
  // Both restricted: the 13th OR a Friday (2026-01-02 and -09 are Fridays, the 13th a Tuesday).
  auto either = schedule("0 0 13 * FRI");
  EXPECT_EQ(
      slots_between(either, utc(2026, 1, 1), utc(2026, 1, 17), 10),
      (std::vector<int64_t>{utc(2026, 1, 2), utc(2026, 1, 9), utc(2026, 1, 13), utc(2026, 1, 16)}));
  // Day-of-month given as "*/13" counts as `*`: then both must match ({1,14,27} and a Friday).
  EXPECT_EQ(next_after(schedule("0 0 */13 * 5"), utc(2026, 1, 1)), utc(2026, 2, 27));
  // One restricted field alone decides.
  EXPECT_EQ(next_after(schedule("0 0 * * 5"), utc(2026, 1, 3)), utc(2026, 1, 9));
  EXPECT_EQ(next_after(schedule("0 0 13 * *"), utc(2026, 1, 3)), utc(2026, 1, 13));
  EXPECT_EQ(next_after(schedule("0 0 13 * 7"), utc(2026, 1, 3)), utc(2026, 1, 4));  // Sunday
}

TEST(CronNext, MonthEnds) {
  auto on31 = schedule("0 0 31 * *");
  EXPECT_EQ(next_after(on31, utc(2026, 1, 31)), utc(2026, 3, 31));  // skips February
  EXPECT_EQ(next_after(on31, utc(2026, 3, 31)), utc(2026, 5, 31));  // and April
  EXPECT_EQ(next_after(schedule("0 0 30 * *"), utc(2026, 1, 30)), utc(2026, 3, 30));
  EXPECT_EQ(next_after(schedule("0 0 31 4,6,9,11,12 *"), utc(2026, 1, 1)), utc(2026, 12, 31));
  EXPECT_EQ(next_after(schedule("30 23 28-31 2 *"), utc(2026, 2, 28, 23, 30)),
            utc(2027, 2, 28, 23, 30));
}

TEST(CronNext, LeapYears) {
  auto leap = schedule("0 0 29 2 *");
  EXPECT_EQ(next_after(leap, utc(2025, 1, 1)), utc(2028, 2, 29));
  EXPECT_EQ(next_after(leap, utc(2028, 2, 29)), utc(2032, 2, 29));
  EXPECT_EQ(next_after(leap, utc(2096, 3, 1)), utc(2104, 2, 29));  // 2100 is no leap year
  EXPECT_EQ(next_after(schedule("0 12 29 2 *", "America/New_York"), utc(2027, 1, 1)),
            utc(2028, 2, 29, 17, 0));
}

TEST(CronNext, ImpossibleDatesHaveNoSlot) {
  for (const char* expr : {"0 0 30 2 *", "0 0 31 2 *", "0 0 31 4 *", "0 0 31 6,9,11 *"}) {
    auto s = schedule(expr, "Europe/Berlin");
    EXPECT_EQ(next_after(s, utc(2026, 1, 1)), 0) << expr;
    EXPECT_TRUE(slots_between(s, utc(2026, 1, 1), utc(2030, 1, 1), 10).empty()) << expr;
  }
  // With a day-of-week alternative it does fire (Vixie OR semantics).
  EXPECT_EQ(next_after(schedule("0 0 30 2 MON"), utc(2026, 1, 1)), utc(2026, 2, 2));
}

TEST(CronZone, UnknownZoneRefusedAndDefaultUtc) {
  for (const char* tz : {"Mars/Base", "", "Europe/Berlinn", "../../etc/passwd", "UTC+1"}) {
    auto r = make_schedule("* * * * *", tz);
    ASSERT_FALSE(r.ok()) << tz;
    EXPECT_EQ(r.error().code, ErrorCode::validation);
    EXPECT_NE(r.error().message.find("unknown time zone"), std::string::npos);
    EXPECT_NE(r.error().message.find(std::string("'") + tz + "'"), std::string::npos);
  }
  auto bad_expr = make_schedule("61 * * * *", "Europe/Berlin");
  ASSERT_FALSE(bad_expr.ok());
  EXPECT_NE(bad_expr.error().message.find("minute"), std::string::npos);

  auto s = make_schedule("0 12 * * *");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->time_zone, "UTC");
  EXPECT_EQ(s->expression, "0 12 * * *");
  EXPECT_EQ(next_after(*s, utc(2026, 7, 1)), utc(2026, 7, 1, 12, 0));
  // Summer and winter offsets in a zone.
  auto berlin = schedule("0 12 * * *", "Europe/Berlin");
  EXPECT_EQ(next_after(berlin, utc(2026, 7, 1)), utc(2026, 7, 1, 10, 0));  // CEST
  EXPECT_EQ(next_after(berlin, utc(2026, 1, 1)), utc(2026, 1, 1, 11, 0));  // CET
}

// Berlin 2026: clocks jump 02:00 CET -> 03:00 CEST on Sun 29 March at 01:00 UTC, and fall back
// 03:00 CEST -> 02:00 CET on Sun 25 October at 01:00 UTC.
TEST(CronDst, BerlinSpringForwardRunsOnceAtTheGapEnd) {
  auto s = schedule("30 2 * * *", "Europe/Berlin");
  EXPECT_EQ(next_after(s, utc(2026, 3, 28, 12)), utc(2026, 3, 29, 1, 0));     // 03:00 CEST
  EXPECT_EQ(next_after(s, utc(2026, 3, 29, 1, 0)), utc(2026, 3, 30, 0, 30));  // 02:30 CEST
  // Every slot inside the gap collapses into one run at 03:00, which 03:00's own slot shares.
  auto many = schedule("*/15 2,3 * * *", "Europe/Berlin");
  EXPECT_EQ(slots_between(many, utc(2026, 3, 29, 0, 50), utc(2026, 3, 29, 1, 40), 10),
            (std::vector<int64_t>{utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 1, 15),
                                  utc(2026, 3, 29, 1, 30)}));
  auto every_minute = schedule("* * * * *", "Europe/Berlin");
  EXPECT_EQ(next_after(every_minute, utc(2026, 3, 29, 0, 59)), utc(2026, 3, 29, 1, 0));
  EXPECT_EQ(next_after(every_minute, utc(2026, 3, 29, 1, 0)), utc(2026, 3, 29, 1, 1));
}

TEST(CronDst, BerlinFallBackRunsOnceAtTheFirstOccurrence) {
  auto s = schedule("30 2 * * *", "Europe/Berlin");
  EXPECT_EQ(next_after(s, utc(2026, 10, 24, 12)), utc(2026, 10, 25, 0, 30));     // 02:30 CEST
  EXPECT_EQ(next_after(s, utc(2026, 10, 25, 0, 30)), utc(2026, 10, 26, 1, 30));  // next day, CET
  // Half-hourly: 02:00 and 02:30 CEST run; their repeats in CET do not; then 03:00 CET.
  auto half = schedule("*/30 * * * *", "Europe/Berlin");
  EXPECT_EQ(slots_between(half, utc(2026, 10, 24, 23, 45), utc(2026, 10, 25, 2, 30), 10),
            (std::vector<int64_t>{utc(2026, 10, 25, 0, 0), utc(2026, 10, 25, 0, 30),
                                  utc(2026, 10, 25, 2, 0), utc(2026, 10, 25, 2, 30)}));
  // Asked from inside the repeated hour (02:15 CET), the next slot is 03:00 CET.
  EXPECT_EQ(next_after(half, utc(2026, 10, 25, 1, 15)), utc(2026, 10, 25, 2, 0));
}

// New York 2026: 02:00 EST -> 03:00 EDT on Sun 8 March at 07:00 UTC; 02:00 EDT -> 01:00 EST on
// Sun 1 November at 06:00 UTC.
TEST(CronDst, NewYork) {
  auto gap = schedule("30 2 * * *", "America/New_York");
  EXPECT_EQ(next_after(gap, utc(2026, 3, 7, 12)), utc(2026, 3, 8, 7, 0));     // 03:00 EDT
  EXPECT_EQ(next_after(gap, utc(2026, 3, 8, 7, 0)), utc(2026, 3, 9, 6, 30));  // 02:30 EDT
  auto twice = schedule("30 1 * * *", "America/New_York");
  EXPECT_EQ(next_after(twice, utc(2026, 10, 31, 12)), utc(2026, 11, 1, 5, 30));    // 01:30 EDT
  EXPECT_EQ(next_after(twice, utc(2026, 11, 1, 5, 30)), utc(2026, 11, 2, 6, 30));  // 01:30 EST
  auto weekly = schedule("0 9 * * SUN", "America/New_York");
  EXPECT_EQ(next_after(weekly, utc(2026, 3, 2)), utc(2026, 3, 8, 13, 0));     // 09:00 EDT
  EXPECT_EQ(next_after(weekly, utc(2026, 10, 26)), utc(2026, 11, 1, 14, 0));  // 09:00 EST
}

// Debian's zone files list transitions through 2037; later ones come from the file's POSIX rule.
TEST(CronDst, RulesContinueAfter2037) {
  auto noon = schedule("0 12 1 1,7 *", "Europe/Berlin");
  EXPECT_EQ(next_after(noon, utc(2040, 6, 1)), utc(2040, 7, 1, 10, 0));   // CEST
  EXPECT_EQ(next_after(noon, utc(2040, 12, 1)), utc(2041, 1, 1, 11, 0));  // CET
  // Second Sunday of March 2045 is the 12th: 02:30 does not exist in New York.
  EXPECT_EQ(next_after(schedule("30 2 * * *", "America/New_York"), utc(2045, 3, 11, 12)),
            utc(2045, 3, 12, 7, 0));
  // Southern hemisphere: Sydney is on daylight time (UTC+11) in January.
  EXPECT_EQ(next_after(schedule("0 12 1 1 *", "Australia/Sydney"), utc(2040, 6, 1)),
            utc(2041, 1, 1, 1, 0));
}

TEST(CronSlots, BetweenIsExclusiveInclusiveAndCapped) {
  auto s = schedule("0 * * * *");
  auto all = slots_between(s, utc(2026, 1, 1, 0), utc(2026, 1, 1, 3), 10);
  EXPECT_EQ(all,
            (std::vector<int64_t>{utc(2026, 1, 1, 1), utc(2026, 1, 1, 2), utc(2026, 1, 1, 3)}));
  EXPECT_EQ(slots_between(s, utc(2026, 1, 1, 0), utc(2026, 1, 2, 0), 2).size(), 2u);
  EXPECT_TRUE(slots_between(s, utc(2026, 1, 1, 0), utc(2026, 1, 1, 0, 59), 10).empty());
  EXPECT_TRUE(slots_between(s, utc(2026, 1, 1, 0), utc(2026, 1, 1, 3), 0).empty());
}

TEST(CronNext, StepsByFieldsNotMinutes) {
  // Stepping month, day, hour, minute finds a slot years ahead in a few hundred steps; minute by
  // minute, these searches would take over a billion.
  auto leap = schedule("0 0 29 2 *", "Europe/Berlin");
  auto never = schedule("0 0 30 2 *", "Europe/Berlin");
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 1000; ++i) {
    EXPECT_EQ(next_after(leap, utc(2026, 1, 1)), utc(2028, 2, 28, 23, 0));
    EXPECT_EQ(next_after(never, utc(2026, 1, 1)), 0);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds{2});
}
