// The request path, bytes in and a response out: the real server (Beast's parser, our limits,
// the router, auth and every handler) on a SQLite store in a temporary folder, started once in
// this process. Each input is sent on a fresh connection whose write side is then closed; the
// server must answer or close, never crash, and never answer 500.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "app/app.hpp"
#include "app/config.hpp"

namespace {

uint16_t g_port = 0;

uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    std::abort();
  ::close(fd);
  return ntohs(a.sin_port);
}

int connect_to(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Waits up to ms for fd to be ready for events; false on timeout.
bool wait_for(int fd, short events, int ms) {
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, ms) > 0;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* tmp = std::getenv("TMPDIR");
  std::string base = std::string(tmp && *tmp ? tmp : "/tmp") + "/creatord-fuzz-request-XXXXXX";
  if (!::mkdtemp(base.data())) std::abort();
  creatord::Config cfg;
  g_port = free_port();
  cfg.listen = "127.0.0.1:" + std::to_string(g_port);
  cfg.data_dir = base;
  cfg.log_level = "error";
  cfg.access_log = false;
  cfg.threads = 1;
  cfg.render_threads = 1;
  cfg.api_tokens = {"fuzz-token-0123456789abcdef"};  // seeds carry it: both sides of auth are reached
  cfg.header_timeout = 1;
  cfg.body_timeout = 1;
  cfg.idle_timeout = 1;
  cfg.max_wait = 1;
  cfg.mail_rate = 1e6;
  cfg.mail_burst = 1e6;
  cfg.max_upload_bytes = 1 << 20;
  std::thread([cfg]() mutable { std::_Exit(creatord::run_serve(std::move(cfg)) == 0 ? 0 : 3); }).detach();
  for (int i = 0; i < 500; ++i) {
    int fd = connect_to(g_port);
    if (fd >= 0) {
      ::close(fd);
      return 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::fprintf(stderr, "the server did not start listening on %u\n", g_port);
  std::abort();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  int fd = connect_to(g_port);
  if (fd < 0) std::abort();  // the server stopped accepting
  size_t sent = 0;
  while (sent < size) {
    if (!wait_for(fd, POLLOUT, 2000)) break;  // the server stopped reading: fine
    ssize_t n = ::send(fd, data + sent, size - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  std::string answer;
  char buf[16384];
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!wait_for(fd, POLLIN, 200)) continue;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    if (answer.size() < (1u << 16)) answer.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  // An internal error is a bug, whatever the input: bad input is a 4xx, overload a 503.
  if (answer.rfind("HTTP/1.1 500", 0) == 0) {
    std::fprintf(stderr, "500 for this input:\n%.*s\n", static_cast<int>(answer.size() > 2000 ? 2000 : answer.size()),
                 answer.data());
    std::abort();
  }
  return 0;
}
