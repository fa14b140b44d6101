#include "store/pg/pg.hpp"

#include <libpq-fe.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

namespace creatord::pg {

namespace asio = boost::asio;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

// ---- rows ----------------------------------------------------------------------------------

Rows::Rows(pg_result* r) : r_(r) {}
void Rows::Free::operator()(pg_result* r) const { PQclear(r); }
int Rows::size() const { return r_ ? PQntuples(r_.get()) : 0; }
bool Rows::is_null(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }
std::string_view Rows::text(int row, int col) const {
  return {PQgetvalue(r_.get(), row, col), static_cast<size_t>(PQgetlength(r_.get(), row, col))};
}
int64_t Rows::int64(int row, int col) const { return std::strtoll(PQgetvalue(r_.get(), row, col), nullptr, 10); }
double Rows::real(int row, int col) const { return std::strtod(PQgetvalue(r_.get(), row, col), nullptr); }
int64_t Rows::affected() const {
  const char* n = r_ ? PQcmdTuples(r_.get()) : "";
  return n && *n ? std::strtoll(n, nullptr, 10) : 0;
}

Error error_from(pg_result* r, pg_conn* c) {
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  std::string msg = r ? PQresultErrorMessage(r) : (c ? PQerrorMessage(c) : "no connection");
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  std::string code = state ? state : "";
  if (code == "23505") return Error::make(ErrorCode::conflict, msg);
  if (code == "23503") return Error::make(ErrorCode::not_found, msg);
  if (code.empty() || code.rfind("08", 0) == 0 || code.rfind("57P", 0) == 0 || code == "53300" || code == "40001" ||
      code == "40P01")
    return Error::make(ErrorCode::unavailable, "database unavailable: " + msg);
  return Error::make(ErrorCode::internal, fmt::format("database error {}: {}", code, msg));
}

// ---- connection ------------------------------------------------------------------------------

Connection::Connection(pg_conn* c, asio::any_io_executor ex) : conn_(c), socket_(ex) {}

Connection::~Connection() {
  // libpq owns the socket: take it back from asio before PQfinish closes it.
  if (socket_.is_open()) socket_.release();
  PQfinish(conn_);
}

bool Connection::healthy() const { return !broken_ && PQstatus(conn_) == CONNECTION_OK; }

asio::awaitable<Result<std::unique_ptr<Connection>>> Connection::connect(std::string conninfo, asio::any_io_executor ex,
                                                                          std::chrono::milliseconds timeout,
                                                                          std::chrono::milliseconds statement_timeout) {
  pg_conn* raw = PQconnectStart(conninfo.c_str());
  if (!raw) co_return Error::make(ErrorCode::unavailable, "database unavailable: out of memory");
  std::unique_ptr<Connection> c(new Connection(raw, ex));
  c->statement_timeout_ = statement_timeout;
  if (PQstatus(raw) == CONNECTION_BAD)
    co_return Error::make(ErrorCode::unavailable, std::string("database unavailable: ") + PQerrorMessage(raw));
  c->deadline_ = std::chrono::steady_clock::now() + timeout;
  int fd = -1;
  PostgresPollingStatusType st = PGRES_POLLING_WRITING;
  while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
    if (PQsocket(raw) != fd) {  // libpq may switch sockets while trying addresses
      if (c->socket_.is_open()) c->socket_.release();
      fd = PQsocket(raw);
      boost::system::error_code ec;
      c->socket_.assign(fd, ec);
      if (ec) break;
    }
    if (!co_await c->wait(st == PGRES_POLLING_WRITING)) break;
    st = PQconnectPoll(raw);
  }
  bool timed_out = c->timed_out_;
  c->deadline_ = std::chrono::steady_clock::time_point::max();
  c->timed_out_ = false;
  if (st != PGRES_POLLING_OK) {
    std::string why = timed_out ? "timed out" : PQerrorMessage(raw);
    while (!why.empty() && why.back() == '\n') why.pop_back();
    co_return Error::make(ErrorCode::unavailable, "database unavailable: " + why);
  }
  if (PQsetnonblocking(raw, 1) != 0) co_return Error::make(ErrorCode::unavailable, "cannot make the connection non-blocking");
  co_return std::move(c);
}

// Waits for the socket, raced against deadline_ when one is set: the loser is cancelled and
// has ended when this returns. (A timer whose handler captured `this` or a frame's locals could
// fire after them, or cancel a later statement's wait.)
asio::awaitable<bool> Connection::wait(bool for_write) {
  auto kind = for_write ? asio::posix::stream_descriptor::wait_write : asio::posix::stream_descriptor::wait_read;
  if (deadline_ == std::chrono::steady_clock::time_point::max()) {
    auto r = co_await socket_.async_wait(kind, nothrow);
    co_return !std::get<0>(r);
  }
  asio::steady_timer timer(socket_.get_executor(), deadline_);
  auto ready = socket_.async_wait(kind, asio::deferred);
  auto expiry = timer.async_wait(asio::deferred);
  auto group = asio::experimental::make_parallel_group(std::move(ready), std::move(expiry));
  asio::experimental::wait_for_one first;
  auto r = co_await group.async_wait(first, asio::use_awaitable);
  if (!std::get<1>(r)) co_return true;  // ready, even when the timer fired as well
  if (std::get<0>(r)[0] == 1) timed_out_ = true;
  co_return false;
}

// After a send: flush what libpq buffered, then read results until the last one, within the
// statement deadline. A statement that overruns it leaves the connection in an unknown state:
// it is marked broken (the pool closes it, which ends the statement on the server).
asio::awaitable<Result<Rows>> Connection::finish_send() {
  if (statement_timeout_.count() <= 0) co_return co_await read_results();
  timed_out_ = false;
  deadline_ = std::chrono::steady_clock::now() + statement_timeout_;
  auto r = co_await read_results();
  deadline_ = std::chrono::steady_clock::time_point::max();
  if (timed_out_) {
    broken_ = true;
    co_return Error::make(ErrorCode::unavailable,
                          fmt::format("database unavailable: no answer within {} ms", statement_timeout_.count()));
  }
  co_return r;
}

asio::awaitable<Result<Rows>> Connection::read_results() {
  for (;;) {
    int f = PQflush(conn_);
    if (f == 0) break;
    if (f < 0 || !co_await wait(true)) {
      broken_ = true;
      co_return error_from(nullptr, conn_);
    }
  }
  Rows last;
  std::optional<Error> failure;
  for (;;) {
    while (PQisBusy(conn_)) {
      if (!co_await wait(false) || !PQconsumeInput(conn_)) {
        broken_ = true;
        co_return error_from(nullptr, conn_);
      }
    }
    pg_result* r = PQgetResult(conn_);
    if (!r) break;
    auto status = PQresultStatus(r);
    if (status == PGRES_FATAL_ERROR) {
      if (!failure) failure = error_from(r, conn_);
      PQclear(r);
    } else {
      last = Rows(r);
    }
  }
  if (PQstatus(conn_) != CONNECTION_OK) broken_ = true;
  if (failure) co_return std::move(*failure);
  co_return std::move(last);
}

asio::awaitable<Result<Rows>> Connection::query(std::string sql, std::vector<Param> params, Plan plan) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  if (named_statements_ && plan == Plan::reuse) co_return co_await query_named(sql, values);
  if (!PQsendQueryParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr, nullptr,
                         0)) {
    broken_ = true;
    co_return error_from(nullptr, conn_);
  }
  co_return co_await finish_send();
}

asio::awaitable<Result<Rows>> Connection::query_named(const std::string& sql, const std::vector<const char*>& values) {
  auto it = prepared_.find(sql);
  if (it == prepared_.end()) {
    std::string name = fmt::format("s{}", prepared_.size());
    if (!PQsendPrepare(conn_, name.c_str(), sql.c_str(), static_cast<int>(values.size()), nullptr)) {
      broken_ = true;
      co_return error_from(nullptr, conn_);
    }
    auto prepared = co_await finish_send();
    if (!prepared) co_return prepared.take_error();
    it = prepared_.emplace(sql, std::move(name)).first;
  }
  if (!PQsendQueryPrepared(conn_, it->second.c_str(), static_cast<int>(values.size()), values.data(), nullptr, nullptr, 0)) {
    broken_ = true;
    co_return error_from(nullptr, conn_);
  }
  co_return co_await finish_send();
}

asio::awaitable<Result<Rows>> Connection::exec(std::string sql) {
  if (!PQsendQuery(conn_, sql.c_str())) {
    broken_ = true;
    co_return error_from(nullptr, conn_);
  }
  co_return co_await finish_send();
}

asio::awaitable<Result<std::vector<std::pair<std::string, std::string>>>> Connection::notifications(
    std::chrono::milliseconds timeout) {
  std::vector<std::pair<std::string, std::string>> out;
  auto drain = [&] {
    while (PGnotify* n = PQnotifies(conn_)) {
      out.emplace_back(n->relname, n->extra ? n->extra : "");
      PQfreemem(n);
    }
  };
  drain();
  if (!out.empty()) co_return out;
  deadline_ = std::chrono::steady_clock::now() + timeout;
  bool readable = co_await wait(false);
  deadline_ = std::chrono::steady_clock::time_point::max();
  timed_out_ = false;  // no notification within timeout is no error
  if (readable && !PQconsumeInput(conn_)) {
    broken_ = true;
    co_return error_from(nullptr, conn_);
  }
  drain();
  co_return out;
}

// ---- pool ------------------------------------------------------------------------------------

struct Pool::Waiter {
  explicit Waiter(asio::any_io_executor ex) : timer(ex) {}
  asio::steady_timer timer;
  std::unique_ptr<Connection> granted;  // set under the pool's mutex
  bool done = false;
};

Pool::Pool(Options options, asio::any_io_executor ex) : options_(std::move(options)), ex_(std::move(ex)) {}
Pool::~Pool() = default;

Pool::Lease::~Lease() {
  if (!pool_ || !c_) return;
  pool_->hold_.observe(std::chrono::steady_clock::now() - since_);
  pool_->release(std::move(c_));
}

size_t Pool::idle() const {
  std::lock_guard lock(mutex_);
  return idle_.size();
}

Pool::Stats Pool::stats() const {
  std::lock_guard lock(mutex_);
  Stats s;
  s.max = options_.max_connections;
  s.open = open_;
  s.in_use = open_ - idle_.size();
  for (const auto& w : waiters_) s.waiting += w->done ? 0 : 1;
  s.waited = waited_;
  s.timed_out = timed_out_;
  s.wait = wait_.snapshot();
  s.hold = hold_.snapshot();
  return s;
}

void Pool::release(std::unique_ptr<Connection> c) {
  std::shared_ptr<Waiter> w;
  {
    std::lock_guard lock(mutex_);
    if (!c->healthy()) {
      --open_;  // dropped; the next acquire connects anew
      c.reset();
    }
    while (!waiters_.empty() && !w) {
      auto next = waiters_.front();
      waiters_.pop_front();
      if (!next->done) w = next;
    }
    if (!w) {
      if (c) idle_.push_back(std::move(c));
      return;
    }
    w->done = true;
    w->granted = std::move(c);  // null: the waiter may open a connection in its place
    if (!w->granted) ++open_;
  }
  asio::post(w->timer.get_executor(), [w] { w->timer.cancel(); });
}

asio::awaitable<Result<Pool::Lease>> Pool::acquire() {
  struct WaitTimer {  // observes the wait however acquire() returns
    metrics::Histogram& h;
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
    ~WaitTimer() { h.observe(std::chrono::steady_clock::now() - start); }
  } timer{wait_};
  auto caller = co_await asio::this_coro::executor;
  std::shared_ptr<Waiter> w;
  {
    std::lock_guard lock(mutex_);
    while (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      if (c->healthy()) co_return Lease(this, std::move(c));
      --open_;
    }
    if (open_ < options_.max_connections) {
      ++open_;
    } else {
      w = std::make_shared<Waiter>(caller);
      waiters_.push_back(w);
      ++waited_;
    }
  }
  if (w) {
    w->timer.expires_after(options_.acquire_timeout);
    co_await w->timer.async_wait(nothrow);
    std::unique_ptr<Connection> granted;
    {
      std::lock_guard lock(mutex_);
      if (!w->done) {
        w->done = true;  // timed out; release() skips it
        ++timed_out_;
        co_return Error::make(ErrorCode::unavailable, "database busy: no connection free within the deadline");
      }
      granted = std::move(w->granted);
    }
    if (granted) co_return Lease(this, std::move(granted));
    // A broken connection was handed back: its slot is ours, connect anew.
  }
  auto c = co_await Connection::connect(options_.conninfo, ex_, options_.connect_timeout, options_.statement_timeout);
  if (c) c.value()->use_named_statements(options_.named_statements);
  if (!c) {
    std::lock_guard lock(mutex_);
    --open_;
    co_return c.take_error();
  }
  co_return Lease(this, std::move(c.value()));
}

}  // namespace creatord::pg
