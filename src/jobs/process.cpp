#include "jobs/process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <array>
#include <filesystem>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>

#include "core/task_group.hpp"

extern char** environ;

namespace creatord {

namespace asio = boost::asio;
using Descriptor = asio::posix::stream_descriptor;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

namespace {

std::string resolve(const std::string& prog) {
  if (prog.find('/') != std::string::npos) return prog;
  const char* path = std::getenv("PATH");
  std::string_view dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  while (!dirs.empty()) {
    size_t colon = dirs.find(':');
    std::string dir(dirs.substr(0, colon));
    dirs = colon == std::string_view::npos ? std::string_view{} : dirs.substr(colon + 1);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + prog;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return prog;
}

struct Pipes {
  int fds[2] = {-1, -1};
  bool open() { return ::pipe2(fds, O_CLOEXEC) == 0; }
  ~Pipes() {
    for (int fd : fds)
      if (fd >= 0) ::close(fd);
  }
  int take(int i) {
    int fd = fds[i];
    fds[i] = -1;
    return fd;
  }
};

// `PROGRESS <0..1> [message]`: reported; any other line is only log.
void report_progress_line(const std::string& line, const std::function<void(double, std::string)>& progress) {
  if (line.rfind("PROGRESS ", 0) != 0 || !progress) return;
  char* end = nullptr;
  double f = std::strtod(line.c_str() + 9, &end);
  std::string msg = end && *end == ' ' ? std::string(end + 1) : std::string();
  if (end != line.c_str() + 9 && f >= 0 && f <= 1) progress(f, msg);
}

}  // namespace

asio::awaitable<Result<ProcessResult>> run_process(ProcessSpec spec, CancelState& cancel,
                                                   std::function<void(double, std::string)> progress) {
  auto ex = co_await asio::this_coro::executor;
  if (spec.argv.empty() || spec.argv[0].empty()) co_return Error::make(ErrorCode::validation, "exec: empty command");

  // Everything the child needs is prepared before fork: after it, only async-signal-safe calls.
  std::string exe = resolve(spec.argv[0]);
  std::vector<char*> argv;
  for (auto& a : spec.argv) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (const char* keep : {"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"})
    if (const char* v = std::getenv(keep); v && !spec.env.count(keep)) env_strings.push_back(std::string(keep) + "=" + v);
  for (const auto& [k, v] : spec.env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  const char* cwd = spec.cwd.empty() ? nullptr : spec.cwd.c_str();

  Pipes in, out, err, status;
  if (!in.open() || !out.open() || !err.open() || !status.open())
    co_return Error::make(ErrorCode::unavailable, std::string("exec: pipe: ") + std::strerror(errno));
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) co_return Error::make(ErrorCode::unavailable, std::string("exec: fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::setpgid(0, 0);                      // its own group: stopping the step stops its children
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);   // dies with creatord
    if (::getppid() != parent) ::_exit(127);
    ::dup2(in.fds[0], 0);
    ::dup2(out.fds[1], 1);
    ::dup2(err.fds[1], 2);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    if (cwd && ::chdir(cwd) != 0) {
      int e = errno;
      (void)!::write(status.fds[1], &e, sizeof e);
      ::_exit(127);
    }
    ::execve(exe.c_str(), argv.data(), envp.data());
    int e = errno;
    (void)!::write(status.fds[1], &e, sizeof e);
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also from here, so the group exists before we might signal it
  ::close(in.take(0));
  ::close(out.take(1));
  ::close(err.take(1));
  ::close(status.take(1));
  // exec failed? The status pipe closes on a successful exec (CLOEXEC) without data.
  int exec_errno = 0;
  ssize_t got = ::read(status.fds[0], &exec_errno, sizeof exec_errno);
  if (got == static_cast<ssize_t>(sizeof exec_errno)) {
    int st = 0;
    ::waitpid(pid, &st, 0);
    co_return Error::make(ErrorCode::validation,
                          fmt::format("exec: cannot run {}: {}", spec.argv[0], std::strerror(exec_errno)));
  }

  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    ::kill(-pid, SIGKILL);
    int st = 0;
    ::waitpid(pid, &st, 0);
    co_return Error::make(ErrorCode::unavailable, std::string("exec: pidfd_open: ") + std::strerror(errno));
  }
  Descriptor proc(ex, pidfd), to_child(ex, in.take(1)), from_out(ex, out.take(0)), from_err(ex, err.take(0));

  ProcessResult res;
  // What callbacks may touch after this frame is gone lives here.
  struct Shared {
    pid_t pid;
    bool exited = false;
    bool timed_out = false;
    bool cancelled = false;
  };
  auto shared = std::make_shared<Shared>(Shared{pid});
  auto grace_ms = spec.kill_grace;
  // SIGTERM to the whole group, SIGKILL after the grace period if it is still there.
  auto stop = [shared, ex, grace_ms](bool is_timeout) {
    if (shared->exited || shared->timed_out || shared->cancelled) return;
    (is_timeout ? shared->timed_out : shared->cancelled) = true;
    ::kill(-shared->pid, SIGTERM);
    auto grace = std::make_shared<asio::steady_timer>(ex, grace_ms);
    grace->async_wait([grace, shared](const boost::system::error_code& ec) {
      if (!ec && !shared->exited) ::kill(-shared->pid, SIGKILL);
    });
  };
  // Cancellation arrives from any thread: act on this executor.
  int hook = cancel.add_hook([ex, stop] { asio::post(ex, [stop] { stop(false); }); });
  TaskGroup streams(ex);  // the pipes' readers and writer, which use this frame's locals
  asio::steady_timer deadline(ex);
  if (spec.timeout.count() > 0) {
    deadline.expires_after(spec.timeout);
    deadline.async_wait([stop](const boost::system::error_code& ec) {
      if (!ec) stop(true);
    });
  }

  // The readers and writer below live in this frame; it waits for them before returning.
  streams.spawn([&]() -> asio::awaitable<void> {
    co_await asio::async_write(to_child, asio::buffer(spec.stdin_data), nothrow);
    boost::system::error_code ec;
    to_child.close(ec);
  });
  streams.spawn([&]() -> asio::awaitable<void> {
    std::array<char, 16384> buf;
    for (;;) {
      auto r = co_await from_out.async_read_some(asio::buffer(buf), nothrow);
      if (std::get<0>(r)) break;
      size_t n = std::get<1>(r);
      if (res.out.size() + n > spec.max_stdout) {
        res.stdout_too_large = true;
        ::kill(-pid, SIGKILL);
        break;
      }
      res.out.append(buf.data(), n);
    }
  });
  streams.spawn([&]() -> asio::awaitable<void> {
    std::array<char, 8192> buf;
    std::string line;
    for (;;) {
      auto r = co_await from_err.async_read_some(asio::buffer(buf), nothrow);
      if (std::get<0>(r)) break;
      std::string_view chunk(buf.data(), std::get<1>(r));
      res.err_tail.append(chunk);
      if (res.err_tail.size() > spec.max_stderr_kept) res.err_tail.erase(0, res.err_tail.size() - spec.max_stderr_kept);
      for (char c : chunk) {
        if (c != '\n') {
          if (line.size() < 4096) line.push_back(c);
          continue;
        }
        report_progress_line(line, progress);
        line.clear();
      }
    }
    report_progress_line(line, progress);  // a last line without its newline counts too
  });

  co_await proc.async_wait(Descriptor::wait_read, nothrow);  // readable once the process exited
  int st = 0;
  ::waitpid(pid, &st, 0);
  shared->exited = true;
  res.timed_out = shared->timed_out;
  res.cancelled = shared->cancelled;
  if (WIFEXITED(st)) res.exit_code = WEXITSTATUS(st);
  if (WIFSIGNALED(st)) res.term_signal = WTERMSIG(st);
  ::kill(-pid, SIGKILL);  // whatever it left behind in its group goes too (this also closes their pipes)
  deadline.cancel();
  cancel.remove_hook(hook);
  co_await streams.wait(std::chrono::seconds(5));
  boost::system::error_code ec;
  from_out.close(ec);
  from_err.close(ec);
  to_child.close(ec);
  co_await streams.wait();  // closing cancelled the reads: let them finish
  co_return res;
}

}  // namespace creatord
