// The HTTP/1.1 server: one event loop per thread, each with its own listener on the same port
// (SO_REUSEPORT), so a connection lives its whole life on one thread. Beast stays inside
// server.cpp; the rest of the program sees Request/Response.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "core/result.hpp"
#include "http/message.hpp"

namespace creatord::http {

// What the application decides from a request's line and headers, before its body is read.
struct Admission {
  std::optional<Response> refusal;  // answered at once; the body is never read
  size_t body_limit = 0;            // otherwise the largest body the request may carry
  int route = -1;                   // the matched route's index, for metrics; -1: none
  auth::Principal principal;        // who is calling, as far as the headers tell (for the log)
};

// What the server calls: the application (routing, auth, handlers) behind one interface.
class App {
 public:
  virtual ~App() = default;
  // Called right after the headers: route, method and authorization are decided here, so a
  // request that will not be served costs no body memory and gets no `100 Continue`.
  virtual Admission admit(const Request& req) const = 0;
  virtual boost::asio::awaitable<Response> handle(Request& req) = 0;
};

// What the server reports as it works, for metrics. Called on the I/O threads, often: an
// implementation must not block or take a lock.
class ServerObserver {
 public:
  virtual ~ServerObserver() = default;
  virtual void connection_opened() {}
  virtual void connection_closed() {}
  // Over the connection cap (in all or from one address): answered 503 and closed.
  virtual void connection_rejected() {}
  virtual void request_started() {}
  virtual void request_ended() {}  // every started request ends, answered or not
  // An answered request: route is Admission::route (-1 when it was refused before routing).
  virtual void request_answered(int /*route*/, Method /*method*/, int /*status*/, std::chrono::nanoseconds /*took*/) {}
  virtual void stream_opened() {}
  virtual void stream_closed() {}
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8000;
  size_t threads = 0;  // 0: one per core
  size_t max_connections = 10000;
  size_t max_connections_per_ip = 64;  // from one client address; 0: no limit
  size_t header_limit = 16 * 1024;
  size_t max_body_memory = 256u << 20;  // request bodies held in memory at once, all connections
  std::chrono::milliseconds header_timeout{10'000};  // a new connection's first byte; first byte to end of headers
  std::chrono::milliseconds body_timeout{120'000};   // end of headers to end of body
  std::chrono::milliseconds idle_timeout{60'000};    // keep-alive wait between requests
  std::chrono::milliseconds write_timeout{30'000};  // a response taking no bytes this long is cut off
  double min_send_rate = 1024;  // bytes/s on average, checked once write_timeout has passed; 0: none
  std::chrono::milliseconds shutdown_grace{10'000};  // for in-flight requests after SIGTERM
  bool access_log = true;
  ServerObserver* observer = nullptr;  // not owned; must outlive the server
  // Called on SIGHUP (on an I/O thread: it must not block); unset, SIGHUP keeps its default.
  std::function<void()> on_reload;
};

class Server {
 public:
  Server(ServerOptions options, App& app);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds every thread's listener. After success, port() is the bound port.
  Status listen();
  uint16_t port() const;
  std::string host() const;
  size_t threads() const;
  // Runs the event loops on this thread and threads() - 1 others; returns after shutdown
  // completes. SIGINT and SIGTERM start a graceful shutdown.
  void run();
  // Thread-safe: stop accepting, let in-flight requests finish within the grace period.
  void shutdown();

  // Runs fn on an I/O thread's executor (for background tasks wired in by the app). Shutdown
  // cancels it (asio per-operation cancellation) and waits for it within the grace period.
  void spawn_background(std::function<boost::asio::awaitable<void>()> fn);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace creatord::http
