// PostgreSQL with libpq in non-blocking mode: the connection's socket is watched by the event
// loop, so waiting for the server holds no thread. A connection carries no session state, so
// everything works through a transaction-mode pooler (PgBouncer, Supavisor port 6543), where
// consecutive transactions of one client connection run on different server connections. There
// statements are sent unnamed (PQsendQueryParams); directly and through a session pooler, where a
// client keeps its server session, each is prepared once per connection (s0, s1...: names that
// live and die with that session).
// A bounded pool hands connections out with a deadline (overload becomes 503, not a pile-up)
// and replaces connections that broke (a server restart), so callers see clean errors while the
// server is down and success once it is back.
#pragma once
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include "core/result.hpp"
#include "metrics/histogram.hpp"

struct pg_conn;
struct pg_result;

namespace creatord::pg {

// A query's rows; values as text (the text protocol), NULL as nullopt.
class Rows {
 public:
  Rows() = default;
  explicit Rows(pg_result* r);
  Rows(Rows&&) noexcept = default;
  Rows& operator=(Rows&&) noexcept = default;
  int size() const;
  bool is_null(int row, int col) const;
  std::string_view text(int row, int col) const;
  int64_t int64(int row, int col) const;
  double real(int row, int col) const;
  int64_t affected() const;  // rows changed by INSERT/UPDATE/DELETE

 private:
  struct Free {
    void operator()(pg_result* r) const;
  };
  std::unique_ptr<pg_result, Free> r_;
};

using Param = std::optional<std::string>;

class Connection {
 public:
  // Connects without blocking the caller's thread; the socket lives on `ex`.
  // statement_timeout bounds every statement's round trip (0: none); one that overruns breaks
  // the connection (its state is unknown) and fails as `unavailable`.
  static boost::asio::awaitable<Result<std::unique_ptr<Connection>>> connect(
      std::string conninfo, boost::asio::any_io_executor ex, std::chrono::milliseconds timeout,
      std::chrono::milliseconds statement_timeout = std::chrono::milliseconds(0));
  ~Connection();
  Connection(const Connection&) = delete;

  // How a statement is planned: `reuse` prepares it on first use when named statements are on
  // (PostgreSQL may then settle on a generic plan); `per_call` always sends the unnamed
  // statement, planned for the values given: for a statement whose best plan depends on them
  // (a search pattern that a trigram index answers, or that a scan answers sooner).
  enum class Plan { reuse, per_call };
  // One statement with parameters ($1, $2...): prepared on first use when named statements are on,
  // else the unnamed statement, which leaves nothing on a shared server connection.
  boost::asio::awaitable<Result<Rows>> query(std::string sql, std::vector<Param> params = {}, Plan plan = Plan::reuse);
  // Statements without parameters, possibly several separated by ';' (migrations, BEGIN...).
  boost::asio::awaitable<Result<Rows>> exec(std::string sql);
  void use_named_statements(bool on) { named_statements_ = on; }
  // False once the connection broke; the pool then drops it.
  bool healthy() const;
  // Marks the connection broken (its state is unknown, e.g. a failed ROLLBACK): not reused.
  void discard() { broken_ = true; }
  // For a connection that ran LISTEN: waits for notifications (channel, payload) up to timeout.
  boost::asio::awaitable<Result<std::vector<std::pair<std::string, std::string>>>> notifications(
      std::chrono::milliseconds timeout);

 private:
  Connection(pg_conn* c, boost::asio::any_io_executor ex);
  boost::asio::awaitable<Result<Rows>> finish_send();
  boost::asio::awaitable<Result<Rows>> read_results();
  boost::asio::awaitable<Result<Rows>> query_named(const std::string& sql, const std::vector<const char*>& values);
  boost::asio::awaitable<bool> wait(bool for_write);

  pg_conn* conn_;
  boost::asio::posix::stream_descriptor socket_;
  std::chrono::milliseconds statement_timeout_{0};
  bool named_statements_ = false;
  std::unordered_map<std::string, std::string> prepared_;  // sql -> statement name
  bool broken_ = false;
  // wait() gives up at deadline_ (max: never) and then sets timed_out_.
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
  bool timed_out_ = false;
};

// Maps a failed statement's SQLSTATE to the store's errors (unique violation -> conflict,
// connection trouble -> unavailable...).
Error error_from(pg_result* r, pg_conn* c);

class Pool {
 public:
  struct Options {
    std::string conninfo;
    size_t max_connections = 10;
    std::chrono::milliseconds acquire_timeout{5000};
    std::chrono::milliseconds connect_timeout{5000};
    std::chrono::milliseconds statement_timeout{30000};  // per statement round trip; 0: none
    bool named_statements = false;  // never through a transaction-mode pooler
  };
  // What /readyz shows: connections open (idle + leased + connecting), leased, callers waiting,
  // and since start how many callers had to wait and how many gave up at the deadline.
  struct Stats {
    size_t max = 0, open = 0, in_use = 0, waiting = 0;
    uint64_t waited = 0, timed_out = 0;
    metrics::HistogramSnapshot wait;  // acquire(): from the call to a connection (or the deadline)
    metrics::HistogramSnapshot hold;  // a lease: from acquire() returning to its release
  };
  // Connections' sockets live on `ex` (run it on some thread for the pool's lifetime).
  Pool(Options options, boost::asio::any_io_executor ex);
  ~Pool();

  class Lease {
   public:
    Lease(Pool* pool, std::unique_ptr<Connection> c)
        : pool_(pool), c_(std::move(c)), since_(std::chrono::steady_clock::now()) {}
    Lease(Lease&&) noexcept = default;
    Lease& operator=(Lease&&) noexcept = default;
    ~Lease();
    Connection* operator->() { return c_.get(); }
    Connection& operator*() { return *c_; }

   private:
    Pool* pool_ = nullptr;
    std::unique_ptr<Connection> c_;
    std::chrono::steady_clock::time_point since_;
  };

  // A connection within acquire_timeout, else `unavailable`.
  boost::asio::awaitable<Result<Lease>> acquire();
  size_t idle() const;
  Stats stats() const;

 private:
  friend class Lease;
  struct Waiter;
  void release(std::unique_ptr<Connection> c);

  Options options_;
  boost::asio::any_io_executor ex_;
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Connection>> idle_;
  size_t open_ = 0;  // idle + leased + connecting
  std::deque<std::shared_ptr<Waiter>> waiters_;
  uint64_t waited_ = 0, timed_out_ = 0;
  metrics::Histogram wait_{metrics::latency_bounds()};
  metrics::Histogram hold_{metrics::latency_bounds()};
};

}  // namespace creatord::pg
