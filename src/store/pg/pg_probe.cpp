#include "store/pg/pg_probe.hpp"

#include <array>
#include <optional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <fmt/format.h>

#include "store/pg/pg.hpp"

namespace creatord::pg {

namespace asio = boost::asio;

namespace {

bool contains(std::string_view s, std::string_view what) { return s.find(what) != std::string_view::npos; }

asio::awaitable<Result<std::string>> backend_pid(Connection& c) {
  auto r = co_await c.exec("SELECT pg_backend_pid()");
  if (!r) co_return r.take_error();
  co_return std::string(r->text(0, 0));
}

// A's statements, with B's in between: directly or through a session pooler, A stays on one
// server process and B is on another. A transaction pooler hands the server connection A just
// released to B (PgBouncer takes the most recently used one), or moves A.
asio::awaitable<Result<bool>> probe(std::string conninfo, std::chrono::milliseconds timeout) {
  auto ex = co_await asio::this_coro::executor;
  auto a = co_await Connection::connect(conninfo, ex, timeout, timeout);
  if (!a) co_return a.take_error();
  auto b = co_await Connection::connect(conninfo, ex, timeout, timeout);
  if (!b) co_return b.take_error();
  for (int round = 0; round < 3; ++round) {
    auto a1 = co_await backend_pid(*a.value());
    if (!a1) co_return a1.take_error();
    // B waiting past the deadline: a session pooler with every server connection taken.
    auto pb = co_await backend_pid(*b.value());
    if (!pb) co_return false;
    auto a2 = co_await backend_pid(*a.value());
    if (!a2) co_return a2.take_error();
    if (a1.value() != a2.value() || pb.value() == a1.value() || pb.value() == a2.value()) co_return true;
  }
  co_return false;
}

}  // namespace

Result<bool> is_transaction_pooled(const std::string& conninfo, std::chrono::milliseconds timeout) {
  asio::io_context ioc;
  std::optional<Result<bool>> out;
  asio::co_spawn(
      ioc, [&]() -> asio::awaitable<void> { out.emplace(co_await probe(conninfo, timeout)); },
      [&](std::exception_ptr e) {
        if (e && !out) out.emplace(Error::make(ErrorCode::internal, "the database probe crashed"));
      });
  ioc.run();
  return std::move(*out);
}

std::string fix_for(std::string_view conninfo, std::string_view error) {
  bool supabase = contains(conninfo, "supabase.co") || contains(conninfo, "supabase.com");
  if (contains(error, "server does not support SSL"))
    return "the server does not offer TLS but the URL requires it (sslmode=require or stricter): turn on ssl in "
           "the server (or PgBouncer's client_tls_sslmode), or connect to a server that offers it";
  if (contains(error, "no encryption") || contains(error, "SSL off"))
    return "the server accepts only TLS connections: add sslmode=require (or verify-full with sslrootcert=CA file) "
           "to the URL";
  if (contains(error, "root certificate file"))
    return "sslmode=verify-ca/verify-full needs the CA: add sslrootcert=/path/to/ca.crt to the URL (Supabase: "
           "download it under Project Settings → Database → SSL)";
  if (contains(error, "certificate verify failed") || contains(error, "does not match host name") ||
      contains(error, "server certificate for"))
    return "the server's certificate is not trusted for this host: check sslrootcert= (the CA that signed it) and "
           "that the URL's host is the name in the certificate";
  if (contains(error, "Network is unreachable") || contains(error, "Cannot assign requested address") ||
      (supabase && contains(error, "could not translate host name")))
    return supabase ? "this machine cannot reach the direct Supabase host (IPv6 only): use the Supavisor session "
                      "pooler URL (aws-0-REGION.pooler.supabase.com:5432, user postgres.PROJECT_REF) instead"
                    : "this machine has no route to that address (an IPv6-only host without IPv6 here?): use an "
                      "address it can reach, e.g. the pooler's IPv4 host name";
  if (contains(error, "could not translate host name"))
    return "the host name does not resolve: check the host in the URL";
  if (contains(error, "Connection refused"))
    return "nothing listens at that host and port: check the port (Supabase: 5432 direct and session pooler, 6543 "
           "transaction pooler)";
  if (contains(error, "password authentication failed") || contains(error, "authentication failed"))
    return supabase ? "wrong user or password: through the Supabase pooler the user is ROLE.PROJECT_REF "
                      "(e.g. postgres.abcdefghijklmnop)"
                    : "wrong user or password in the URL";
  if (contains(error, "timed out") || contains(error, "timeout expired") || contains(error, "no answer within"))
    return "no answer in time: a firewall dropping packets, a wrong host, or a pooler with no free server "
           "connection (raise its pool size or lower --database-connections)";
  return "";
}

Error with_fix(std::string_view conninfo, Error e) {
  auto fix = fix_for(conninfo, e.message);
  if (!fix.empty()) e.message = fmt::format("{}; fix: {}", e.message, fix);
  return e;
}

}  // namespace creatord::pg
