#include "core/clock.hpp"

#include <chrono>
#include <ctime>

#include <fmt/format.h>

namespace creatord {

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

namespace {
class SystemClock final : public Clock {
 public:
  int64_t now_ms() const override { return creatord::now_ms(); }
};

// Days since 1970-01-01 of a civil date (Howard Hinnant's days_from_civil).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

// Reads exactly n digits at pos.
std::optional<int> digits(std::string_view s, size_t& pos, size_t n) {
  if (pos + n > s.size()) return std::nullopt;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    char c = s[pos + i];
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  pos += n;
  return v;
}

bool expect(std::string_view s, size_t& pos, std::string_view chars) {
  if (pos >= s.size() || chars.find(s[pos]) == std::string_view::npos) return false;
  ++pos;
  return true;
}
}  // namespace

const Clock& system_clock() {
  static const SystemClock clock;
  return clock;
}

std::optional<int64_t> parse_rfc3339(std::string_view s) {
  size_t p = 0;
  auto y = digits(s, p, 4);
  if (!y || !expect(s, p, "-")) return std::nullopt;
  auto mo = digits(s, p, 2);
  if (!mo || !expect(s, p, "-")) return std::nullopt;
  auto d = digits(s, p, 2);
  if (!d || !expect(s, p, "Tt ")) return std::nullopt;
  auto h = digits(s, p, 2);
  if (!h || !expect(s, p, ":")) return std::nullopt;
  auto mi = digits(s, p, 2);
  if (!mi || !expect(s, p, ":")) return std::nullopt;
  auto sec = digits(s, p, 2);
  if (!sec) return std::nullopt;
  static constexpr int kMonthDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (*mo < 1 || *mo > 12 || *d < 1 || *d > kMonthDays[*mo - 1] || *h > 23 || *mi > 59 || *sec > 60) return std::nullopt;
  int64_t ms = 0;
  if (p < s.size() && s[p] == '.') {
    ++p;
    int64_t scale = 100;
    size_t start = p;
    while (p < s.size() && s[p] >= '0' && s[p] <= '9') {
      ms += (s[p] - '0') * scale;
      scale /= 10;
      ++p;
    }
    if (p == start) return std::nullopt;
  }
  int64_t offset_min = 0;
  if (p < s.size() && (s[p] == 'Z' || s[p] == 'z')) {
    ++p;
  } else if (p < s.size() && (s[p] == '+' || s[p] == '-')) {
    int sign = s[p] == '-' ? -1 : 1;
    ++p;
    auto oh = digits(s, p, 2);
    if (!oh || !expect(s, p, ":")) return std::nullopt;
    auto om = digits(s, p, 2);
    if (!om || *oh > 23 || *om > 59) return std::nullopt;
    offset_min = sign * (*oh * 60 + *om);
  } else {
    return std::nullopt;
  }
  if (p != s.size()) return std::nullopt;
  int64_t days = days_from_civil(*y, static_cast<unsigned>(*mo), static_cast<unsigned>(*d));
  int64_t secs = days * 86400 + *h * 3600 + *mi * 60 + std::min(*sec, 59) - offset_min * 60;
  return secs * 1000 + ms;
}

void append_rfc3339(std::string& out, int64_t unix_ms) {
  constexpr int64_t kDayMs = 86400 * 1000;
  int64_t day = unix_ms / kDayMs;
  if (unix_ms % kDayMs < 0) --day;  // floor: times before 1970 belong to the day before
  thread_local int64_t cached_day = INT64_MIN;
  thread_local char date[32];
  thread_local size_t date_size = 0;
  if (day != cached_day) {
    time_t secs = static_cast<time_t>(day * 86400);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    date_size = fmt::format_to_n(date, sizeof date, "{:04}-{:02}-{:02}T", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday).size;
    cached_day = day;
  }
  auto of_day = static_cast<unsigned>(unix_ms - day * kDayMs);
  unsigned hour = of_day / 3600000, minute = of_day / 60000 % 60, second = of_day / 1000 % 60, ms = of_day % 1000;
  const char time[] = {static_cast<char>('0' + hour / 10), static_cast<char>('0' + hour % 10), ':',
                       static_cast<char>('0' + minute / 10), static_cast<char>('0' + minute % 10), ':',
                       static_cast<char>('0' + second / 10), static_cast<char>('0' + second % 10), '.',
                       static_cast<char>('0' + ms / 100), static_cast<char>('0' + ms / 10 % 10),
                       static_cast<char>('0' + ms % 10), 'Z'};
  out.append(date, date_size);
  out.append(time, sizeof time);
}

std::string format_rfc3339(int64_t unix_ms) {
  std::string out;
  append_rfc3339(out, unix_ms);
  return out;
}

std::string format_http_date(int64_t unix_seconds) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  time_t secs = static_cast<time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT", kDays[tm.tm_wday], tm.tm_mday,
                     kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

}  // namespace creatord
