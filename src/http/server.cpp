#include "http/server.hpp"

#include <csignal>
#include <array>
#include <list>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/detached.hpp>
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

// A connection as the shutdown logic sees it. Lives in the session's frame.
struct ConnState {
  beast::tcp_stream* stream = nullptr;
  bool idle = true;
};

// Member order matters: the io_context is destroyed before the list its sessions erase
// themselves from, and the acceptor before its io_context.
struct Worker {
  std::list<ConnState*> conns;  // touched only on this worker's thread
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

// A deadline for one read that, unlike tcp_stream's own timeout, cancels the read without
// closing the socket, so the server can still answer 408.
class Deadline {
 public:
  Deadline(beast::tcp_stream& stream, std::chrono::milliseconds d) : timer_(stream.get_executor()) {
    stream.expires_never();
    timer_.expires_after(d);
    timer_.async_wait([this, &stream](const boost::system::error_code& ec) {
      if (ec) return;  // cancelled: this object may be gone, touch nothing
      fired_ = true;
      boost::system::error_code ignored;
      stream.socket().cancel(ignored);
    });
  }
  ~Deadline() { timer_.cancel(); }
  bool fired() const { return fired_; }

 private:
  asio::steady_timer timer_;
  bool fired_ = false;
};

// The API's error shape (api/errors.hpp), for the errors the server answers itself. field names
// what was wrong when one part was: "headers", "body", "target".
std::string error_body(std::string_view code, std::string_view message, std::string_view field = {}) {
  std::string b = "{\"error\":{\"code\":";
  log::append_json_string(b, code);
  b += ",\"message\":";
  log::append_json_string(b, message);
  if (!field.empty()) {
    b += ",\"field\":";
    log::append_json_string(b, field);
  }
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

}  // namespace

struct Server::Impl {
  ServerOptions opts;
  App& app;
  std::atomic<size_t> active{0};
  std::atomic<bool> draining{false};
  uint16_t bound_port = 0;
  std::vector<std::unique_ptr<Worker>> workers;  // after what sessions touch when destroyed
  std::optional<asio::signal_set> signals;        // before the io_context it uses

  Impl(ServerOptions o, App& a) : opts(std::move(o)), app(a) {}

  static void log_exception(std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      log::error("coroutine failed", {{"error", ex.what()}});
    }
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
      if (active.load(std::memory_order_relaxed) >= opts.max_connections) {
        asio::co_spawn(w.ioc, reject(std::move(sock)), asio::detached);
        continue;
      }
      asio::co_spawn(w.ioc, session(w, std::move(sock)), log_exception);
    }
  }

  // Over the connection cap: a short 503 and close, without reading the request.
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
    stream.expires_after(opts.write_timeout);
    auto ec_result = co_await bhttp::async_write(stream, res, use_nothrow);
    auto ec = std::move(std::get<0>(ec_result));
    co_return !ec;
  }

  // An error the server answers itself (limits, timeouts, malformed HTTP); then it closes.
  asio::awaitable<void> write_error(Worker& w, beast::tcp_stream& stream, int status, std::string_view code,
                                    std::string_view message, const std::string& request_id,
                                    std::string_view field = {}) {
    Response r;
    r.status = status;
    r.body = error_body(code, message, field);
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

  void access_log(const Request& req, int status, size_t bytes, std::chrono::steady_clock::time_point start) {
    if (!opts.access_log) return;
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    log::info("request", {{"request_id", req.request_id},
                          {"method", method_name(req.method)},
                          {"path", req.path},
                          {"status", status},
                          {"bytes", static_cast<int64_t>(bytes)},
                          {"duration_ms", ms},
                          {"remote", req.remote}});
  }

  asio::awaitable<void> session(Worker& w, tcp::socket sock) {
    active.fetch_add(1, std::memory_order_relaxed);
    boost::system::error_code ec0;
    sock.set_option(tcp::no_delay(true), ec0);
    std::string remote;
    if (auto ep = sock.remote_endpoint(ec0); !ec0) remote = ep.address().to_string();
    beast::tcp_stream stream(std::move(sock));
    beast::flat_buffer buffer;
    ConnState state{&stream, true};
    w.conns.push_front(&state);
    auto self_it = w.conns.begin();
    struct Cleanup {
      Impl* impl;
      Worker& w;
      std::list<ConnState*>::iterator it;
      ~Cleanup() {
        w.conns.erase(it);
        impl->active.fetch_sub(1, std::memory_order_relaxed);
      }
    } cleanup{this, w, self_it};

    for (;;) {
      // Wait for the first byte of the next request under the idle timeout.
      if (buffer.size() == 0) {
        state.idle = true;
        if (draining.load()) break;
        stream.expires_after(opts.idle_timeout);
        auto ec_result = co_await stream.async_read_some(buffer.prepare(4096), use_nothrow);
        auto ec = std::move(std::get<0>(ec_result));
        if (ec) break;  // closed, idle timeout, or shutdown
        buffer.commit(std::get<1>(ec_result));
      }
      state.idle = false;
      auto start = std::chrono::steady_clock::now();

      bhttp::request_parser<bhttp::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(opts.header_limit));
      parser.body_limit(boost::none);  // set per route below
      boost::system::error_code hec;
      bool header_timed_out = false;
      {
        Deadline deadline(stream, opts.header_timeout);
        auto ec_result = co_await bhttp::async_read_header(stream, buffer, parser, use_nothrow);
        auto ec = std::move(std::get<0>(ec_result));
        hec = ec;
        header_timed_out = deadline.fired();
      }
      std::string rid = new_request_id();
      if (hec) {
        if (hec == bhttp::error::header_limit)
          co_await write_error(w, stream, 431, "header_too_large", "request headers are too large", rid, "headers");
        else if (header_timed_out)
          co_await write_error(w, stream, 408, "request_timeout", "request headers took too long", rid, "headers");
        else if (hec != bhttp::error::end_of_stream && hec != asio::error::eof &&
                 hec != asio::error::connection_reset && hec != asio::error::operation_aborted)
          co_await write_error(w, stream, 400, "bad_request", "malformed HTTP request: " + hec.message(), rid,
                            "request");
        break;
      }

      auto& msg = parser.get();
      Request req;
      req.remote = remote;
      req.method = parse_method(msg.method_string());
      req.target = msg.target();
      req.headers.reserve(16);
      for (const auto& f : msg) req.headers.push_back(Header{f.name_string(), f.value()});
      if (auto client_id = req.header("X-Request-Id"); is_acceptable_request_id(client_id))
        rid = std::string(client_id);
      req.request_id = rid;
      auto split = split_target(req.target);
      if (!split) {
        req.path = std::string(req.target.substr(0, req.target.find('?')));
        co_await write_error(w, stream, 400, "bad_request", split.error().message, rid, "target");
        access_log(req, 400, 0, start);
        break;
      }
      req.path = std::move(split->first);
      req.query = split->second;

      // Body: limit by route, refuse early when the declared length is too large.
      size_t limit = app.body_limit(req.method, req.path);
      if (auto cl = parser.content_length(); cl && *cl > limit) {
        co_await write_error(w, stream, 413, "payload_too_large",
                             fmt::format("request body exceeds the limit of {} bytes", limit), rid, "body");
        access_log(req, 413, 0, start);
        break;
      }
      parser.body_limit(limit);
      if (!parser.is_done()) {
        if (beast::iequals(msg[bhttp::field::expect], "100-continue")) {
          bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, msg.version()};
          stream.expires_after(opts.write_timeout);
          auto cec_result = co_await bhttp::async_write(stream, cont, use_nothrow);
          auto cec = std::move(std::get<0>(cec_result));
          if (cec) break;
        }
        boost::system::error_code bec;
        bool body_timed_out = false;
        {
          Deadline deadline(stream, opts.body_timeout);
          auto ec_result = co_await bhttp::async_read(stream, buffer, parser, use_nothrow);
          auto ec = std::move(std::get<0>(ec_result));
          bec = ec;
          body_timed_out = deadline.fired();
        }
        if (bec) {
          if (bec == bhttp::error::body_limit)
            co_await write_error(w, stream, 413, "payload_too_large",
                                 fmt::format("request body exceeds the limit of {} bytes", limit), rid, "body");
          else if (body_timed_out)
            co_await write_error(w, stream, 408, "request_timeout", "request body took too long", rid, "body");
          else if (bec != asio::error::eof && bec != bhttp::error::partial_message &&
                   bec != asio::error::connection_reset)
            co_await write_error(w, stream, 400, "bad_request", "malformed HTTP body: " + bec.message(), rid, "body");
          break;
        }
      }
      req.body = std::move(msg.body());
      bool keep_alive = msg.keep_alive();
      unsigned version = msg.version();
      stream.expires_never();  // the handler may take its time; the client's socket is not read

      Response resp;
      try {
        resp = co_await app.handle(req);
      } catch (const std::exception& e) {
        log::error("handler threw", {{"request_id", rid}, {"error", e.what()}});
        resp = Response{};
        resp.status = 500;
        resp.body = error_body("internal", "internal error");
      }
      if (resp.stream) {
        // A stream counts as idle for shutdown: cancelling it ends it at once.
        state.idle = true;
        co_await serve_stream(w, stream, resp, version, rid);
        access_log(req, resp.status, 0, start);
        break;
      }
      keep_alive = keep_alive && !resp.close && !draining.load();
      size_t bytes = resp.body.size();
      int status = resp.status;
      bool ok = co_await write_response(w, stream, resp, version, keep_alive, req.method == Method::head, rid);
      access_log(req, status, bytes, start);
      if (!ok || !keep_alive) break;
    }
    boost::system::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  asio::awaitable<void> serve_stream(Worker& w, beast::tcp_stream& stream, Response& resp, unsigned version,
                                     const std::string& rid) {
    std::string head = fmt::format("HTTP/{}.{} {} {}\r\nServer: creatord\r\nDate: {}\r\nX-Request-Id: {}\r\n",
                                   version / 10, version % 10, resp.status,
                                   std::string_view(bhttp::obsolete_reason(static_cast<bhttp::status>(resp.status))),
                                   w.http_date(), rid);
    if (!resp.content_type.empty()) head += "Content-Type: " + resp.content_type + "\r\n";
    for (const auto& [k, v] : resp.headers) head += k + ": " + v + "\r\n";
    head += "Connection: close\r\n\r\n";
    SocketStreamWriter writer(stream, opts.write_timeout);
    if (!co_await writer.write(std::move(head))) co_return;
    // Watch for the client going away while the stream runs.
    bool reader_done = false;
    asio::steady_timer reader_wait(stream.get_executor());
    asio::co_spawn(
        stream.get_executor(),
        [&]() -> asio::awaitable<void> {
          std::array<char, 512> sink;
          for (;;) {
            auto r = co_await stream.socket().async_read_some(asio::buffer(sink), use_nothrow);
            if (std::get<0>(r)) break;
          }
          writer.mark_closed();
          reader_done = true;
          reader_wait.cancel();
        },
        asio::detached);
    try {
      co_await resp.stream(writer);
    } catch (const std::exception& e) {
      log::error("stream failed", {{"request_id", rid}, {"error", e.what()}});
    }
    boost::system::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream.socket().cancel(ec);
    while (!reader_done) {
      reader_wait.expires_after(std::chrono::seconds(5));
      co_await reader_wait.async_wait(use_nothrow);
    }
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
        for (ConnState* c : w->conns) {
          if (c->idle) c->stream->socket().cancel(ec);
        }
      });
    }
    asio::co_spawn(workers.front()->ioc, drain(), log_exception);
  }

  asio::awaitable<void> drain() {
    auto deadline = std::chrono::steady_clock::now() + opts.shutdown_grace;
    asio::steady_timer t(workers.front()->ioc);
    while (active.load() > 0 && std::chrono::steady_clock::now() < deadline) {
      // Connections that went idle after finishing their request close themselves.
      for (auto& wp : workers) {
        Worker* w = wp.get();
        asio::post(w->ioc, [w] {
          boost::system::error_code ec;
          for (ConnState* c : w->conns)
            if (c->idle) c->stream->socket().cancel(ec);
        });
      }
      t.expires_after(std::chrono::milliseconds(20));
      co_await t.async_wait(use_nothrow);
    }
    if (active.load() > 0) log::warn("grace period over, closing connections", {{"connections", static_cast<int64_t>(active.load())}});
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
  asio::co_spawn(impl_->workers.front()->ioc, std::move(fn), Impl::log_exception);
}

void Server::run() {
  auto& first = impl_->workers.front()->ioc;
  impl_->signals.emplace(first, SIGINT, SIGTERM);
  impl_->signals->async_wait([this](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    log::info("signal received", {{"signal", sig}});
    impl_->begin_shutdown();
  });
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
}

void Server::shutdown() { impl_->begin_shutdown(); }

}  // namespace creatord::http
