// Internal to the PostgreSQL store: statement helpers and how a call gets a connection or a
// transaction. Included by the store's .cpp files only.
#pragma once
#include <boost/asio/awaitable.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>

#include "queue/driver.hpp"
#include "store/pg/pg_store.hpp"

namespace creatord::pgx {

namespace asio = boost::asio;
using pg::Connection;
using pg::Param;
using pg::Rows;

inline Param P(int64_t v) { return std::to_string(v); }
inline Param P(int v) { return std::to_string(v); }
inline Param P(double v) { return fmt::format("{}", v); }
inline Param P(bool v) { return std::string(v ? "true" : "false"); }
inline Param P(const std::string& v) { return v; }
inline Param P(const char* v) { return std::string(v); }
inline Param P(const std::optional<std::string>& v) { return v; }
inline Param P(const std::optional<int64_t>& v) { return v ? Param(std::to_string(*v)) : std::nullopt; }

// Not a coroutine: the statement text and parameters are built here, so no temporary spans
// the caller's co_await (GCC 12).
template <class... A>
asio::awaitable<Result<Rows>> q(Connection& c, const char* sql, const A&... args) {
  std::vector<Param> params{P(args)...};
  return c.query(std::string(sql), std::move(params));
}
// q() planned for the values given on every call (see Connection::Plan).
template <class... A>
asio::awaitable<Result<Rows>> q_planned(Connection& c, const char* sql, const A&... args) {
  std::vector<Param> params{P(args)...};
  return c.query(std::string(sql), std::move(params), Connection::Plan::per_call);
}
inline asio::awaitable<Result<Rows>> x(Connection& c, const char* sql) { return c.exec(std::string(sql)); }

// A PostgreSQL array literal of text values (NULL for nullopt), elements quoted and escaped.
std::string text_array(const std::vector<std::optional<std::string>>& values);
boost::json::value parse_json_text(std::string_view text);
inline Error not_found(std::string what) { return Error::make(ErrorCode::not_found, std::move(what)); }

// The queue driver's insert (pg_queue.cpp), for transactions that enqueue as part of their own
// work (the outbox).
asio::awaitable<Result<queue::Inserted>> insert_job(Connection& c, const NewJob& n, int64_t now);

}  // namespace creatord::pgx

namespace creatord {

template <class T, class F>
Async<T> PgStore::with_conn(F fn) {
  auto lease = co_await pool_->acquire();
  if (!lease) co_return lease.take_error();
  co_return co_await fn(*lease.value());
}

template <class T, class F>
Async<T> PgStore::in_tx(F fn) {
  auto lease = co_await pool_->acquire();
  if (!lease) co_return lease.take_error();
  pg::Connection& c = *lease.value();
  if (auto b = co_await pgx::x(c, "BEGIN"); !b) co_return b.take_error();
  Result<T> r = co_await fn(c);
  if (r.ok()) {
    if (auto commit = co_await pgx::x(c, "COMMIT"); !commit) co_return commit.take_error();
  } else if (auto rb = co_await pgx::x(c, "ROLLBACK"); !rb) {
    c.discard();  // the connection's state is unknown: do not reuse it
  }
  co_return r;
}

}  // namespace creatord
