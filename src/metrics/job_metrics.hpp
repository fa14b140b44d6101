// The job engine's figures: runs finished by pipeline and outcome, run and step durations by
// pipeline (and step), and how long jobs waited in their queue before a worker took them. Job
// events are far rarer than requests, so a mutex guards the maps.
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <unordered_map>

#include "metrics/exposition.hpp"
#include "metrics/histogram.hpp"
#include "queue/job_queue.hpp"

namespace creatord::metrics {

class JobMetrics final : public queue::RunObserver {
 public:
  void claimed(const Job& job, int64_t now_ms) override;
  void step_recorded(const StepUpdate& update, int64_t now_ms) override;
  void finished(const Job& job, queue::RunOutcome::Kind outcome, int64_t now_ms) override;

  void write(Exposition& out) const;

 private:
  struct Running {
    std::string pipeline;
    int64_t claimed_at_ms = 0;
    std::map<std::string, int64_t> steps_started_ms;
  };
  Histogram& histogram(std::map<std::string, std::unique_ptr<Histogram>>& family, const std::string& key);

  mutable std::mutex mutex_;
  std::unordered_map<int64_t, Running> running_;  // claimed here, not finished yet
  std::map<std::pair<std::string, std::string>, uint64_t> finished_;  // (pipeline, outcome)
  std::map<std::string, std::unique_ptr<Histogram>> run_seconds_;      // by pipeline
  std::map<std::string, std::unique_ptr<Histogram>> wait_seconds_;     // by queue
  std::map<std::string, std::unique_ptr<Histogram>> step_seconds_;     // by "pipeline\nstep"
};

std::string_view outcome_name(queue::RunOutcome::Kind k);

}  // namespace creatord::metrics
