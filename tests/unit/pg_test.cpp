// The PostgreSQL layer against a real server (scripts/test-postgres.sh; `make test` starts it and
// sets CREATORD_TEST_POSTGRES_URL). Each test gets a fresh database.
#include "store/pg/pg.hpp"

#include <libpq-fe.h>
#include <unistd.h>

#include <future>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>

#include "store/pg/pg_migrations.hpp"
#include "store/pg/pg_probe.hpp"

using namespace creatord;
namespace asio = boost::asio;

namespace {

std::string admin_url() {
  const char* u = std::getenv("CREATORD_TEST_POSTGRES_URL");
  return u ? u : "";
}

void admin_exec(const std::string& sql) {
  PGconn* c = PQconnectdb(admin_url().c_str());
  PGresult* r = PQexec(c, sql.c_str());
  PQclear(r);
  PQfinish(c);
}

class PgTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (admin_url().empty()) GTEST_SKIP() << "CREATORD_TEST_POSTGRES_URL is not set (make test sets it)";
    db_ = "creatord_t_" + std::to_string(::getpid());
    admin_exec("DROP DATABASE IF EXISTS " + db_);
    admin_exec("CREATE DATABASE " + db_);
    url_ = admin_url().substr(0, admin_url().rfind('/')) + "/" + db_;
    thread_ = std::thread([this] { ioc_.run(); });
  }
  void TearDown() override {
    if (admin_url().empty()) return;
    pool_.reset();
    guard_.reset();
    ioc_.stop();
    if (thread_.joinable()) thread_.join();
    admin_exec("DROP DATABASE IF EXISTS " + db_ + " WITH (FORCE)");
  }
  template <class T>
  T run(asio::awaitable<T> aw) {
    return asio::co_spawn(ioc_, std::move(aw), asio::use_future).get();
  }
  pg::Pool& pool(size_t max = 4, std::chrono::milliseconds acquire = std::chrono::milliseconds(2000)) {
    pool_ = std::make_unique<pg::Pool>(pg::Pool::Options{url_, max, acquire}, ioc_.get_executor());
    return *pool_;
  }
  asio::awaitable<Result<pg::Rows>> query(pg::Pool& p, std::string sql, std::vector<pg::Param> params = {}) {
    auto lease = co_await p.acquire();
    if (!lease) co_return lease.take_error();
    co_return co_await (*lease.value()).query(std::move(sql), std::move(params));
  }

  asio::io_context ioc_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard_{asio::make_work_guard(ioc_)};
  std::thread thread_;
  std::string db_, url_;
  std::unique_ptr<pg::Pool> pool_;
};

}  // namespace

TEST_F(PgTest, QueriesWithParametersAndTypes) {
  auto& p = pool();
  auto r = run(query(p, "SELECT $1::bigint + 1, $2::text, NULL::text, 2.5::float8", {"41", "héllo 'quoted'"}));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->int64(0, 0), 42);
  EXPECT_EQ(r->text(0, 1), "héllo 'quoted'");
  EXPECT_TRUE(r->is_null(0, 2));
  EXPECT_EQ(r->real(0, 3), 2.5);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(run(query(p, "SELECT $1::int", {std::to_string(i)})));
  EXPECT_EQ(p.idle(), 1u);  // one connection served them all
}

// Through a transaction-mode pooler the next client may get this server connection: a named
// statement left on it would collide ("prepared statement \"s0\" already exists").
TEST_F(PgTest, StatementsLeaveNothingNamedOnTheServerConnection) {
  auto& p = pool(1);  // named_statements off: what a transaction-mode pooler gets
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(run(query(p, "SELECT $1::int", {std::to_string(i)})));
  auto left = run(query(p, "SELECT count(*) FROM pg_prepared_statements"));
  ASSERT_TRUE(left) << left.error().message;
  EXPECT_EQ(left->int64(0, 0), 0);
  pg::Pool::Options named{url_, 1, std::chrono::milliseconds(2000)};
  named.named_statements = true;  // directly or through a session pooler: prepared once
  pool_ = std::make_unique<pg::Pool>(named, ioc_.get_executor());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(run(query(*pool_, "SELECT $1::int", {std::to_string(i)})));
  EXPECT_EQ(run(query(*pool_, "SELECT count(*) FROM pg_prepared_statements"))->int64(0, 0), 2);  // and this one
}

TEST_F(PgTest, AStatementPastItsDeadlineIsUnavailableAndItsConnectionReplaced) {
  pg::Pool::Options o{url_, 1, std::chrono::milliseconds(2000)};
  o.statement_timeout = std::chrono::milliseconds(200);
  pool_ = std::make_unique<pg::Pool>(o, ioc_.get_executor());
  auto t0 = std::chrono::steady_clock::now();
  auto slow = run(query(*pool_, "SELECT pg_sleep(5)"));
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(slow);
  EXPECT_EQ(slow.error().code, ErrorCode::unavailable);
  EXPECT_LT(took, std::chrono::milliseconds(1500));
  EXPECT_EQ(pool_->stats().open, 0u);  // the broken connection was dropped
  auto next = run(query(*pool_, "SELECT 1"));
  EXPECT_TRUE(next) << next.error().message;
}

TEST_F(PgTest, ErrorsBecomeStoreErrors) {
  auto& p = pool();
  ASSERT_TRUE(run(query(p, "CREATE TABLE t (k TEXT PRIMARY KEY)")));
  ASSERT_TRUE(run(query(p, "INSERT INTO t VALUES ($1)", {"a"})));
  EXPECT_EQ(run(query(p, "INSERT INTO t VALUES ($1)", {"a"})).error().code, ErrorCode::conflict);
  EXPECT_EQ(run(query(p, "SELEC nonsense")).error().code, ErrorCode::internal);
  auto ok = run(query(p, "UPDATE t SET k = $1 WHERE k = $2", {"b", "a"}));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->affected(), 1);
  pg::Pool nowhere(pg::Pool::Options{"postgresql://postgres@127.0.0.1:1/x", 2, std::chrono::milliseconds(500)},
                   ioc_.get_executor());
  EXPECT_EQ(run(query(nowhere, "SELECT 1")).error().code, ErrorCode::unavailable);
}

TEST_F(PgTest, PoolIsBoundedWithADeadline) {
  auto& p = pool(2, std::chrono::milliseconds(200));
  auto a = run(p.acquire());
  auto b = run(p.acquire());
  ASSERT_TRUE(a && b);
  auto c = run(p.acquire());  // nothing free within the deadline
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::unavailable);
  auto st = p.stats();
  EXPECT_EQ(st.max, 2u);
  EXPECT_EQ(st.in_use, 2u);
  EXPECT_EQ(st.waited, 1u);
  EXPECT_EQ(st.timed_out, 1u);
  // A waiter gets a connection as soon as one comes back.
  auto waiting = asio::co_spawn(ioc_, p.acquire(), asio::use_future);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  run([&]() -> asio::awaitable<int> {  // release on the pool's thread
    a = Error::make(ErrorCode::internal, "released");
    co_return 0;
  }());
  auto got = waiting.get();
  EXPECT_TRUE(got) << (got ? "" : got.error().message);
}

TEST_F(PgTest, ABrokenConnectionIsReplaced) {
  auto& p = pool(1);
  auto pid = run(query(p, "SELECT pg_backend_pid()"));
  ASSERT_TRUE(pid);
  admin_exec("SELECT pg_terminate_backend(" + std::string(pid->text(0, 0)) + ")");
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto broken = run(query(p, "SELECT 1"));
  ASSERT_FALSE(broken);
  EXPECT_EQ(broken.error().code, ErrorCode::unavailable);
  auto again = run(query(p, "SELECT pg_backend_pid()"));  // a new connection
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_NE(again->text(0, 0), pid->text(0, 0));
}

TEST_F(PgTest, MigrationsRunOnceEvenWhenInstancesStartTogether) {
  auto& p = pool(3);
  std::vector<std::future<Result<int>>> runs;
  for (int i = 0; i < 3; ++i)
    runs.push_back(asio::co_spawn(ioc_, [&]() -> asio::awaitable<Result<int>> {
      auto lease = co_await p.acquire();
      if (!lease) co_return lease.take_error();
      co_return co_await pg::migrate(*lease.value());
    }, asio::use_future));
  for (auto& r : runs) {
    auto v = r.get();
    ASSERT_TRUE(v) << v.error().message;
    EXPECT_EQ(v.value(), pg::latest_schema_version());
  }
  auto count = run(query(p, "SELECT count(*) FROM creatord.schema_migrations"));
  EXPECT_EQ(count->int64(0, 0), pg::latest_schema_version());
  auto tables = run(query(p, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'creatord'"));
  EXPECT_GE(tables->int64(0, 0), 8);
  EXPECT_EQ(pg::migrate_blocking(url_).value(), pg::latest_schema_version());  // idempotent
}

// Directly, each client is one server process; through PgBouncer in session mode too; in
// transaction mode, clients share them.
TEST_F(PgTest, TransactionPoolingIsDetected) {
  auto direct = pg::is_transaction_pooled(url_, std::chrono::seconds(3));
  ASSERT_TRUE(direct) << direct.error().message;
  EXPECT_FALSE(direct.value());
  for (const char* var : {"CREATORD_TEST_PGBOUNCER_SESSION_URL", "CREATORD_TEST_PGBOUNCER_TRANSACTION_URL"}) {
    const char* url = std::getenv(var);
    if (!url) continue;  // scripts/test-pooler.sh (make test) sets them
    auto pooled = pg::is_transaction_pooled(url, std::chrono::seconds(3));
    ASSERT_TRUE(pooled) << var << ": " << pooled.error().message;
    EXPECT_EQ(pooled.value(), std::string(var).find("TRANSACTION") != std::string::npos) << var;
  }
}

// Three instances migrating at once through a transaction-mode pooler with 2 server
// connections: a session advisory lock would be taken on one server connection and be
// re-entered by another client handed the same one; the transaction lock is not.
TEST_F(PgTest, MigrationsThroughATransactionPoolerRunOnce) {
  const char* tx = std::getenv("CREATORD_TEST_PGBOUNCER_TRANSACTION_URL");
  const char* tls_admin = std::getenv("CREATORD_TEST_PG_TLS_URL");
  if (!tx || !tls_admin) GTEST_SKIP() << "needs scripts/test-pooler.sh (make test starts it)";
  std::string db = "creatord_mig_" + std::to_string(::getpid());
  auto on = [&](const char* url, const std::string& sql) {
    PGconn* c = PQconnectdb(url);
    PQclear(PQexec(c, sql.c_str()));
    PQfinish(c);
  };
  on(tls_admin, "DROP DATABASE IF EXISTS " + db + " WITH (FORCE)");
  on(tls_admin, "CREATE DATABASE " + db);
  std::string u(tx);
  std::string url = u.substr(0, u.rfind('/', u.find('?')) + 1) + db + u.substr(u.find('?'));
  std::vector<std::future<Result<int>>> runs;
  for (int i = 0; i < 3; ++i) runs.push_back(std::async(std::launch::async, [&] { return pg::migrate_blocking(url); }));
  for (auto& r : runs) {
    auto v = r.get();
    ASSERT_TRUE(v) << v.error().message;
    EXPECT_EQ(v.value(), pg::latest_schema_version());
  }
  on(tls_admin, "DROP DATABASE IF EXISTS " + db + " WITH (FORCE)");
}

TEST(PgProbe, ConnectionErrorsComeWithTheirFix) {
  EXPECT_NE(pg::fix_for("postgresql://x/db?sslmode=require", "server does not support SSL, but SSL was required")
                .find("does not offer TLS"),
            std::string::npos);
  EXPECT_NE(pg::fix_for("postgresql://db.abc.supabase.co/postgres",
                        "connection to server at \"db.abc.supabase.co\" (2a05::1), port 5432 failed: Network is unreachable")
                .find("session pooler URL"),
            std::string::npos);
  EXPECT_NE(pg::fix_for("host=h sslmode=verify-full", "root certificate file \"/root/.postgresql/root.crt\" does not exist")
                .find("sslrootcert="),
            std::string::npos);
  EXPECT_NE(pg::fix_for("postgresql://h/db", "Connection refused").find("6543"), std::string::npos);
  EXPECT_EQ(pg::fix_for("postgresql://h/db", "syntax error at or near"), "");
  auto e = pg::with_fix("postgresql://h/db", Error::make(ErrorCode::unavailable, "x: Connection refused"));
  EXPECT_NE(e.message.find("; fix: nothing listens"), std::string::npos);
}
