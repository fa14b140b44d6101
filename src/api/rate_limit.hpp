// A token bucket per key (per API token): `per_minute` sustained, `burst` at once. In memory,
// per process: with several instances each enforces its own limit.
#pragma once
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace creatord::api {

class RateLimiter {
 public:
  RateLimiter(double per_minute, double burst) : rate_per_s_(per_minute / 60.0), burst_(burst) {}
  // nullopt when allowed (and counted); else the seconds to wait before the next is allowed.
  std::optional<int> take(const std::string& key);

 private:
  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point last;
  };
  double rate_per_s_;
  double burst_;
  std::mutex mutex_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace creatord::api
