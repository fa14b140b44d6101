// Transport behaviour: concurrency, slow clients, limits, keep-alive, shutdown.
#include <poll.h>
#include <signal.h>

#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "../unit/test_images.hpp"
#include "harness.hpp"

using namespace harness;
using namespace std::chrono_literals;

TEST(Server, TwoHundredConcurrentClientsAllGetCorrectAnswers) {
  Server s({.args = {"--max-connections-per-ip", "0"}});  // every client is 127.0.0.1
  auto p = s.port();
  for (int i = 0; i < 20; ++i)
    ASSERT_EQ(post_json(p, "/api/creators", R"({"name":"C)" + std::to_string(i) + R"(","handle":"c)" + std::to_string(i) + "\"}").status, 201);
  std::atomic<int> good{0}, bad{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 200; ++t) {
    clients.emplace_back([&, t] {
      try {
        Conn c(p);
        for (int k = 0; k < 5; ++k) {
          Response r;
          if ((t + k) % 4 == 0) {
            std::string h = "x" + std::to_string(t) + "_" + std::to_string(k);
            r = c.request("POST", "/api/creators", R"({"name":"N","handle":")" + h + "\"}",
                          {{"Content-Type", "application/json"}});
            if (r.status == 201 && r.json().at("handle").as_string() == h) ++good; else ++bad;
          } else {
            r = c.request("GET", "/api/creators?limit=20");
            if (r.status == 200 && r.json().at("items").as_array().size() == 20) ++good; else ++bad;
          }
        }
      } catch (...) {
        ++bad;
      }
    });
  }
  for (auto& c : clients) c.join();
  EXPECT_EQ(good.load(), 1000);
  EXPECT_EQ(bad.load(), 0);
}

TEST(Server, AClientTricklingHeadersDelaysNobodyAndGets408) {
  Server s({.args = {"--header-timeout", "2"}});
  auto p = s.port();
  std::atomic<bool> trickler_done{false};
  Response trickled;
  std::thread trickler([&] {
    Conn c(p);
    std::string req = "GET /api/creators HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    for (char ch : req) {
      pollfd pfd{c.fd(), POLLIN, 0};
      if (::poll(&pfd, 1, 0) > 0) break;  // the server answered: stop sending, read it
      if (!c.send_raw(std::string(1, ch))) break;
      std::this_thread::sleep_for(100ms);
    }
    // The server gives up on us; we read its answer.
    trickled = c.read_response(false, 10s);
    trickler_done = true;
  });
  std::this_thread::sleep_for(300ms);  // the trickle is under way
  int fast_ok = 0;
  for (int i = 0; i < 50; ++i) fast_ok += get(p, "/healthz").status == 200;
  bool fast_finished_first = !trickler_done.load();
  trickler.join();
  EXPECT_EQ(fast_ok, 50);
  EXPECT_TRUE(fast_finished_first);
  EXPECT_EQ(trickled.status, 408);
}

TEST(Server, ASlowUploadDelaysNobody) {
  Server s;
  auto p = s.port();
  auto cr = post_json(p, "/api/creators", R"({"name":"Up","handle":"up"})");
  auto cid = std::to_string(cr.json().at("id").as_int64());
  std::string png = test_images::real_png(100, 100, 200000);
  std::atomic<bool> upload_done{false};
  Response uploaded;
  std::thread uploader([&] {
    Conn c(p);
    std::string head = "POST /api/creators/" + cid + "/images HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                       std::to_string(png.size()) + "\r\n\r\n";
    c.send_raw(head);
    for (size_t off = 0; off < png.size(); off += 20000) {
      c.send_raw(png.substr(off, 20000));
      std::this_thread::sleep_for(100ms);
    }
    uploaded = c.read_response();
    upload_done = true;
  });
  std::this_thread::sleep_for(200ms);
  int ok = 0;
  for (int i = 0; i < 50; ++i) ok += get(p, "/api/creators").status == 200;
  bool others_first = !upload_done.load();
  uploader.join();
  EXPECT_EQ(ok, 50);
  EXPECT_TRUE(others_first);
  EXPECT_EQ(uploaded.status, 201) << uploaded.body;
  EXPECT_EQ(uploaded.json().at("size_bytes").as_int64(), static_cast<int64_t>(png.size()));
}

TEST(Server, ConnectionCapAnswers503) {
  Server s({.args = {"--max-connections", "4"}});
  auto p = s.port();
  std::vector<std::unique_ptr<Conn>> held;
  for (int i = 0; i < 4; ++i) {
    held.push_back(std::make_unique<Conn>(p));
    EXPECT_EQ(held.back()->request("GET", "/healthz").status, 200);
  }
  Conn extra(p);
  auto r = extra.read_response(false, 5s);
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.header("retry-after"), "1");
  held.clear();
  // Capacity comes back once connections close.
  bool ok = false;
  for (int i = 0; i < 100 && !ok; ++i) {
    ok = get(p, "/healthz").status == 200;
    if (!ok) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(ok);
}

TEST(Server, KeepAliveAndPipelining) {
  Server s;
  Conn c(s.port());
  std::string two = build_request("GET", "/healthz", "", {}) + build_request("GET", "/api/creators", "", {});
  c.send_raw(two);
  auto a = c.read_response();
  auto b = c.read_response();
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(b.status, 200);
  EXPECT_TRUE(b.json().at("items").is_array());
  EXPECT_EQ(c.request("GET", "/healthz").status, 200);
}

TEST(Server, IdleKeepAliveConnectionsAreClosed) {
  Server s({.args = {"--idle-timeout", "1"}});
  Conn c(s.port());
  EXPECT_EQ(c.request("GET", "/healthz").status, 200);
  EXPECT_TRUE(c.wait_closed(10s));
}

TEST(Server, MalformedHttpGets400AndOthersAreUnaffected) {
  Server s;
  for (const char* junk : {"NOT HTTP AT ALL\r\n\r\n", "GET / HTTP/9.9\r\n\r\n", "GET /healthz HTTP/1.1\r\nBad Header\r\n\r\n",
                           "POST /api/creators HTTP/1.1\r\nContent-Length: nope\r\n\r\n"}) {
    Conn c(s.port());
    c.send_raw(junk);
    auto r = c.read_response(false, 5s);
    EXPECT_EQ(r.status, 400) << junk;
  }
  Conn bad_target(s.port());
  bad_target.send_raw("GET /api/creators%ZZ HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(bad_target.read_response().status, 400);
  EXPECT_EQ(get(s.port(), "/healthz").status, 200);
}

TEST(Server, ExpectContinueUploads) {
  Server s;
  auto p = s.port();
  auto cid = std::to_string(post_json(p, "/api/creators", R"({"name":"E","handle":"e"})").json().at("id").as_int64());
  std::string png = test_images::real_png(7, 7);
  Conn c(p);
  c.send_raw("POST /api/creators/" + cid + "/images HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: " +
             std::to_string(png.size()) + "\r\n\r\n");
  std::this_thread::sleep_for(100ms);
  c.send_raw(png);
  auto r = c.read_response();  // skips the interim 100
  EXPECT_EQ(r.status, 201) << r.body;
}

TEST(Server, GracefulShutdownFinishesTheRequestInFlight) {
  Server s({.args = {"--shutdown-grace", "10"}});
  auto p = s.port();
  auto cid = std::to_string(post_json(p, "/api/creators", R"({"name":"G","handle":"g"})").json().at("id").as_int64());
  std::string png = test_images::real_png(9, 9, 10000);
  Conn idle(p);  // an idle keep-alive connection must not hold shutdown up
  EXPECT_EQ(idle.request("GET", "/healthz").status, 200);
  Conn c(p);
  c.send_raw("POST /api/creators/" + cid + "/images HTTP/1.1\r\nHost: x\r\nContent-Length: " +
             std::to_string(png.size()) + "\r\n\r\n" + png.substr(0, 5000));
  std::this_thread::sleep_for(200ms);
  // SIGTERM while the body is half sent.
  std::thread term([&] { EXPECT_EQ(s.stop(SIGTERM), 0); });
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(idle.wait_closed(5s));
  c.send_raw(png.substr(5000));
  auto r = c.read_response();
  EXPECT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.header("connection"), "close");
  term.join();
  // What was accepted is there after a restart.
  Server again({.data_dir = s.data_dir()});
  auto imgs = get(again.port(), "/api/creators/" + cid + "/images");
  EXPECT_EQ(imgs.json().at("items").as_array().size(), 1u);
}
