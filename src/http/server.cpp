#include "http/server.hpp"

#include <sys/socket.h>

#include <csignal>
#include <array>
#include <list>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "core/clock.hpp"
#include "core/ids.hpp"
#include "core/log.hpp"

namespace creatord::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);
// Results of co_await are unpacked with std::get, not structured bindings: GCC 12 produced
// wrong code for bindings declared in some coroutine frames (a 408 that was never sent).

namespace {

class PeerWatch;

// A connection as its session and the shutdown logic see it. Lives in the session's frame.
struct Connection {
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  std::string remote;
  bool idle = true;
  PeerWatch* watch = nullptr;  // while a handler runs
};

// Bytes of request bodies held in memory at once, across every connection and thread.
class BodyBudget {
 public:
  explicit BodyBudget(size_t limit) : limit_(limit) {}
  bool take(size_t bytes) {
    size_t used = used_.load(std::memory_order_relaxed);
    do {
      if (bytes > limit_ || used > limit_ - bytes) return false;
    } while (!used_.compare_exchange_weak(used, used + bytes, std::memory_order_relaxed));
    return true;
  }
  void give_back(size_t bytes) { used_.fetch_sub(bytes, std::memory_order_relaxed); }

 private:
  const size_t limit_;
  std::atomic<size_t> used_{0};
};

// A share of the body budget taken for one request, given back when the request is done.
class BodyReservation {
 public:
  BodyReservation(BodyBudget& budget, size_t bytes) : budget_(budget), bytes_(bytes) {}
  BodyReservation(const BodyReservation&) = delete;
  BodyReservation& operator=(const BodyReservation&) = delete;
  ~BodyReservation() { budget_.give_back(bytes_); }

 private:
  BodyBudget& budget_;
  size_t bytes_;
};

// Member order matters: the io_context is destroyed before the list its sessions erase
// themselves from, and the acceptor before its io_context.
struct Worker {
  std::list<Connection*> conns;  // touched only on this worker's thread
  int64_t date_second = 0;
  std::string date;
  asio::io_context ioc{1};
  std::optional<tcp::acceptor> acceptor;

  const std::string& http_date() {
    int64_t s = ::time(nullptr);
    if (s != date_second) {
      date_second = s;
      date = format_http_date(s);
    }
    return date;
  }
};

// A read raced against a timer: whichever ends first cancels the other, and both have ended
// when the race returns, so neither outlives the caller's frame nor touches a later read (a
// timer whose handler captured the stream could fire after the read and cancel the next one).
// Unlike tcp_stream's own timeout this leaves the socket open, so the server can answer 408.
struct RaceResult {
  boost::system::error_code ec;
  bool timed_out = false;
};
template <typename ReadOp>
asio::awaitable<RaceResult> read_until_deadline(beast::tcp_stream& stream, ReadOp read,
                                                std::chrono::milliseconds d) {
  stream.expires_never();
  asio::steady_timer timer(stream.get_executor(), d);
  auto expiry = timer.async_wait(asio::deferred);
  auto group = asio::experimental::make_parallel_group(std::move(read), std::move(expiry));
  asio::experimental::wait_for_one first;
  auto result = co_await group.async_wait(first, asio::use_awaitable);
  RaceResult r;
  r.ec = std::get<1>(result);
  // A read that finished while the timer fired succeeded all the same.
  r.timed_out = r.ec && std::get<0>(result)[0] == 1;
  co_return r;
}

// The API's error shape (api/errors.hpp), for the errors the server answers itself. field names
// what was wrong when one part was: "headers", "body", "target".
std::string error_body(std::string_view code, std::string_view message, std::string_view field = {}) {
  std::string b = "{\"error\":{\"code\":";
  log::append_json_string(b, code);
  b += ",\"message\":";
  log::append_json_string(b, message);
  b += ",\"field\":";  // the API's one error shape: null when no field is at fault
  if (field.empty()) b += "null";
  else log::append_json_string(b, field);
  b += "}}";
  return b;
}

// Over the connection cap: written before anything is read, with a request id like every answer.
std::string overloaded_response(const std::string& request_id) {
  std::string body = error_body("overloaded", "too many connections, retry later");
  return fmt::format(
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
      "X-Request-Id: {}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{}",
      request_id, body.size(), body);
}

Response error_body_response(int status, std::string_view code, std::string_view message,
                             std::string_view field = {}) {
  Response r;
  r.status = status;
  r.body = error_body(code, message, field);
  return r;
}

// "chunked", alone: the only transfer coding whose body length is certain (RFC 9112 §6.3).
bool is_only_chunked(std::string_view codings) {
  while (!codings.empty() && (codings.front() == ' ' || codings.front() == '\t')) codings.remove_prefix(1);
  while (!codings.empty() && (codings.back() == ' ' || codings.back() == '\t')) codings.remove_suffix(1);
  return iequals(codings, "chunked");
}

// Framing the parser lets through but a proxy in front of us may read differently (request
// smuggling): several or (in HTTP/1.1) no Host, a Transfer-Encoding other than chunked alone, or
// one next to a Content-Length. nullopt when the head is sound.
std::optional<std::string> framing_problem(const Request& req, unsigned version) {
  size_t hosts = 0;
  bool has_length = false, has_codings = false;
  std::string codings;
  for (const auto& h : req.headers) {
    if (iequals(h.name, "Host")) {
      ++hosts;
    } else if (iequals(h.name, "Content-Length")) {
      has_length = true;
    } else if (iequals(h.name, "Transfer-Encoding")) {
      if (has_codings) codings += ',';
      codings += h.value;
      has_codings = true;
    }
  }
  if (hosts > 1 || (hosts == 0 && version >= 11)) return "a request needs exactly one Host header";
  if (has_codings && (version < 11 || has_length || !is_only_chunked(codings)))
    return "Transfer-Encoding must be chunked, alone, in HTTP/1.1, without Content-Length";
  return std::nullopt;
}

Request request_from(const bhttp::request<bhttp::string_body>& msg, const std::string& remote, std::string rid) {
  Request req;
  req.remote = remote;
  req.method = parse_method(msg.method_string());
  req.method_text = msg.method_string();
  req.target = msg.target();
  req.headers.reserve(16);
  for (const auto& f : msg) req.headers.push_back(Header{f.name_string(), f.value()});
  if (auto client_id = req.header("X-Request-Id"); is_acceptable_request_id(client_id)) rid = std::string(client_id);
  req.request_id = std::move(rid);
  return req;
}

// SSE: writes go straight to the socket; a read that never expects data notices the client
// going away at once.
class SocketStreamWriter final : public StreamWriter {
 public:
  SocketStreamWriter(beast::tcp_stream& stream, std::chrono::milliseconds write_timeout)
      : stream_(stream), write_timeout_(write_timeout) {}
  asio::awaitable<bool> write(std::string data) override {
    if (closed_) co_return false;
    stream_.expires_after(write_timeout_);
    auto result = co_await asio::async_write(stream_, asio::buffer(data), use_nothrow);
    if (std::get<0>(result)) mark_closed();
    co_return !closed_;
  }
  bool closed() const override { return closed_; }
  void on_close(std::function<void()> fn) override {
    if (closed_) fn();
    else on_close_ = std::move(fn);
  }
  void mark_closed() {
    if (closed_) return;
    closed_ = true;
    if (on_close_) on_close_();
  }

 private:
  beast::tcp_stream& stream_;
  std::chrono::milliseconds write_timeout_;
  bool closed_ = false;
  std::function<void()> on_close_;
};

// Watches a connection for its client going away while a handler runs, without reading: a
// readable socket with nothing to peek at is closed. Bytes to peek (a pipelined request) end the
// watch, the client is there. The wait's handler shares only `state`, which the destructor
// disarms, so a wait that completed but whose handler has not run yet touches nothing after it.
class PeerWatch final : public ClientLink {
 public:
  PeerWatch(tcp::socket& sock, const std::atomic<bool>& draining)
      : sock_(sock), draining_(draining), state_(std::make_shared<State>()) {}
  PeerWatch(const PeerWatch&) = delete;
  PeerWatch& operator=(const PeerWatch&) = delete;
  ~PeerWatch() override {
    state_->armed = false;
    state_->fn = nullptr;
    if (state_->watching) {
      boost::system::error_code ec;
      sock_.cancel(ec);  // the only operation on the socket while the handler runs
    }
  }
  bool gone() const override { return state_->gone; }
  bool stop_waiting() const override { return state_->gone || draining_.load(); }
  void on_stop_waiting(std::function<void()> fn) override {
    if (stop_waiting()) {
      fn();
      return;
    }
    state_->fn = std::move(fn);
    if (!state_->watching) {
      state_->watching = true;
      sock_.async_wait(tcp::socket::wait_read, Waiter{state_, &sock_});
    }
  }
  // The server began shutting down: a waiting handler answers now. On the connection's thread.
  void shutting_down() {
    if (auto fn = std::exchange(state_->fn, nullptr)) fn();
  }

 private:
  struct State {
    bool armed = true, watching = false, gone = false;
    std::function<void()> fn;
  };
  struct Waiter {
    std::shared_ptr<State> state;
    tcp::socket* sock;  // valid while state->armed
    void operator()(const boost::system::error_code& ec) {
      if (!state->armed) return;
      state->watching = false;
      if (ec == asio::error::operation_aborted) return;
      if (!ec) {
        char byte;
        ssize_t n = ::recv(sock->native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n > 0) return;  // a pipelined request: the client is there
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
          state->watching = true;
          sock->async_wait(tcp::socket::wait_read, std::move(*this));
          return;
        }
      }
      state->gone = true;
      if (auto fn = std::exchange(state->fn, nullptr)) fn();
    }
  };
  tcp::socket& sock_;
  const std::atomic<bool>& draining_;
  std::shared_ptr<State> state_;
};

// Open connections per client address, across every thread; 0 means no limit.
class AddressCounts {
 public:
  explicit AddressCounts(size_t limit) : limit_(limit) {}
  // False (and nothing counted) when the address has its limit already.
  bool add(const std::string& address) {
    if (limit_ == 0) return true;
    std::lock_guard lock(mutex_);
    size_t& n = counts_[address];
    if (n >= limit_) return false;
    ++n;
    return true;
  }
  void remove(const std::string& address) {
    if (limit_ == 0) return;
    std::lock_guard lock(mutex_);
    auto it = counts_.find(address);
    if (it != counts_.end() && --it->second == 0) counts_.erase(it);
  }

 private:
  const size_t limit_;
  std::mutex mutex_;
  std::unordered_map<std::string, size_t> counts_;
};

// The peer's address as text; an IPv4 client on an IPv6 socket counts as its IPv4 address.
std::string peer_address(const tcp::socket& sock) {
  boost::system::error_code ec;
  auto ep = sock.remote_endpoint(ec);
  if (ec) return {};
  auto addr = ep.address();
  if (addr.is_v6() && addr.to_v6().is_v4_mapped())
    return asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6()).to_string();
  return addr.to_string();
}

ServerObserver g_no_observer;

}  // namespace

struct Server::Impl {
  ServerOptions opts;
  App& app;
  ServerObserver& observer;
  std::atomic<size_t> active{0};
  std::atomic<bool> draining{false};
  BodyBudget body_budget;
  AddressCounts per_address;
  uint16_t bound_port = 0;
  // Coroutines outside any connection's count (background tasks, rejections): shutdown waits
  // for them too. Background tasks are cancelled when it begins, through their signals (all of
  // `background` is touched on the first worker's thread only).
  struct Task {
    asio::cancellation_signal signal;
    bool done = false;  // a signal is emitted only while its task runs
  };
  std::atomic<size_t> tasks{0};
  std::list<Task> background;
  std::vector<std::unique_ptr<Worker>> workers;  // after what sessions touch when destroyed
  std::optional<asio::signal_set> signals;        // before the io_context it uses
  std::optional<asio::signal_set> reload_signals;  // SIGHUP, when opts.on_reload is set

  Impl(ServerOptions o, App& a)
      : opts(std::move(o)),
        app(a),
        observer(opts.observer ? *opts.observer : g_no_observer),
        body_budget(opts.max_body_memory), per_address(opts.max_connections_per_ip) {}

  static void log_exception(std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const boost::system::system_error& ex) {
      if (ex.code() != asio::error::operation_aborted) log::error("coroutine failed", {{"error", ex.what()}});
    } catch (const std::exception& ex) {
      log::error("coroutine failed", {{"error", ex.what()}});
    }
  }

  // On the first worker's thread.
  void spawn_task(std::function<asio::awaitable<void>()> fn) {
    if (draining.load()) return;
    Task& task = background.emplace_back();
    tasks.fetch_add(1);
    auto done = [this, &task](std::exception_ptr e) {
      log_exception(e);
      task.done = true;
      tasks.fetch_sub(1);
    };
    asio::co_spawn(workers.front()->ioc, std::move(fn), asio::bind_cancellation_slot(task.signal.slot(), std::move(done)));
  }

  Status listen() {
    boost::system::error_code ec;
    tcp::resolver resolver(workers.front()->ioc);
    auto results = resolver.resolve(opts.host, std::to_string(opts.port), ec);
    if (ec || results.empty())
      return Error::make(ErrorCode::internal, fmt::format("cannot resolve {}: {}", opts.host, ec.message()));
    tcp::endpoint ep = results.begin()->endpoint();
    for (auto& w : workers) {
      auto& a = w->acceptor.emplace(w->ioc);
      a.open(ep.protocol(), ec);
      if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
      if (!ec) {
        int one = 1;
        if (::setsockopt(a.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
          ec.assign(errno, boost::system::system_category());
      }
      if (!ec) a.bind(ep, ec);
      if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
      if (ec)
        return Error::make(ErrorCode::internal,
                           fmt::format("cannot listen on {}:{}: {}", opts.host, ep.port(), ec.message()));
      // Port 0: the first listener picks a port, the others join it.
      if (ep.port() == 0) ep.port(a.local_endpoint().port());
    }
    bound_port = ep.port();
    return ok_status();
  }

  asio::awaitable<void> accept_loop(Worker& w) {
    for (;;) {
      auto ec_result = co_await w.acceptor->async_accept(use_nothrow);
      auto ec = std::move(std::get<0>(ec_result));
      auto sock = std::move(std::get<1>(ec_result));
      if (ec) {
        if (!w.acceptor->is_open() || ec == asio::error::operation_aborted) co_return;
        log::warn("accept failed", {{"error", ec.message()}});
        // Out of descriptors: pause rather than spin.
        asio::steady_timer t(w.ioc, std::chrono::milliseconds(50));
        co_await t.async_wait(use_nothrow);
        continue;
      }
      std::string remote = peer_address(sock);
      if (active.load(std::memory_order_relaxed) >= opts.max_connections || !per_address.add(remote)) {
        observer.connection_rejected();
        tasks.fetch_add(1);
        asio::co_spawn(w.ioc, reject(std::move(sock)), [this](std::exception_ptr e) {
          log_exception(e);
          tasks.fetch_sub(1);
        });
        continue;
      }
      asio::co_spawn(w.ioc, session(w, std::move(sock), std::move(remote)), log_exception);
    }
  }

  // Over the connection cap (in all or from one address): a short 503 and close, without
  // reading the request.
  asio::awaitable<void> reject(tcp::socket sock) {
    std::string response = overloaded_response(new_request_id());
    beast::tcp_stream stream(std::move(sock));
    stream.expires_after(std::chrono::seconds(2));
    co_await asio::async_write(stream, asio::buffer(response), use_nothrow);
    boost::system::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  asio::awaitable<bool> write_response(Worker& w, beast::tcp_stream& stream, Response& resp,
                                       unsigned version, bool keep_alive, bool head,
                                       const std::string& request_id) {
    bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(resp.status), version};
    res.set(bhttp::field::server, "creatord");
    res.set(bhttp::field::date, w.http_date());
    if (!resp.content_type.empty()) res.set(bhttp::field::content_type, resp.content_type);
    if (!request_id.empty()) res.set("X-Request-Id", request_id);
    for (auto& [k, v] : resp.headers) res.set(k, v);
    res.keep_alive(keep_alive);
    if (head) {
      res.content_length(resp.body.size());  // what GET would send; no body follows
    } else if (resp.status == 204 || resp.status == 304) {
      // no body and no length
    } else {
      res.body() = std::move(resp.body);
      res.prepare_payload();
    }
    co_return co_await write_paced(stream, res);
  }

  // Sends a response piece by piece: a client that takes no bytes for --write-timeout, or whose
  // average rate falls below --min-send-rate once that long has passed, is cut off. A large
  // image to a slow but steady client goes through; a stalled one does not hold the connection.
  // "Takes" is seen as the kernel accepting more of the answer, which happens once the client
  // has drained part of the send buffer (up to a few MB on Linux): the timeout must allow that.
  asio::awaitable<bool> write_paced(beast::tcp_stream& stream, bhttp::response<bhttp::string_body>& res) {
    bhttp::response_serializer<bhttp::string_body> sr{res};
    auto started = std::chrono::steady_clock::now();
    uint64_t sent = 0;
    while (!sr.is_done()) {
      stream.expires_after(opts.write_timeout);
      auto result = co_await bhttp::async_write_some(stream, sr, use_nothrow);
      auto ec = std::move(std::get<0>(result));
      if (ec) co_return false;
      sent += std::get<1>(result);
      auto elapsed = std::chrono::steady_clock::now() - started;
      if (opts.min_send_rate > 0 && elapsed > opts.write_timeout && !sr.is_done() &&
          static_cast<double>(sent) < opts.min_send_rate * std::chrono::duration<double>(elapsed).count())
        co_return false;  // too slow on average: the connection closes
    }
    co_return true;
  }

  // An error the server answers itself (limits, timeouts, malformed HTTP); then it closes.
  asio::awaitable<void> write_error(Worker& w, beast::tcp_stream& stream, int status, std::string_view code,
                                    std::string_view message, const std::string& request_id,
                                    std::string_view field = {}) {
    Response r = error_body_response(status, code, message, field);
    co_await write_and_close(w, stream, r, request_id);
  }

  // Answers, then closes without reading what the client may still be sending.
  asio::awaitable<void> write_and_close(Worker& w, beast::tcp_stream& stream, Response& r,
                                        const std::string& request_id) {
    r.close = true;
    if (!co_await write_response(w, stream, r, 11, false, false, request_id)) co_return;
    // Half-close, then discard what the client is still sending for a moment, so that it reads
    // our answer instead of a connection reset.
    boost::system::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream.expires_after(std::chrono::seconds(1));
    std::array<char, 16384> sink;
    for (size_t total = 0; total < (8u << 20);) {
      auto rec_result = co_await stream.async_read_some(asio::buffer(sink), use_nothrow);
      auto rec = std::move(std::get<0>(rec_result));
      auto n = std::move(std::get<1>(rec_result));
      if (rec) break;
      total += n;
    }
  }

  // A request answered: the metrics observer, then the access log line.
  void access_log(const Request& req, int status, size_t bytes, std::chrono::steady_clock::time_point start) {
    observer.request_answered(req.route, req.method, status, std::chrono::steady_clock::now() - start);
    log_line(req, status, bytes, start);
  }

  void log_line(const Request& req, int status, size_t bytes, std::chrono::steady_clock::time_point start) {
    if (!opts.access_log) return;
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    log::access("request", {{"request_id", req.request_id},
                          {"method", req.method_text},
                          {"path", req.path},
                          {"status", status},
                          {"bytes", static_cast<int64_t>(bytes)},
                          {"duration_ms", ms},
                          {"remote", req.remote},
                          {"principal", req.principal.name()}});
  }

  // A request from its headers until the server is done with it.
  struct InFlight {
    explicit InFlight(ServerObserver& o) : observer(o) { observer.request_started(); }
    ~InFlight() { observer.request_ended(); }
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;
    ServerObserver& observer;
  };

  using Parser = bhttp::request_parser<bhttp::string_body>;
  using TimePoint = std::chrono::steady_clock::time_point;

  // One connection, whose address per_address has counted already.
  asio::awaitable<void> session(Worker& w, tcp::socket sock, std::string remote) {
    active.fetch_add(1, std::memory_order_relaxed);
    observer.connection_opened();
    boost::system::error_code ec0;
    sock.set_option(tcp::no_delay(true), ec0);
    Connection conn{beast::tcp_stream(std::move(sock)), {}, std::move(remote)};
    w.conns.push_front(&conn);
    struct Cleanup {
      Impl* impl;
      Worker& w;
      std::list<Connection*>::iterator it;
      const std::string& remote;
      ~Cleanup() {
        w.conns.erase(it);
        impl->per_address.remove(remote);
        impl->active.fetch_sub(1, std::memory_order_relaxed);
        impl->observer.connection_closed();
      }
    } cleanup{this, w, w.conns.begin(), conn.remote};

    // No co_await inside && or a loop condition: GCC 12 mishandles both in coroutines.
    for (bool first = true;; first = false) {
      if (!co_await next_request(conn, first)) break;
      if (!co_await serve_request(w, conn)) break;
    }
    boost::system::error_code ec;
    conn.stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  // Waits for the first byte of the next request. False: close. A new connection gets the
  // header timeout, so a silent one is dropped as soon as one trickling headers would be; the
  // idle timeout is for a keep-alive connection between requests.
  asio::awaitable<bool> next_request(Connection& c, bool first) {
    if (c.buffer.size() == 0) {
      c.idle = true;
      if (draining.load()) co_return false;
      c.stream.expires_after(first ? std::min(opts.header_timeout, opts.idle_timeout) : opts.idle_timeout);
      auto result = co_await c.stream.async_read_some(c.buffer.prepare(4096), use_nothrow);
      if (std::get<0>(result)) co_return false;  // closed, idle timeout, or shutdown
      c.buffer.commit(std::get<1>(result));
    }
    c.idle = false;
    co_return true;
  }

  // One request, from its headers to its response. False: the connection closes.
  asio::awaitable<bool> serve_request(Worker& w, Connection& c) {
    auto start = std::chrono::steady_clock::now();
    Parser parser;
    parser.header_limit(static_cast<std::uint32_t>(opts.header_limit));
    parser.body_limit(boost::none);  // set per route, once admitted
    std::string rid = new_request_id();
    if (!co_await read_header(w, c, parser, rid)) co_return false;
    InFlight in_flight(observer);
    auto& msg = parser.get();
    Request req = request_from(msg, c.remote, rid);
    if (auto problem = check_head(req, msg.version())) {
      co_await write_error(w, c.stream, 400, "bad_request", problem->message, req.request_id, problem->field);
      access_log(req, 400, 0, start);
      co_return false;
    }
    // Route, method and authorization are decided before a byte of the body is read.
    auto admission = app.admit(req);
    req.route = admission.route;
    req.principal = std::move(admission.principal);
    bool body_pending = !parser.is_done();
    if (admission.refusal && body_pending) {
      int status = admission.refusal->status;
      co_await write_and_close(w, c.stream, *admission.refusal, req.request_id);
      access_log(req, status, 0, start);
      co_return false;
    }
    std::optional<BodyReservation> reservation;  // held while the body is in memory
    if (!admission.refusal && body_pending) {
      bool received = co_await receive_body(w, c, req, parser, admission.body_limit, reservation, start);
      if (!received) co_return false;
    }
    req.body = std::move(msg.body());
    bool keep_alive = msg.keep_alive();
    unsigned version = msg.version();
    c.stream.expires_never();  // the handler may take its time; the client's socket is not read
    Response resp;
    if (admission.refusal) {
      resp = std::move(*admission.refusal);
    } else {
      PeerWatch client(c.stream.socket(), draining);
      req.client = &client;
      c.watch = &client;
      resp = co_await run_handler(req);
      c.watch = nullptr;
      req.client = nullptr;
      if (client.gone()) {
        // Nobody to answer: 499, as nginx logs a request its client closed.
        log::info("client went away", {{"request_id", req.request_id}});
        access_log(req, 499, 0, start);
        co_return false;
      }
    }
    // The body is spent: its memory and its share of the budget go back before the answer
    // leaves, so a client that has read the answer finds the budget free.
    std::string().swap(req.body);
    reservation.reset();
    co_return co_await send(w, c, req, resp, version, keep_alive, start);
  }

  // Reads the request line and headers under the header timeout; answers what goes wrong.
  asio::awaitable<bool> read_header(Worker& w, Connection& c, Parser& parser, const std::string& rid) {
    auto read = bhttp::async_read_header(c.stream, c.buffer, parser, asio::deferred);
    auto raced = co_await read_until_deadline(c.stream, std::move(read), opts.header_timeout);
    boost::system::error_code ec = raced.ec;
    bool timed_out = raced.timed_out;
    if (!ec) co_return true;
    if (ec == bhttp::error::header_limit)
      co_await write_error(w, c.stream, 431, "header_too_large", "request headers are too large", rid, "headers");
    else if (timed_out)
      co_await write_error(w, c.stream, 408, "request_timeout", "request headers took too long", rid, "headers");
    else if (ec != bhttp::error::end_of_stream && ec != asio::error::eof && ec != asio::error::connection_reset &&
             ec != asio::error::operation_aborted)
      co_await write_error(w, c.stream, 400, "bad_request", "malformed HTTP request: " + ec.message(), rid,
                           "request");
    co_return false;
  }

  // What is wrong with a request's head that the parser let through, and where (the error's
  // field); nullopt when nothing.
  struct HeadProblem {
    std::string message;
    const char* field;
  };
  static std::optional<HeadProblem> check_head(Request& req, unsigned version) {
    if (auto problem = framing_problem(req, version)) return HeadProblem{*problem, "headers"};
    auto split = split_target(req.target);
    if (!split) {
      req.path = std::string(req.target.substr(0, req.target.find('?')));
      return HeadProblem{split.error().message, "target"};
    }
    req.path = std::move(split->first);
    req.query = split->second;
    return std::nullopt;
  }

  // Reads an admitted request's body within the route's limit and the global body budget.
  asio::awaitable<bool> receive_body(Worker& w, Connection& c, const Request& req, Parser& parser, size_t limit,
                                     std::optional<BodyReservation>& reservation, TimePoint start) {
    auto declared = parser.content_length();
    if (declared && *declared > limit) {
      co_await write_error(w, c.stream, 413, "payload_too_large",
                           fmt::format("request body exceeds the limit of {} bytes", limit), req.request_id, "body");
      access_log(req, 413, 0, start);
      co_return false;
    }
    // A chunked body may grow to the limit: that much is reserved.
    size_t need = declared ? static_cast<size_t>(*declared) : limit;
    if (!body_budget.take(need)) {
      Response busy = error_body_response(503, "overloaded", "too many request bodies in flight, retry later", "body");
      busy.set_header("Retry-After", "1");
      co_await write_and_close(w, c.stream, busy, req.request_id);
      access_log(req, 503, 0, start);
      co_return false;
    }
    reservation.emplace(body_budget, need);
    parser.body_limit(limit);
    auto& msg = parser.get();
    if (beast::iequals(msg[bhttp::field::expect], "100-continue")) {
      bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, msg.version()};
      c.stream.expires_after(opts.write_timeout);
      auto result = co_await bhttp::async_write(c.stream, cont, use_nothrow);
      if (std::get<0>(result)) co_return false;
    }
    co_return co_await read_body(w, c, req, parser, limit);
  }

  asio::awaitable<bool> read_body(Worker& w, Connection& c, const Request& req, Parser& parser, size_t limit) {
    auto read = bhttp::async_read(c.stream, c.buffer, parser, asio::deferred);
    auto raced = co_await read_until_deadline(c.stream, std::move(read), opts.body_timeout);
    boost::system::error_code ec = raced.ec;
    bool timed_out = raced.timed_out;
    if (!ec) co_return true;
    const auto& rid = req.request_id;
    if (ec == bhttp::error::body_limit)
      co_await write_error(w, c.stream, 413, "payload_too_large",
                           fmt::format("request body exceeds the limit of {} bytes", limit), rid, "body");
    else if (timed_out)
      co_await write_error(w, c.stream, 408, "request_timeout", "request body took too long", rid, "body");
    else if (ec != asio::error::eof && ec != bhttp::error::partial_message && ec != asio::error::connection_reset)
      co_await write_error(w, c.stream, 400, "bad_request", "malformed HTTP body: " + ec.message(), rid, "body");
    co_return false;
  }

  asio::awaitable<Response> run_handler(Request& req) {
    Response resp;
    try {
      resp = co_await app.handle(req);
    } catch (const std::exception& e) {
      log::error("handler threw", {{"request_id", req.request_id}, {"error", e.what()}});
      resp = error_body_response(500, "internal", "internal error");
    }
    co_return resp;
  }

  // Sends the answer; true when the connection stays open for the next request.
  asio::awaitable<bool> send(Worker& w, Connection& c, const Request& req, Response& resp, unsigned version,
                             bool keep_alive, TimePoint start) {
    bool head = req.method == Method::head;
    if (resp.stream) {
      // A stream counts as idle for shutdown: cancelling it ends it at once.
      c.idle = true;
      // Its latency is the time to its first byte; the log line tells how long it ran.
      observer.request_answered(req.route, req.method, resp.status, std::chrono::steady_clock::now() - start);
      observer.stream_opened();
      co_await serve_stream(w, c.stream, resp, version, head, req.request_id);
      observer.stream_closed();
      log_line(req, resp.status, 0, start);
      co_return false;
    }
    keep_alive = keep_alive && !resp.close && !draining.load();
    size_t bytes = resp.body.size();
    int status = resp.status;
    bool ok = co_await write_response(w, c.stream, resp, version, keep_alive, head, req.request_id);
    access_log(req, status, bytes, start);
    co_return ok && keep_alive;
  }

  // The status and headers, then (except for HEAD) whatever the stream writes until it ends.
  asio::awaitable<void> serve_stream(Worker& w, beast::tcp_stream& stream, Response& resp, unsigned version,
                                     bool head, const std::string& rid) {
    std::string head_text = fmt::format("HTTP/{}.{} {} {}\r\nServer: creatord\r\nDate: {}\r\nX-Request-Id: {}\r\n",
                                   version / 10, version % 10, resp.status,
                                   std::string_view(bhttp::obsolete_reason(static_cast<bhttp::status>(resp.status))),
                                   w.http_date(), rid);
    if (!resp.content_type.empty()) head_text += "Content-Type: " + resp.content_type + "\r\n";
    for (const auto& [k, v] : resp.headers) head_text += k + ": " + v + "\r\n";
    head_text += "Connection: close\r\n\r\n";
    SocketStreamWriter writer(stream, opts.write_timeout);
    bool written = co_await writer.write(std::move(head_text));
    if (!written || head) co_return;
    // The stream and a reader that notices the client going away run side by side; both have
    // ended when this returns (they use this frame's locals).
    auto ex = stream.get_executor();
    auto run = asio::co_spawn(ex, run_stream(stream, resp, writer, rid), asio::deferred);
    auto watch = asio::co_spawn(ex, watch_peer(stream, writer), asio::deferred);
    auto group = asio::experimental::make_parallel_group(std::move(run), std::move(watch));
    asio::experimental::wait_for_all both;
    co_await group.async_wait(both, asio::use_awaitable);
  }

  static asio::awaitable<void> run_stream(beast::tcp_stream& stream, Response& resp, SocketStreamWriter& writer,
                                          const std::string& rid) {
    try {
      co_await resp.stream(writer);
    } catch (const std::exception& e) {
      log::error("stream failed", {{"request_id", rid}, {"error", e.what()}});
    }
    boost::system::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream.socket().cancel(ec);  // ends watch_peer's read
  }

  // Reads (and drops) until the client goes away or the stream ends; then the writer is closed.
  static asio::awaitable<void> watch_peer(beast::tcp_stream& stream, SocketStreamWriter& writer) {
    std::array<char, 512> sink;
    for (;;) {
      auto r = co_await stream.socket().async_read_some(asio::buffer(sink), use_nothrow);
      if (std::get<0>(r)) break;
    }
    writer.mark_closed();
  }

  // Re-arms after each SIGHUP until shutdown cancels it.
  void wait_for_reload() {
    reload_signals->async_wait([this](const boost::system::error_code& ec, int) {
      if (ec || draining.load()) return;
      log::info("signal received", {{"signal", SIGHUP}, {"action", "reload"}});
      opts.on_reload();
      wait_for_reload();
    });
  }

  void begin_shutdown() {
    if (draining.exchange(true)) return;
    log::info("shutting down", {{"grace_ms", static_cast<int64_t>(opts.shutdown_grace.count())},
                                {"connections", static_cast<int64_t>(active.load())}});
    for (auto& wp : workers) {
      Worker* w = wp.get();
      asio::post(w->ioc, [w] {
        boost::system::error_code ec;
        if (w->acceptor) w->acceptor->close(ec);
        for (Connection* c : w->conns) {
          if (c->idle) c->stream.socket().cancel(ec);
          else if (c->watch) c->watch->shutting_down();
        }
      });
    }
    asio::post(workers.front()->ioc, [this] {
      for (auto& task : background)
        if (!task.done) task.signal.emit(asio::cancellation_type::terminal);
      boost::system::error_code ec;
      if (reload_signals) reload_signals->cancel(ec);
    });
    asio::co_spawn(workers.front()->ioc, drain(), log_exception);
  }

  asio::awaitable<void> drain() {
    auto deadline = std::chrono::steady_clock::now() + opts.shutdown_grace;
    asio::steady_timer t(workers.front()->ioc);
    while ((active.load() > 0 || tasks.load() > 0) && std::chrono::steady_clock::now() < deadline) {
      // Connections that went idle after finishing their request close themselves.
      for (auto& wp : workers) {
        Worker* w = wp.get();
        asio::post(w->ioc, [w] {
          boost::system::error_code ec;
          for (Connection* c : w->conns)
            if (c->idle) c->stream.socket().cancel(ec);
        });
      }
      t.expires_after(std::chrono::milliseconds(20));
      co_await t.async_wait(use_nothrow);
    }
    if (active.load() > 0 || tasks.load() > 0)
      log::warn("grace period over, closing connections", {{"connections", static_cast<int64_t>(active.load())},
                                                           {"tasks", static_cast<int64_t>(tasks.load())}});
    for (auto& w : workers) w->ioc.stop();
  }
};

Server::Server(ServerOptions options, App& app) : impl_(std::make_unique<Impl>(std::move(options), app)) {
  size_t n = impl_->opts.threads ? impl_->opts.threads : std::max(1u, std::thread::hardware_concurrency());
  for (size_t i = 0; i < n; ++i) impl_->workers.push_back(std::make_unique<Worker>());
}

Server::~Server() = default;

Status Server::listen() { return impl_->listen(); }
uint16_t Server::port() const { return impl_->bound_port; }
std::string Server::host() const { return impl_->opts.host; }
size_t Server::threads() const { return impl_->workers.size(); }

void Server::spawn_background(std::function<asio::awaitable<void>()> fn) {
  asio::post(impl_->workers.front()->ioc, [impl = impl_.get(), fn = std::move(fn)]() mutable {
    impl->spawn_task(std::move(fn));
  });
}

void Server::run() {
  auto& first = impl_->workers.front()->ioc;
  impl_->signals.emplace(first, SIGINT, SIGTERM);
  impl_->signals->async_wait([this](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    log::info("signal received", {{"signal", sig}});
    impl_->begin_shutdown();
  });
  if (impl_->opts.on_reload) {
    impl_->reload_signals.emplace(first, SIGHUP);
    impl_->wait_for_reload();
  }
  for (auto& w : impl_->workers) asio::co_spawn(w->ioc, impl_->accept_loop(*w), Impl::log_exception);
  std::vector<std::thread> threads;
  for (size_t i = 1; i < impl_->workers.size(); ++i) {
    threads.emplace_back([w = impl_->workers[i].get(), i] {
      pthread_setname_np(pthread_self(), fmt::format("io-{}", i).c_str());
      w->ioc.run();
    });
  }
  first.run();
  for (auto& t : threads) t.join();
  boost::system::error_code ec;
  impl_->signals->cancel(ec);
  if (impl_->reload_signals) impl_->reload_signals->cancel(ec);
}

void Server::shutdown() { impl_->begin_shutdown(); }

}  // namespace creatord::http
