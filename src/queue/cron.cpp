#include "queue/cron.hpp"

#include <array>
#include <cctype>
#include <charconv>
#include <chrono>
#include <optional>

#include <date/tz.h>
#include <fmt/format.h>

namespace creatord::queue {

namespace {

using namespace std::chrono;
using LocalMinutes = date::local_time<minutes>;

struct Field {
  const char* name;
  int lo, hi;
  const char* const* names;  // names for lo..hi (null: numbers only)
};

constexpr const char* kMonths[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr const char* kDays[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"};
constexpr Field kFields[] = {{"minute", 0, 59, nullptr},
                             {"hour", 0, 23, nullptr},
                             {"day-of-month", 1, 31, nullptr},
                             {"month", 1, 12, kMonths},
                             {"day-of-week", 0, 7, kDays}};

Error bad(const Field& f, std::string_view token, std::string_view why) {
  return Error::make(ErrorCode::validation, fmt::format("{}: {} {}", f.name, token, why), "cron");
}

std::optional<int> value_of(const Field& f, std::string_view s) {
  int v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec == std::errc() && end == s.data() + s.size()) return v;
  if (!f.names || s.size() != 3) return std::nullopt;
  for (int i = 0; i <= f.hi - f.lo; ++i) {
    bool same = true;
    for (int k = 0; k < 3; ++k)
      same &= std::toupper(static_cast<unsigned char>(s[k])) == f.names[i][k];
    if (same) return f.lo + i;
  }
  return std::nullopt;
}

// One comma-separated item: `*`, `a`, `a-b`, each optionally `/step`.
Status add_item(const Field& f, std::string_view item, std::vector<bool>& set) {
  std::string_view base = item;
  int step = 1;
  if (auto slash = item.find('/'); slash != std::string_view::npos) {
    base = item.substr(0, slash);
    auto s = value_of(Field{f.name, 1, 1000, nullptr}, item.substr(slash + 1));
    if (!s || *s < 1) return bad(f, item, "has a bad step");
    step = *s;
  }
  int lo = f.lo, hi = f.hi;
  if (base != "*") {
    auto dash = base.find('-');
    auto a = value_of(f, base.substr(0, dash));
    auto b = dash == std::string_view::npos ? a : value_of(f, base.substr(dash + 1));
    if (!a || !b) return bad(f, item, "is not a value");
    if (*a < f.lo || *a > f.hi || *b < f.lo || *b > f.hi)
      return bad(f, item, fmt::format("is out of range {}-{}", f.lo, f.hi));
    if (*a > *b) return bad(f, item, "is a backwards range");
    lo = *a;
    hi = dash == std::string_view::npos && item.find('/') != std::string_view::npos ? f.hi : *b;  // `a/n`: a, a+n, ...
  }
  for (int v = lo; v <= hi; v += step) set[static_cast<size_t>(v)] = true;
  return ok_status();
}

Result<std::vector<bool>> parse_field(const Field& f, std::string_view text) {
  std::vector<bool> set(static_cast<size_t>(f.hi) + 1, false);
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    std::string_view item = text.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    if (item.empty()) return bad(f, text, "has an empty item");
    if (auto s = add_item(f, item, set); !s) return s.take_error();
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return set;
}

std::string_view expand_macro(std::string_view expr) {
  static constexpr std::pair<std::string_view, std::string_view> kMacros[] = {
      {"@hourly", "0 * * * *"}, {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"}, {"@weekly", "0 0 * * 0"},
      {"@monthly", "0 0 1 * *"}, {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}};
  for (const auto& [name, value] : kMacros)
    if (expr == name) return value;
  return expr;
}

std::vector<std::string_view> split_fields(std::string_view expr) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < expr.size()) {
    while (i < expr.size() && std::isspace(static_cast<unsigned char>(expr[i]))) ++i;
    size_t start = i;
    while (i < expr.size() && !std::isspace(static_cast<unsigned char>(expr[i]))) ++i;
    if (i > start) out.push_back(expr.substr(start, i - start));
  }
  return out;
}

bool day_matches(const CronSpec& s, const date::year_month_day& ymd, const date::weekday& wd) {
  bool dom = s.days[unsigned(ymd.day())];
  bool dow = s.weekdays[wd.c_encoding()];
  if (s.any_day && s.any_weekday) return true;
  if (s.any_day) return dow;
  if (s.any_weekday) return dom;
  return dom || dow;
}

int64_t to_unix_ms(const CronSchedule& c, LocalMinutes local) {
  if (!c.zone) return duration_cast<milliseconds>(local.time_since_epoch()).count();
  // Earliest: a repeated local time runs at its first occurrence; a skipped one at the transition.
  auto sys = c.zone->to_sys(local, date::choose::earliest);
  return duration_cast<milliseconds>(sys.time_since_epoch()).count();
}

LocalMinutes to_local(const CronSchedule& c, int64_t unix_ms) {
  sys_time<milliseconds> sys{milliseconds(unix_ms)};
  if (!c.zone) return LocalMinutes{floor<minutes>(sys).time_since_epoch()};
  return floor<minutes>(c.zone->to_local(sys));
}

}  // namespace

Result<CronSpec> parse_cron(std::string_view expr) {
  auto fields = split_fields(expand_macro(expr));
  if (fields.size() != 5)
    return Error::make(ErrorCode::validation,
                       fmt::format("a cron expression has five fields (minute hour day-of-month month day-of-week), "
                                   "got {}: `{}`", fields.size(), expr), "cron");
  std::array<std::vector<bool>, 5> sets;
  for (size_t i = 0; i < 5; ++i) {
    auto set = parse_field(kFields[i], fields[i]);
    if (!set) return set.take_error();
    sets[i] = std::move(set.value());
  }
  CronSpec s;
  for (int v = 0; v < 60; ++v) s.minutes[v] = sets[0][v];
  for (int v = 0; v < 24; ++v) s.hours[v] = sets[1][v];
  for (int v = 1; v < 32; ++v) s.days[v] = sets[2][v];
  for (int v = 1; v < 13; ++v) s.months[v] = sets[3][v];
  for (int v = 0; v < 8; ++v)
    if (sets[4][v]) s.weekdays[v % 7] = true;
  s.any_day = fields[2] == "*";
  s.any_weekday = fields[4] == "*";
  return s;
}

Result<CronSchedule> make_schedule(std::string_view expr, std::string_view zone) {
  auto spec = parse_cron(expr);
  if (!spec) return spec.take_error();
  CronSchedule c;
  c.spec = spec.value();
  c.zone_name = zone.empty() ? "UTC" : std::string(zone);
  if (c.zone_name == "UTC") return c;
  try {
    c.zone = date::locate_zone(c.zone_name);
  } catch (const std::exception&) {
    return Error::make(ErrorCode::validation, fmt::format("unknown time zone `{}` (an IANA name such as Europe/Berlin)", zone),
                       "timezone");
  }
  return c;
}

int64_t next_after(const CronSchedule& c, int64_t after_ms) {
  const CronSpec& s = c.spec;
  LocalMinutes t = to_local(c, after_ms) + minutes(1);
  const LocalMinutes limit = t + date::days(5 * 366);
  // Jump by the coarsest field that does not match, so a search takes a few hundred steps.
  while (t < limit) {
    auto day = floor<date::days>(t);
    date::year_month_day ymd{day};
    if (!s.months[unsigned(ymd.month())]) {
      date::year_month next = ymd.year() / ymd.month();
      next += date::months(1);
      t = LocalMinutes{date::local_days{next / 1}};
      continue;
    }
    if (!day_matches(s, ymd, date::weekday{day})) {
      t = day + date::days(1);
      continue;
    }
    auto since_midnight = t - day;
    auto h = floor<hours>(since_midnight);
    if (!s.hours[static_cast<size_t>(h.count())]) {
      t = day + h + hours(1);
      continue;
    }
    auto m = floor<minutes>(since_midnight - h);
    if (s.minutes[static_cast<size_t>(m.count())]) {
      int64_t at = to_unix_ms(c, t);
      if (at > after_ms) return at;
    }
    t += minutes(1);
  }
  return 0;
}

std::vector<int64_t> slots_between(const CronSchedule& c, int64_t from_ms, int64_t to_ms, size_t max) {
  std::vector<int64_t> out;
  for (int64_t t = next_after(c, from_ms); t > 0 && t <= to_ms && out.size() < max; t = next_after(c, t)) out.push_back(t);
  return out;
}

}  // namespace creatord::queue
