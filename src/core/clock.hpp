#pragma once
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace creatord {

// Milliseconds since the Unix epoch (wall clock): what the store keeps.
int64_t now_ms();
// The time source behind anything that schedules (leases, backoff, delayed and scheduled jobs):
// a seam so tests move time instead of sleeping.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t now_ms() const = 0;
};
// The wall clock.
const Clock& system_clock();
// A clock that only moves when told to (tests).
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_ms) : now_(start_ms) {}
  int64_t now_ms() const override { return now_.load(); }
  void set(int64_t ms) { now_.store(ms); }
  void advance(int64_t ms) { now_.fetch_add(ms); }

 private:
  std::atomic<int64_t> now_;
};

// Parses an RFC 3339 timestamp (2026-11-28T06:50:14Z, with optional fraction and a Z or ±hh:mm
// offset) into Unix milliseconds; nullopt when it is not one.
std::optional<int64_t> parse_rfc3339(std::string_view text);
// RFC 3339 UTC with milliseconds, e.g. 2026-11-28T06:50:14.123Z
std::string format_rfc3339(int64_t unix_ms);
// The same, appended to `out`: the date is formatted once per day per thread, the time of day
// with plain arithmetic (a list answer writes two per row).
void append_rfc3339(std::string& out, int64_t unix_ms);
// IMF-fixdate for HTTP headers, e.g. "Sat, 28 Nov 2026 06:50:14 GMT"
std::string format_http_date(int64_t unix_seconds);

}  // namespace creatord
