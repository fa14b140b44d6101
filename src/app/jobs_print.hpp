// How `creatord jobs` prints jobs for a person (a table, indented JSON, colours on a terminal)
// and for a script (--json: one compact JSON line). Pure: the caller writes the text.
#pragma once
#include <cstdio>
#include <string>
#include <vector>

#include "queue/job.hpp"

namespace creatord {

// True when the stream is a terminal, NO_COLOR is unset and TERM is not "dumb".
bool use_color(std::FILE* stream);
// A header line, then one line per job: ID KIND STATE ATTEMPT PROGRESS CREATOR CREATED.
std::string jobs_table(const std::vector<Job>& jobs, bool color);
// {"items":[...]} with each job as the API shows it, on one line.
std::string jobs_json(const std::vector<Job>& jobs);
// The job as the API shows it, indented; with color, the state stands out.
std::string job_details(const Job& job, bool color);

// `jobs watch`: a job as its events tell it so far, drawn as one progress bar per step.
class WatchView {
 public:
  explicit WatchView(const Job& job);  // the job as it is now (finished steps at 100%)
  // Applies one of the job's events (job_event::*) in the order they were recorded.
  void apply(const JobEvent& event);
  bool finished() const { return finished_; }
  bool succeeded() const { return state_ == "succeeded"; }
  // A line for the job, then one per step: "  render_avatar  [#######-------------]  35%  running  avatar 1 of 3".
  std::string frame(bool color) const;

 private:
  struct Step {
    std::string name;
    std::string state = "pending";
    double progress = 0;
    std::string message;
  };
  Step* step(std::string_view name);

  int64_t id_ = 0;
  std::string kind_;
  std::string state_;
  std::string error_;
  bool finished_ = false;
  std::vector<Step> steps_;
};

// One line per event, for output that is not a terminal: "step.progress render_avatar 35% avatar 1 of 3".
std::string event_line(const JobEvent& event);

}  // namespace creatord
