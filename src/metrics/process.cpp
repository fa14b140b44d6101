#include "metrics/process.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

namespace creatord::metrics {

namespace {

struct ProcStat {
  double cpu_seconds = 0;
  double start_time = 0;  // seconds since the epoch
  double virtual_bytes = 0;
  double resident_bytes = 0;
};

double boot_time() {
  std::ifstream in("/proc/stat");
  std::string key;
  double value = 0;
  while (in >> key) {
    if (key == "btime" && in >> value) return value;
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

// /proc/self/stat: the fields after the command name (which may hold spaces), see proc(5).
std::optional<ProcStat> read_stat() {
  std::ifstream in("/proc/self/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = text.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(text.substr(close + 2));
  std::vector<std::string> f{std::istream_iterator<std::string>(fields), std::istream_iterator<std::string>()};
  // f[0] is field 3 (state): field N is f[N - 3].
  if (f.size() < 22) return std::nullopt;
  double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  ProcStat s;
  s.cpu_seconds = (std::stod(f[11]) + std::stod(f[12])) / ticks;  // utime + stime
  s.start_time = boot_time() + std::stod(f[19]) / ticks;         // starttime
  s.virtual_bytes = std::stod(f[20]);                            // vsize
  s.resident_bytes = std::stod(f[21]) * page;                    // rss
  return s;
}

double open_fds() {
  DIR* d = opendir("/proc/self/fd");
  if (!d) return 0;
  double n = 0;
  while (readdir(d)) ++n;
  closedir(d);
  return n - 3;  // ".", "..", and the descriptor opendir holds
}

}  // namespace

void write_process_metrics(Exposition& out) {
  if (auto s = read_stat()) {
    out.family("process_cpu_seconds_total", "counter", "User and system CPU time spent, in seconds.");
    out.sample("process_cpu_seconds_total", {}, s->cpu_seconds);
    out.family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    out.sample("process_resident_memory_bytes", {}, s->resident_bytes);
    out.family("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    out.sample("process_virtual_memory_bytes", {}, s->virtual_bytes);
    out.family("process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch, in seconds.");
    out.sample("process_start_time_seconds", {}, s->start_time);
  }
  out.family("process_open_fds", "gauge", "Open file descriptors.");
  out.sample("process_open_fds", {}, open_fds());
  struct rlimit rl {};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    out.family("process_max_fds", "gauge", "The limit of open file descriptors.");
    out.sample("process_max_fds", {}, static_cast<double>(rl.rlim_cur));
  }
}

}  // namespace creatord::metrics
