// Running a program for an `exec` step without holding a thread: its pipes and a pidfd are
// watched by the event loop, so a hundred running programs cost no more threads than one.
#pragma once
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "core/result.hpp"
#include "jobs/pipeline.hpp"

namespace creatord {

struct ProcessSpec {
  std::vector<std::string> argv;           // argv[0] is looked up in PATH when it has no '/'
  std::string cwd;                         // empty: creatord's
  std::map<std::string, std::string> env;  // added to a minimal environment (PATH, HOME, LANG, TZ)
  std::string stdin_data;
  std::chrono::milliseconds timeout{0};    // 0: none (the job's timeout still applies)
  std::chrono::milliseconds kill_grace{5000};  // SIGTERM, then SIGKILL after this
  size_t max_stdout = 16u << 20;
  size_t max_stderr_kept = 64u << 10;      // the tail of stderr kept as the step's log
};

struct ProcessResult {
  int exit_code = -1;   // when it exited
  int term_signal = 0;  // when a signal ended it
  bool timed_out = false;
  bool cancelled = false;
  bool stdout_too_large = false;
  std::string out;
  std::string err_tail;
};

// Lines on stderr of the form `PROGRESS <fraction 0..1> [message]` are reported through
// `progress` as they arrive. When the program ends (or is stopped) its whole process group is
// killed, so no child it started outlives the step. Children die with creatord (PDEATHSIG).
boost::asio::awaitable<Result<ProcessResult>> run_process(ProcessSpec spec, CancelState& cancel,
                                                          std::function<void(double, std::string)> progress);

}  // namespace creatord
