// A histogram whose recording is two relaxed atomic adds: safe from any thread, no lock.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <vector>

#include "metrics/exposition.hpp"

namespace creatord::metrics {

// Request latencies: 0.5 ms to 10 s.
const Bounds& latency_bounds();
// Job and step run times, and waits in a queue: 10 ms to 1 h.
const Bounds& job_bounds();

class Histogram {
 public:
  explicit Histogram(const Bounds& bounds) : bounds_(bounds), counts_(bounds.size() + 1) {}
  void observe(std::chrono::nanoseconds d);
  HistogramSnapshot snapshot() const;
  const Bounds& bounds() const { return bounds_; }

 private:
  const Bounds& bounds_;
  std::vector<std::atomic<uint64_t>> counts_;
  std::atomic<uint64_t> sum_ns_{0};
};

// The bucket index of d among bounds (bounds.size() for +Inf).
size_t bucket_of(const Bounds& bounds, std::chrono::nanoseconds d);

}  // namespace creatord::metrics
