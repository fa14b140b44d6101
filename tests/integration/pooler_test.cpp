// creatord through connection poolers and TLS (issue 17): the connection budget under load,
// what start-up says about a URL, LISTEN through a transaction pooler. Runs in every pass; each
// test skips where it does not apply (see pg_via() and scripts/test-pooler.sh).
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include "harness.hpp"

using namespace harness;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

std::string database_of(const std::string& url) {
  size_t query = url.find('?');
  size_t slash = url.rfind('/', query == std::string::npos ? std::string::npos : query);
  return url.substr(slash + 1, query == std::string::npos ? std::string::npos : query - slash - 1);
}

// Server connections open to the database right now, as the server counts them (parallel
// query workers are not connections).
int server_connections(const std::string& db) {
  PGconn* c = PQconnectdb(pg_admin_url().c_str());
  std::string sql = "SELECT count(*) FROM pg_stat_activity WHERE datname = '" + db + "' AND backend_type = 'client backend' AND pid <> pg_backend_pid()";
  PGresult* r = PQexec(c, sql.c_str());
  int n = PQresultStatus(r) == PGRES_TUPLES_OK ? std::atoi(PQgetvalue(r, 0, 0)) : -1;
  PQclear(r);
  PQfinish(c);
  return n;
}

bool terminal(const json::value& j) { return job_in(j, {"succeeded", "failed", "cancelled"}); }

}  // namespace

// 2 connections (through PgBouncer in transaction mode: 2 server connections) for 50 clients
// sending requests for 3 s while 4 jobs run: each request is served or answers 503 within the acquire deadline
// plus one statement's, the server never sees more than 2 + the listener, every job finishes.
TEST(Pooler, ATwoConnectionBudgetServesEveryRequestOrA503InTimeAndEveryJobFinishes) {
  if (!testing_postgres()) GTEST_SKIP() << "PostgreSQL passes only";
  std::string dir = temp_dir("budget");
  std::string db = database_of(postgres_url_for(dir));
  Server s({.args = {"--database-connections", "2", "--database-acquire-timeout", "1", "--database-statement-timeout",
                     "3", "--queues", "generate=4,default=4,email=2", "--access-log=false"},
            .data_dir = dir});
  auto cid = post_json(s.port(), "/api/creators", R"({"name":"Budget","handle":"budget"})").json().at("id").as_int64();
  std::string gen = "/api/creators/" + std::to_string(cid) + "/generate";
  std::vector<int64_t> jobs;
  for (int i = 0; i < 2; ++i) {
    jobs.push_back(post_json(s.port(), gen, R"({"pipeline":"diagnostic","params":{"sleep_ms":1500}})").json().at("id").as_int64());
    jobs.push_back(post_json(s.port(), gen,
                             R"({"params":{"variants":1,"avatar_size":64,"banner_width":96,"banner_height":32,)"
                             R"("thumb_size":16,"detail":200}})")
                       .json().at("id").as_int64());
  }
  std::atomic<int> ok{0}, unavailable{0}, wrong{0}, most_server_connections{0};
  std::atomic<int64_t> slowest_ms{0};
  std::atomic<bool> load_done{false};
  std::thread watcher([&] {
    while (!load_done) {
      int n = server_connections(db);
      if (n > most_server_connections) most_server_connections = n;
      std::this_thread::sleep_for(20ms);
    }
  });
  // 50 clients, each sending one request after another for 3 s while the jobs run.
  std::vector<std::thread> clients;
  auto until = std::chrono::steady_clock::now() + 3s;
  for (int i = 0; i < 50; ++i) {
    clients.emplace_back([&, i] {
      for (int n = 0; std::chrono::steady_clock::now() < until; ++n) {
        auto t0 = std::chrono::steady_clock::now();
        std::string handle = "c" + std::to_string(i) + "x" + std::to_string(n);
        Response r = n % 3 == 0   ? post_json(s.port(), "/api/creators", R"({"name":"C","handle":")" + handle + R"("})")
                     : n % 3 == 1 ? get(s.port(), "/api/creators?limit=50")
                                  : get(s.port(), "/api/creators/" + std::to_string(cid) + "/images");
        auto took = std::chrono::steady_clock::now() - t0;
        int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(took).count();
        if (ms > slowest_ms) slowest_ms = ms;
        if (r.status == 200 || r.status == 201) ++ok;
        else if (r.status == 503 && r.json().at("error").at("code").as_string() == "unavailable") ++unavailable;
        else ++wrong;
      }
    });
  }
  for (auto& c : clients) c.join();
  for (auto id : jobs) {
    auto j = wait_job(s.port(), id, terminal, 120s);
    EXPECT_EQ(j.at("state").as_string(), "succeeded") << json::serialize(j);
  }
  load_done = true;
  watcher.join();
  std::printf("budget: %d served, %d answered 503, slowest %lld ms, at most %d server connections\n", ok.load(),
              unavailable.load(), static_cast<long long>(slowest_ms.load()), most_server_connections.load());
  EXPECT_EQ(wrong, 0);
  EXPECT_GT(ok, 0);
  EXPECT_LE(slowest_ms, 1000 + 3000 + 2000);  // acquire + one statement + slack
  EXPECT_LE(most_server_connections, 3);  // 2 + the listener
  auto ready = get(s.port(), "/readyz").json();
  EXPECT_EQ(ready.at("database_pool").at("max").as_int64(), 2) << json::serialize(ready);
  EXPECT_LE(ready.at("database_pool").at("open").as_int64(), 2);
}

// Through a transaction-mode pooler LISTEN cannot work: without --database-listen-url creatord
// says so in one line with the fix and polls; with a session-mode URL for it, it listens.
TEST(Pooler, ATransactionPoolerWithoutAListenUrlIsNamedAndPolled) {
  if (pg_via() != "transaction") GTEST_SKIP() << "the transaction-mode pass only";
  std::string dir = temp_dir("txpool");
  Server polled({.args = {"--access-log=false"}, .data_dir = dir});
  EXPECT_NE(polled.output().find("leads to a transaction-mode pooler, where LISTEN does not work"), std::string::npos)
      << polled.output();
  EXPECT_NE(polled.output().find("fix: set --database-listen-url"), std::string::npos);
  EXPECT_EQ(get(polled.port(), "/readyz").json().at("database_pool").at("notifications").as_string(), "polling");
  polled.stop();
  std::string url = postgres_url_for(dir);
  std::string session = std::getenv("CREATORD_TEST_PGBOUNCER_SESSION_URL");
  std::string listen_url = session.substr(0, session.rfind('/', session.find('?')) + 1) + database_of(url) +
                           session.substr(session.find('?'));
  Server listening({.args = {"--access-log=false", "--database-listen-url", listen_url}, .data_dir = dir});
  EXPECT_EQ(listening.output().find("LISTEN does not work"), std::string::npos) << listening.output();
  std::string state;
  for (int i = 0; i < 100 && state != "listen"; ++i) {
    state = std::string(get(listening.port(), "/readyz").json().at("database_pool").at("notifications").as_string());
    if (state != "listen") std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(state, "listen");
}

// A URL that asks for TLS from a server that offers none: creatord does not start, and says why
// and what to change in one line.
TEST(Pooler, TlsRequiredButNotOfferedIsOneLineWithTheFix) {
  const char* plain = std::getenv("CREATORD_TEST_POSTGRES_URL");
  if (!plain || testing_postgres()) GTEST_SKIP() << "needs the (plain) test cluster; runs in the main pass";
  Server s({.args = {"--database-url", std::string(plain) + "?sslmode=require"}, .expect_listening = false});
  EXPECT_NE(s.wait_exit(30s), 0);
  EXPECT_NE(s.output().find("does not offer TLS but the URL requires it"), std::string::npos) << s.output();
}

// verify-full: the certificate made for the test cluster is accepted with its CA (the whole
// pgtls. pass runs so) and refused with another one, with the fix named.
TEST(Pooler, VerifyFullRefusesACertificateFromAnotherCa) {
  if (pg_via() != "tls") GTEST_SKIP() << "the TLS pass only";
  std::string dir = temp_dir("otherca");
  std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=other -keyout " + dir +
                    "/ca.key -out " + dir + "/ca.crt 2>/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::string url = postgres_url_for(temp_dir("tlsdata"));
  std::string other = url.substr(0, url.find("sslrootcert=")) + "sslrootcert=" + dir + "/ca.crt";
  Server s({.args = {"--database-url", other}, .expect_listening = false});
  EXPECT_NE(s.wait_exit(30s), 0);
  EXPECT_NE(s.output().find("certificate verify failed"), std::string::npos) << s.output();
  EXPECT_NE(s.output().find("fix: the server's certificate is not trusted"), std::string::npos) << s.output();
  // sslmode=require: encrypted, the certificate not checked (Supabase's minimum).
  std::string require = url.substr(0, url.find('?')) + "?sslmode=require";
  Server ok({.args = {"--database-url", require}});
  EXPECT_EQ(post_json(ok.port(), "/api/creators", R"({"name":"T","handle":"tls"})").status, 201);
  std::filesystem::remove_all(dir);
}
