// The cron parser and next-slot computation, with time zones and DST.
#include <gtest/gtest.h>

#include "core/clock.hpp"
#include "queue/cron.hpp"

using namespace creatord;
using namespace creatord::queue;

namespace {

int64_t at(const char* rfc3339) { return parse_rfc3339(rfc3339).value(); }

std::string next(const char* expr, const char* zone, const char* after) {
  auto s = make_schedule(expr, zone);
  EXPECT_TRUE(s) << s.error().message;
  int64_t t = next_after(s.value(), at(after));
  return t ? format_rfc3339(t) : "none";
}

}  // namespace

TEST(Cron, ParsesRangesStepsListsAndNames) {
  auto s = parse_cron("*/15 9-17/4 1,15 JAN-mar mon-FRI");
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_TRUE(s->minutes[0] && s->minutes[15] && s->minutes[45] && !s->minutes[5]);
  EXPECT_TRUE(s->hours[9] && s->hours[13] && s->hours[17] && !s->hours[10] && !s->hours[18]);
  EXPECT_TRUE(s->days[1] && s->days[15] && !s->days[2]);
  EXPECT_TRUE(s->months[1] && s->months[3] && !s->months[4]);
  EXPECT_TRUE(s->weekdays[1] && s->weekdays[5] && !s->weekdays[0] && !s->weekdays[6]);
  EXPECT_FALSE(s->any_day);
  auto sunday = parse_cron("0 0 * * 7");
  ASSERT_TRUE(sunday);
  EXPECT_TRUE(sunday->weekdays[0]);
  auto from = parse_cron("5/20 * * * *");  // 5, 25, 45
  ASSERT_TRUE(from);
  EXPECT_TRUE(from->minutes[5] && from->minutes[25] && from->minutes[45] && !from->minutes[0]);
  EXPECT_TRUE(parse_cron("@daily"));
  EXPECT_TRUE(parse_cron("@hourly")->minutes[0]);
}

TEST(Cron, ErrorsNameTheFieldAndToken) {
  EXPECT_NE(parse_cron("* 25 * * *").error().message.find("hour: 25 is out of range 0-23"), std::string::npos);
  EXPECT_NE(parse_cron("* * * FOO *").error().message.find("month: FOO"), std::string::npos);
  EXPECT_NE(parse_cron("*/0 * * * *").error().message.find("minute"), std::string::npos);
  EXPECT_NE(parse_cron("5-1 * * * *").error().message.find("backwards"), std::string::npos);
  EXPECT_NE(parse_cron("* * *").error().message.find("five fields"), std::string::npos);
  EXPECT_NE(parse_cron("1,,2 * * * *").error().message.find("empty"), std::string::npos);
  EXPECT_FALSE(make_schedule("* * * * *", "Mars/Olympus_Mons"));
}

TEST(Cron, NextSlotsInUtcAcrossMonthsYearsAndLeapDays) {
  EXPECT_EQ(next("*/15 * * * *", "UTC", "2026-03-01T10:07:00Z"), "2026-03-01T10:15:00.000Z");
  EXPECT_EQ(next("0 0 1 1 *", "UTC", "2026-06-01T00:00:00Z"), "2027-01-01T00:00:00.000Z");
  EXPECT_EQ(next("0 12 29 2 *", "UTC", "2026-01-01T00:00:00Z"), "2028-02-29T12:00:00.000Z");
  EXPECT_EQ(next("0 0 31 * *", "UTC", "2026-04-01T00:00:00Z"), "2026-05-31T00:00:00.000Z");
  EXPECT_EQ(next("0 0 30 2 *", "UTC", "2026-01-01T00:00:00Z"), "none");
  // Strictly after: a slot at the instant given is not the next one.
  EXPECT_EQ(next("0 * * * *", "UTC", "2026-03-01T10:00:00Z"), "2026-03-01T11:00:00.000Z");
}

TEST(Cron, DayOfMonthOrDayOfWeekWhenBothAreRestricted) {
  // 2026-11-01 is a Sunday. "the 15th, or any Monday"
  EXPECT_EQ(next("0 0 15 * MON", "UTC", "2026-11-01T00:00:00Z"), "2026-11-02T00:00:00.000Z");
  EXPECT_EQ(next("0 0 15 * *", "UTC", "2026-11-01T00:00:00Z"), "2026-11-15T00:00:00.000Z");
  EXPECT_EQ(next("0 0 * * MON", "UTC", "2026-11-02T00:00:00Z"), "2026-11-09T00:00:00.000Z");
}

TEST(Cron, LocalTimesFollowTheZoneAcrossDaylightSaving) {
  EXPECT_EQ(next("0 9 * * *", "Europe/Berlin", "2026-07-01T00:00:00Z"), "2026-07-01T07:00:00.000Z");  // CEST
  EXPECT_EQ(next("0 9 * * *", "Europe/Berlin", "2026-12-01T00:00:00Z"), "2026-12-01T08:00:00.000Z");  // CET
  // Spring forward (2026-03-29 02:00 -> 03:00 in Berlin): 02:30 does not exist; it runs once, at 03:00.
  EXPECT_EQ(next("30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z"), "2026-03-29T01:00:00.000Z");
  EXPECT_EQ(next("30 2 * * *", "Europe/Berlin", "2026-03-29T01:00:00Z"), "2026-03-30T00:30:00.000Z");
  // Fall back (2026-10-25 03:00 -> 02:00): 02:30 happens twice; it runs once, at the first.
  EXPECT_EQ(next("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z"), "2026-10-25T00:30:00.000Z");
  EXPECT_EQ(next("30 2 * * *", "Europe/Berlin", "2026-10-25T00:30:00Z"), "2026-10-26T01:30:00.000Z");
  // New York: 2026-03-08 02:00 -> 03:00 and 2026-11-01 02:00 -> 01:00.
  EXPECT_EQ(next("15 2 * * *", "America/New_York", "2026-03-07T12:00:00Z"), "2026-03-08T07:00:00.000Z");
  EXPECT_EQ(next("30 1 * * *", "America/New_York", "2026-11-01T05:00:00Z"), "2026-11-01T05:30:00.000Z");
  EXPECT_EQ(next("30 1 * * *", "America/New_York", "2026-11-01T05:30:00Z"), "2026-11-02T06:30:00.000Z");
}

TEST(Cron, SlotsBetweenListsMissedSlotsOldestFirst) {
  auto s = make_schedule("0 * * * *", "UTC").value();
  auto slots = slots_between(s, at("2026-01-01T00:30:00Z"), at("2026-01-01T03:00:00Z"), 10);
  ASSERT_EQ(slots.size(), 3u);
  EXPECT_EQ(format_rfc3339(slots.front()), "2026-01-01T01:00:00.000Z");
  EXPECT_EQ(format_rfc3339(slots.back()), "2026-01-01T03:00:00.000Z");
  EXPECT_EQ(slots_between(s, at("2026-01-01T00:30:00Z"), at("2026-01-02T00:00:00Z"), 5).size(), 5u);
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
