#include "queue/cron.hpp"

#include <date/tz.h>
// date 3.0.1's ptz.h names hh_mm_ss unqualified once (in time_zone::name), which C++20 makes
// ambiguous with std::chrono::hh_mm_ss (upstream later qualified it). Route its uses to a name
// only date has.
namespace date {
template <class Duration>
using ptz_hh_mm_ss = hh_mm_ss<Duration>;
}
#define hh_mm_ss ptz_hh_mm_ss
#include <date/ptz.h>
#undef hh_mm_ss

#include <array>
#include <cctype>
#include <charconv>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>

namespace creatord::queue {

namespace {

// ---- parsing ---------------------------------------------------------------------------------

struct FieldDef {
  std::string_view name;
  int lo;
  int hi;       // highest value accepted in the text (7 for day-of-week: Sunday again)
  int star_hi;  // highest value `*` covers (6 for day-of-week, so `*/n` does not see 7)
  const std::array<std::string_view, 12>* names;  // index 0 = value name_base, or nullptr
  int name_base;
};

constexpr std::array<std::string_view, 12> kMonthNames = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr std::array<std::string_view, 12> kDayNames = {"SUN", "MON", "TUE", "WED", "THU", "FRI",
                                                        "SAT", "",    "",    "",    "",    ""};

const FieldDef kFields[5] = {
    {"minute", 0, 59, 59, nullptr, 0},       {"hour", 0, 23, 23, nullptr, 0},
    {"day-of-month", 1, 31, 31, nullptr, 0}, {"month", 1, 12, 12, &kMonthNames, 1},
    {"day-of-week", 0, 7, 6, &kDayNames, 0},
};

Error field_error(const FieldDef& f, std::string_view what) {
  return Error::make(ErrorCode::validation,
                     "cron " + std::string(f.name) + " field: " + std::string(what));
}

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(a[i])) != static_cast<unsigned char>(b[i]))
      return false;
  }
  return true;
}

std::optional<int> parse_number(std::string_view s) {
  int v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// One value: a number in [lo, hi] or, where the field has them, a name. item is the list item
// it came from, quoted too when it says more ("'' is not a number in '-1'").
Result<int> parse_value(const FieldDef& f, std::string_view token, std::string_view item) {
  std::string where = token == item ? "" : " in " + quoted(item);
  if (auto n = parse_number(token)) {
    if (*n < f.lo || *n > f.hi) {
      return field_error(f, quoted(token) + " is out of range " + std::to_string(f.lo) + "-" +
                                std::to_string(f.hi) + where);
    }
    return *n;
  }
  if (f.names) {
    for (std::size_t i = 0; i < f.names->size(); ++i) {
      if (!(*f.names)[i].empty() && equals_ignoring_case(token, (*f.names)[i]))
        return static_cast<int>(i) + f.name_base;
    }
  }
  const char* expected = f.names == &kMonthNames ? "a number or a month name (JAN-DEC)"
                         : f.names               ? "a number or a day name (SUN-SAT)"
                                                 : "a number";
  return field_error(f, quoted(token) + " is not " + expected + where);
}

// One list item: `*`, `a`, `a-b`, each optionally followed by `/step`. Sets its values in mask.
Status parse_item(const FieldDef& f, std::string_view item, uint64_t& mask) {
  if (item.empty()) return field_error(f, "empty list item (stray comma?)");
  std::string_view base = item;
  int step = 1;
  bool has_step = false;
  if (auto slash = item.find('/'); slash != std::string_view::npos) {
    base = item.substr(0, slash);
    std::string_view step_text = item.substr(slash + 1);
    auto n = parse_number(step_text);
    int max_step = f.star_hi - f.lo + 1;
    if (!n || *n < 1 || *n > max_step) {
      return field_error(f, "step " + quoted(step_text) + " in " + quoted(item) + " must be 1-" +
                                std::to_string(max_step));
    }
    step = *n;
    has_step = true;
  }
  int first = f.lo;
  int last = f.star_hi;
  if (base != "*") {
    auto dash = base.find('-');
    auto a = parse_value(f, base.substr(0, dash), item);
    if (!a) return a.take_error();
    first = *a;
    last = has_step ? f.star_hi : first;  // `a/n` runs from a to the field's end
    if (dash != std::string_view::npos) {
      auto b = parse_value(f, base.substr(dash + 1), item);
      if (!b) return b.take_error();
      last = *b;
      if (first > last) return field_error(f, "range " + quoted(base) + " runs backwards");
    }
  }
  for (int v = first; v <= last; v += step) {
    int bit = (f.hi == 7 && v == 7) ? 0 : v;  // day-of-week 7 is Sunday
    mask |= uint64_t{1} << bit;
  }
  return ok_status();
}

Result<uint64_t> parse_field(const FieldDef& f, std::string_view text) {
  uint64_t mask = 0;
  std::size_t start = 0;
  while (true) {
    std::size_t comma = text.find(',', start);
    auto st = parse_item(f, text.substr(start, comma - start), mask);
    if (!st) return st.take_error();
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return mask;
}

std::vector<std::string_view> split_fields(std::string_view expr) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < expr.size()) {
    while (i < expr.size() && (expr[i] == ' ' || expr[i] == '\t')) ++i;
    std::size_t start = i;
    while (i < expr.size() && expr[i] != ' ' && expr[i] != '\t') ++i;
    if (i > start) out.push_back(expr.substr(start, i - start));
  }
  return out;
}

// The macros are shorthands for five-field expressions (as in Vixie cron's entry.c).
std::optional<std::string_view> expand_macro(std::string_view word) {
  static constexpr std::pair<std::string_view, std::string_view> kMacros[] = {
      {"@YEARLY", "0 0 1 1 *"}, {"@ANNUALLY", "0 0 1 1 *"}, {"@MONTHLY", "0 0 1 * *"},
      {"@WEEKLY", "0 0 * * 0"}, {"@DAILY", "0 0 * * *"},    {"@MIDNIGHT", "0 0 * * *"},
      {"@HOURLY", "0 * * * *"},
  };
  for (const auto& [name, expansion] : kMacros) {
    if (equals_ignoring_case(word, name)) return expansion;
  }
  return std::nullopt;
}

// ---- matching in local time ------------------------------------------------------------------

using LocalMinutes = date::local_time<std::chrono::minutes>;

template <std::size_t N>
int next_bit(const std::bitset<N>& bits, int from) {
  for (int i = from; i < static_cast<int>(N); ++i) {
    if (bits[static_cast<std::size_t>(i)]) return i;
  }
  return -1;
}

bool day_matches(const CronSpec& s, date::local_days day) {
  date::year_month_day ymd{day};
  bool dom = s.days_of_month[static_cast<unsigned>(ymd.day())];
  bool dow = s.days_of_week[date::weekday{day}.c_encoding()];
  // Vixie cron: two restricted day fields are alternatives; otherwise the restricted one decides.
  return (s.dom_star || s.dow_star) ? (dom && dow) : (dom || dow);
}

// The first local wall-clock minute >= from that the spec matches, stepping field by field (a
// non-matching month skips to the next month, a day to the next day, an hour to the next hour).
std::optional<LocalMinutes> next_local_match(const CronSpec& s, LocalMinutes from,
                                             date::year limit) {
  date::local_days day = date::floor<date::days>(from);
  int minute_of_day = static_cast<int>((from - day).count());
  int h = minute_of_day / 60;
  int m = minute_of_day % 60;
  while (true) {
    date::year_month_day ymd{day};
    if (ymd.year() > limit) return std::nullopt;
    if (!s.months[static_cast<unsigned>(ymd.month())]) {
      day = date::local_days{(ymd.year() / ymd.month() + date::months{1}) / 1};
      h = m = 0;
      continue;
    }
    int hour = day_matches(s, day) ? next_bit(s.hours, h) : -1;
    if (hour < 0) {
      day += date::days{1};
      h = m = 0;
      continue;
    }
    if (hour != h) m = 0;
    h = hour;
    int minute = next_bit(s.minutes, m);
    if (minute < 0) {  // no minute left in this hour; next_bit(hours, 24) moves to the next day
      ++h;
      m = 0;
      continue;
    }
    return day + std::chrono::hours{h} + std::chrono::minutes{minute};
  }
}

int64_t to_ms(date::sys_seconds t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace

// ---- time zones ------------------------------------------------------------------------------

namespace detail {

// A zone's rules: the transitions listed in its tz file (through date::time_zone) and, after the
// last of them, the POSIX rule from the file's footer. date 3.0.1 ignores the footer, so without
// this every zone would keep its last listed offset forever (no DST after 2037 on Debian).
class Zone {
 public:
  Zone(const date::time_zone* listed, std::optional<Posix::time_zone> footer)
      : listed_(listed), footer_(std::move(footer)) {
    // The interval that contains a far-future instant begins at the last listed transition.
    footer_from_ = listed_->get_info(date::sys_days{date::year{2400} / 1 / 1}).begin;
  }

  date::sys_info info(date::sys_seconds t) const {
    return footer_ && t >= footer_from_ ? footer_->get_info(t) : listed_->get_info(t);
  }

  // A day of margin: local times right after the last transition are still ambiguous or missing
  // according to that transition, which the listed data describes best.
  date::local_info info(date::local_seconds t) const {
    bool after = t.time_since_epoch() >= footer_from_.time_since_epoch() + date::days{1};
    return footer_ && after ? footer_->get_info(t) : listed_->get_info(t);
  }

 private:
  const date::time_zone* listed_;  // owned by date's tz database, which lives for the process
  std::optional<Posix::time_zone> footer_;
  date::sys_seconds footer_from_;
};

}  // namespace detail

namespace {

// Where Debian's tzdata installs the zone files; date's USE_OS_TZDB reads the same directory.
constexpr std::string_view kZoneDir = "/usr/share/zoneinfo/";

// The POSIX TZ string at the end of a TZif v2+ file ("CET-1CEST,M3.5.0,M10.5.0/3"), if any.
std::optional<std::string> read_tz_footer(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (data.size() < 6 || data.compare(0, 4, "TZif") != 0 || data[4] == '\0') return std::nullopt;
  if (data.back() != '\n') return std::nullopt;
  auto start = data.rfind('\n', data.size() - 2);
  if (start == std::string::npos) return std::nullopt;
  std::string footer = data.substr(start + 1, data.size() - start - 2);
  if (footer.empty()) return std::nullopt;
  return footer;
}

Result<std::shared_ptr<const detail::Zone>> load_zone(std::string_view name) {
  const date::time_zone* listed = nullptr;
  try {
    date::get_tzdb();  // separate, so a missing database is not reported as a bad name
  } catch (const std::exception& e) {
    return Error::make(
        ErrorCode::internal,
        std::string("time zone database unavailable (is tzdata installed?): ") + e.what());
  }
  try {
    listed = date::locate_zone(name);
  } catch (const std::exception&) {
    return Error::make(ErrorCode::validation, "unknown time zone " + quoted(name));
  }
  std::optional<Posix::time_zone> footer;
  if (auto text = read_tz_footer(std::string(kZoneDir) + listed->name())) {
    try {
      footer.emplace(*text);
    } catch (const std::exception&) {
      // An extension date's parser lacks (e.g. hours beyond 24 in a rule): keep the listed
      // transitions, which cover everything before 2038.
    }
  }
  return std::make_shared<const detail::Zone>(listed, std::move(footer));
}

// Zones are immutable once loaded; caching them keeps make_schedule from re-reading the file.
// Only known zones are cached, so arbitrary names from requests cannot grow the map.
Result<std::shared_ptr<const detail::Zone>> cached_zone(std::string_view name) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const detail::Zone>, std::less<>> zones;
  std::lock_guard lock(mu);
  if (auto it = zones.find(name); it != zones.end()) return it->second;
  auto zone = load_zone(name);
  if (zone) zones.emplace(std::string(name), *zone);
  return zone;
}

// When a local wall-clock minute runs, by the DST rules in the header.
date::sys_seconds run_instant(const detail::Zone& zone, LocalMinutes local) {
  date::local_seconds l = local;
  date::local_info info = zone.info(l);
  if (info.result == date::local_info::nonexistent) return info.second.begin;  // the gap's end
  // unique, or ambiguous: first occurrence (first holds the offset before the transition).
  return date::sys_seconds{l.time_since_epoch() - info.first.offset};
}

}  // namespace

Result<CronSpec> parse_cron(std::string_view expr) {
  auto words = split_fields(expr);
  if (words.size() == 1 && words[0].starts_with('@')) {
    auto expansion = expand_macro(words[0]);
    if (!expansion) {
      return Error::make(ErrorCode::validation,
                         "unknown cron macro " + quoted(words[0]) +
                             " (known: @yearly @annually @monthly @weekly @daily @midnight "
                             "@hourly)");
    }
    words = split_fields(*expansion);
  }
  if (words.size() != 5) {
    return Error::make(ErrorCode::validation,
                       "a cron expression has 5 fields (minute hour day-of-month month "
                       "day-of-week), got " +
                           std::to_string(words.size()) + " in " + quoted(expr));
  }
  uint64_t masks[5];
  for (int i = 0; i < 5; ++i) {
    auto mask = parse_field(kFields[i], words[static_cast<std::size_t>(i)]);
    if (!mask) return mask.take_error();
    masks[i] = *mask;
  }
  CronSpec spec;
  spec.minutes = std::bitset<60>(masks[0]);
  spec.hours = std::bitset<24>(masks[1]);
  spec.days_of_month = std::bitset<32>(masks[2]);
  spec.months = std::bitset<13>(masks[3]);
  spec.days_of_week = std::bitset<7>(masks[4]);
  spec.dom_star = words[2].starts_with('*');
  spec.dow_star = words[4].starts_with('*');
  return spec;
}

Result<CronSchedule> make_schedule(std::string_view expr, std::string_view tz_name) {
  auto spec = parse_cron(expr);
  if (!spec) return spec.take_error();
  auto zone = cached_zone(tz_name);
  if (!zone) return zone.take_error();
  return CronSchedule{*spec, std::string(expr), std::string(tz_name), std::move(*zone)};
}

int64_t next_after(const CronSchedule& schedule, int64_t after_ms) {
  const detail::Zone& zone = *schedule.zone;
  auto after = date::sys_time<std::chrono::milliseconds>{std::chrono::milliseconds{after_ms}};
  auto after_s = date::floor<std::chrono::seconds>(after);
  date::local_seconds wall{after_s.time_since_epoch() + zone.info(after_s).offset};
  // Every local minute up to the wall clock at `after` runs at or before `after` (run_instant is
  // monotonic), so the search starts one minute later.
  LocalMinutes from = date::floor<std::chrono::minutes>(wall) + std::chrono::minutes{1};
  date::year limit =
      date::year_month_day{date::floor<date::days>(wall)}.year() + date::years{kCronSearchYears};
  while (auto local = next_local_match(schedule.spec, from, limit)) {
    date::sys_seconds run = run_instant(zone, *local);
    // Only second occurrences of a repeated hour and minutes in an already passed gap land here.
    if (run > after) return to_ms(run);
    from = *local + std::chrono::minutes{1};
  }
  return 0;
}

std::vector<int64_t> slots_between(const CronSchedule& schedule, int64_t from_ms, int64_t to_ms,
                                   std::size_t max) {
  std::vector<int64_t> out;
  int64_t t = from_ms;
  while (out.size() < max) {
    t = next_after(schedule, t);
    if (t == 0 || t > to_ms) break;
    out.push_back(t);
  }
  return out;
}

}  // namespace creatord::queue
