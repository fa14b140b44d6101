// PostgreSQL with libpq in non-blocking mode: the connection's socket is watched by the event
// loop, so waiting for the server holds no thread. Statements are prepared once per connection.
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
  static boost::asio::awaitable<Result<std::unique_ptr<Connection>>> connect(std::string conninfo,
                                                                              boost::asio::any_io_executor ex,
                                                                              std::chrono::milliseconds timeout);
  ~Connection();
  Connection(const Connection&) = delete;

  // One statement with parameters ($1, $2...), prepared on first use on this connection.
  boost::asio::awaitable<Result<Rows>> query(std::string sql, std::vector<Param> params = {});
  // Statements without parameters, possibly several separated by ';' (migrations, BEGIN...).
  boost::asio::awaitable<Result<Rows>> exec(std::string sql);
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
  boost::asio::awaitable<bool> wait(bool for_write);

  pg_conn* conn_;
  boost::asio::posix::stream_descriptor socket_;
  std::unordered_map<std::string, std::string> prepared_;  // sql -> statement name
  bool broken_ = false;
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
    std::string init_sql;  // run on every new connection (e.g. SET search_path)
  };
  // Connections' sockets live on `ex` (run it on some thread for the pool's lifetime).
  Pool(Options options, boost::asio::any_io_executor ex);
  ~Pool();

  class Lease {
   public:
    Lease(Pool* pool, std::unique_ptr<Connection> c) : pool_(pool), c_(std::move(c)) {}
    Lease(Lease&&) noexcept = default;
    Lease& operator=(Lease&&) noexcept = default;
    ~Lease();
    Connection* operator->() { return c_.get(); }
    Connection& operator*() { return *c_; }

   private:
    Pool* pool_ = nullptr;
    std::unique_ptr<Connection> c_;
  };

  // A connection within acquire_timeout, else `unavailable`.
  boost::asio::awaitable<Result<Lease>> acquire();
  size_t idle() const;

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
};

}  // namespace creatord::pg
