#include "api/rate_limit.hpp"

#include <algorithm>
#include <cmath>

namespace creatord::api {

std::optional<int> RateLimiter::take(const std::string& key) {
  auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mutex_);
  if (buckets_.size() > 100000) buckets_.clear();  // bounded: a flood of keys cannot grow it forever
  auto [it, fresh] = buckets_.try_emplace(key, Bucket{burst_, now});
  Bucket& b = it->second;
  if (!fresh) {
    double elapsed = std::chrono::duration<double>(now - b.last).count();
    b.tokens = std::min(burst_, b.tokens + elapsed * rate_per_s_);
    b.last = now;
  }
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return std::nullopt;
  }
  if (rate_per_s_ <= 0) return 60;
  return std::max(1, static_cast<int>(std::ceil((1.0 - b.tokens) / rate_per_s_)));
}

}  // namespace creatord::api
