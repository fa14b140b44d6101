#include "metrics/histogram.hpp"

#include <algorithm>

namespace creatord::metrics {

const Bounds& latency_bounds() {
  static const Bounds b{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  return b;
}

const Bounds& job_bounds() {
  static const Bounds b{0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600};
  return b;
}

size_t bucket_of(const Bounds& bounds, std::chrono::nanoseconds d) {
  double s = std::chrono::duration<double>(d).count();
  return static_cast<size_t>(std::lower_bound(bounds.begin(), bounds.end(), s) - bounds.begin());
}

void Histogram::observe(std::chrono::nanoseconds d) {
  counts_[bucket_of(bounds_, d)].fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<uint64_t>(std::max<int64_t>(0, d.count())), std::memory_order_relaxed);
}

HistogramSnapshot Histogram::snapshot() const {
  HistogramSnapshot s;
  s.counts.reserve(counts_.size());
  for (const auto& c : counts_) s.counts.push_back(c.load(std::memory_order_relaxed));
  s.sum = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
  return s;
}

}  // namespace creatord::metrics
