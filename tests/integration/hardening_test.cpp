// Adversarial tests of the transport and the API's edges (issue 10): each test names the defect
// it guards against and failed before its fix.
#include <filesystem>
#include <fstream>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "../unit/test_images.hpp"
#include "harness.hpp"

using namespace harness;
using test_images::real_png;
using namespace std::chrono_literals;

namespace {

const std::string kToken = "hardening-token-0123456789";

std::string auth() { return "Authorization: Bearer " + kToken + "\r\n"; }

// The request line and headers of a request whose body is announced but not (yet) sent.
std::string head_only(const std::string& method, const std::string& target, size_t length,
                      const std::string& extra = "") {
  return method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " + std::to_string(length) +
         "\r\n" + extra + "\r\n";
}

// The status of the first response line in raw bytes, 0 when there is none.
int first_status(const std::string& raw) {
  if (raw.rfind("HTTP/1.1 ", 0) != 0 || raw.size() < 12) return 0;
  return std::stoi(raw.substr(9, 3));
}

int64_t make_creator(uint16_t port, const std::string& handle, const Headers& headers = {}) {
  auto r = post_json(port, "/api/creators", R"({"name":"N","handle":")" + handle + "\"}", headers);
  return r.status == 201 ? r.json().at("id").as_int64() : -1;
}

}  // namespace

// Defect 1: route, method and auth are decided before the body is read.

TEST(Hardening, UnauthenticatedUploadIsRefusedBeforeItsBodyAndWithout100Continue) {
  Server s({.args = {"--api-tokens", kToken}});
  Conn c(s.port());
  c.send_raw(head_only("POST", "/api/creators/1/images", 20'000'000, "Expect: 100-continue\r\n"));
  std::string raw = c.read_until("\r\n\r\n", 3s);
  EXPECT_EQ(first_status(raw), 401) << raw;
  EXPECT_TRUE(c.wait_closed(3s));
}

TEST(Hardening, UnknownPathAndWrongMethodAreAnsweredBeforeTheBody) {
  Server s;
  {
    Conn c(s.port());
    c.send_raw(head_only("POST", "/nowhere", 1'000'000));
    EXPECT_EQ(c.read_response(false, 3s).status, 404);
  }
  {
    Conn c(s.port());
    c.send_raw(head_only("PUT", "/api/creators", 1'000));
    auto r = c.read_response(false, 3s);
    EXPECT_EQ(r.status, 405);
    EXPECT_EQ(r.header("connection"), "close");
  }
}

TEST(Hardening, EmailWithoutConfiguredTokensIsForbiddenBeforeTheBody) {
  Server s;
  Conn c(s.port());
  c.send_raw(head_only("POST", "/api/send-email", 100'000, "Content-Type: application/json\r\n"));
  EXPECT_EQ(c.read_response(false, 3s).status, 403);
}

TEST(Hardening, AnAuthorizedRequestGets100Continue) {
  Server s({.args = {"--api-tokens", kToken}});
  Conn c(s.port());
  std::string body = R"({"name":"N","handle":"cont"})";
  c.send_raw(head_only("POST", "/api/creators", body.size(),
                       auth() + "Content-Type: application/json\r\nExpect: 100-continue\r\n"));
  std::string raw = c.read_until("\r\n\r\n", 3s);
  EXPECT_EQ(first_status(raw), 100) << raw;
  c.send_raw(body);
  EXPECT_EQ(c.read_response(false, 5s).status, 201);
}

TEST(Hardening, BodiesBeyondTheGlobalBodyMemoryBudgetGet503) {
  Server s({.args = {"--max-body-memory", "1000000", "--max-upload-bytes", "800000", "--max-json-bytes", "100000"}});
  auto p = s.port();
  auto cid = std::to_string(make_creator(p, "budget"));
  std::string image = real_png(4, 4, 700'000);
  Conn first(p);
  first.send_raw(head_only("POST", "/api/creators/" + cid + "/images", image.size(), "Expect: 100-continue\r\n"));
  // 100 Continue is sent once the body's memory is reserved.
  ASSERT_EQ(first_status(first.read_until("\r\n\r\n", 5s)), 100);
  {
    Conn second(p);
    second.send_raw(head_only("POST", "/api/creators/" + cid + "/images", image.size()));
    auto r = second.read_response(false, 3s);
    EXPECT_EQ(r.status, 503);
    EXPECT_FALSE(r.header("retry-after").empty());
  }
  first.send_raw(image);
  EXPECT_EQ(first.read_response(false, 10s).status, 201);
  // Released before the answer was sent: the next upload fits at once, no retry needed.
  Conn third(p);
  third.send_raw(head_only("POST", "/api/creators/" + cid + "/images", image.size()) + image);
  EXPECT_EQ(third.read_response(false, 10s).status, 201);
}

// Defect 2: a template value cannot inject headers into an http step's request.

TEST(Hardening, CrOrLfRenderedIntoAStepHeaderFailsTheStep) {
  FakeAi ai;
  std::string dir = temp_dir("inject");
  std::ofstream(dir + "/p.toml") << "[[pipeline]]\nname = \"echo\"\n  [[pipeline.step]]\n  name = \"call\"\n"
                                    "  type = \"http\"\n  method = \"POST\"\n  url = \"" + ai.url() + "/echo\"\n"
                                    "  headers = { Authorization = \"Bearer {{ params.note }}\" }\n"
                                    "  body = { n = 1 }\n  request_retries = 0\n  allow_internal = [\"127.0.0.1\"]\n";
  Server s({.args = {"--pipelines", dir + "/p.toml"}});
  auto p = s.port();
  auto cid = std::to_string(make_creator(p, "inject"));
  auto run = [&](const std::string& note) {
    auto r = post_json(p, "/api/creators/" + cid + "/generate",
                       R"({"pipeline":"echo","max_attempts":1,"params":{"note":")" + note + "\"}}");
    EXPECT_EQ(r.status, 202) << r.body;
    return wait_job(p, r.json().at("id").as_int64(), [](const boost::json::value& j) {
      return job_in(j, {"succeeded", "failed", "cancelled"});
    });
  };
  auto clean = run("ok");
  ASSERT_EQ(clean.at("state").as_string(), "succeeded") << boost::json::serialize(clean);
  EXPECT_EQ(clean.at("result").at("authorization").as_string(), "Bearer ok");
  auto injected = run(R"(x\r\nX-Injected: 1)");
  EXPECT_EQ(injected.at("state").as_string(), "failed");
  EXPECT_NE(injected.at("last_error").as_string().find("CR, LF or NUL"), std::string::npos)
      << boost::json::serialize(injected);
  std::filesystem::remove_all(dir);
}

// Defect 10: a bare relative pipelines file name works (it aborted the process).

TEST(Hardening, ABareRelativePipelinesFileIsLoaded) {
  std::string dir = temp_dir("relative");
  std::ofstream(dir + "/p.toml") << "[[pipeline]]\nname = \"rel\"\n  [[pipeline.step]]\n  name = \"a\"\n"
                                    "  type = \"exec\"\n  command = [\"true\"]\n";  // an exec step's folder is the file's
  std::string cmd = "cd " + dir + " && " + CREATORD_BINARY + " pipelines check p.toml > out.txt 2>&1";
  int rc = std::system(cmd.c_str());
  EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 0) << rc;
  char here[4096];
  ASSERT_NE(::getcwd(here, sizeof here), nullptr);
  ASSERT_EQ(::chdir(dir.c_str()), 0);
  {
    Server s({.args = {"--pipelines", "p.toml"}});
    EXPECT_NE(get(s.port(), "/api/pipelines").body.find("\"rel\""), std::string::npos);
  }
  ASSERT_EQ(::chdir(here), 0);
  std::filesystem::remove_all(dir);
}

// Defect 13: NUL is refused in every text field, on every store.

TEST(Hardening, NulInTextFieldsIsRefused) {
  Server s({.args = {"--api-tokens", kToken}});
  auto p = s.port();
  Headers token{{"Authorization", "Bearer " + kToken}};
  auto create = [&](const std::string& json) { return post_json(p, "/api/creators", json, token).status; };
  EXPECT_EQ(create(R"({"name":"a\u0000b","handle":"nul1"})"), 422);
  EXPECT_EQ(create(R"({"name":"a","handle":"nul2","bio":"x\u0000"})"), 422);
  EXPECT_EQ(create(R"({"name":"a","handle":"nul3","tags":["\u0000"]})"), 422);
  EXPECT_EQ(create(R"({"name":"a","handle":"nul4","email":"a\u0000@b.example"})"), 422);
  EXPECT_EQ(get(p, "/api/creators?q=%00").status, 400);  // like every other bad query parameter
  for (std::string body : {"text", "html"}) {
    auto r = post_json(p, "/api/send-email", R"({"to":["a@b.example"],"subject":"s",")" + body + R"(":"a\u0000b"})", token);
    EXPECT_EQ(r.status, 422) << body;
    EXPECT_EQ(r.json().at("error").at("field").as_string(), body);
  }
}

// Defect 3: request smuggling.

TEST(Hardening, TransferEncodingNotEndingInChunkedIs400AndCloses) {
  Server s;
  for (std::string te : {"chunked, identity", "xchunked", "gzip", "identity"}) {
    Conn c(s.port());
    c.send_raw("POST /api/creators HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: " + te +
               "\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    auto r = c.read_response(false, 3s);
    EXPECT_EQ(r.status, 400) << te;
    EXPECT_TRUE(c.wait_closed(3s)) << te;
  }
}

TEST(Hardening, AnEncodedSlashDoesNotRouteToAnotherResource) {
  Server s;
  auto p = s.port();
  auto cid = std::to_string(make_creator(p, "slash"));
  EXPECT_EQ(request(p, "POST", "/api/jobs/1%2Fcancel").status, 405);
  EXPECT_EQ(get(p, "/api/creators/" + cid + "%2Fimages").status, 400);
  EXPECT_EQ(get(p, "/api/creators/" + cid + "/images").status, 200);
  EXPECT_EQ(get(p, "/api/%63reators/" + cid).status, 200);  // other escapes still decode
}

TEST(Hardening, MissingOrRepeatedHostIs400) {
  Server s;
  {
    Conn c(s.port());
    c.send_raw("GET /healthz HTTP/1.1\r\n\r\n");
    EXPECT_EQ(c.read_response(false, 3s).status, 400);
  }
  {
    Conn c(s.port());
    c.send_raw("GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
    EXPECT_EQ(c.read_response(false, 3s).status, 400);
  }
  {
    Conn c(s.port());
    c.send_raw("GET /healthz HTTP/1.0\r\n\r\n");  // HTTP/1.0 may omit it
    EXPECT_EQ(c.read_response(false, 3s).status, 200);
  }
}

TEST(Hardening, HeadOnAnEventStreamSendsNoBody) {
  Server s;
  auto p = s.port();
  auto cid = std::to_string(make_creator(p, "headsse"));
  auto job = post_json(p, "/api/creators/" + cid + "/generate", R"({"pipeline":"diagnostic","params":{"sleep_ms":10}})");
  ASSERT_EQ(job.status, 202);
  auto id = std::to_string(job.json().at("id").as_int64());
  Conn c(p);
  c.send_raw("HEAD /api/jobs/" + id + "/events HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string raw = c.read_until("\r\n\r\n", 3s);
  ASSERT_EQ(first_status(raw), 200) << raw;
  auto start = std::chrono::steady_clock::now();
  std::string all = c.read_until("never", 3s);  // everything until the server closes
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  EXPECT_EQ(all.substr(all.find("\r\n\r\n") + 4), "");
}

// Defect 17: one client cannot hold every connection slot.

TEST(Hardening, ASilentConnectionIsClosedAfterTheHeaderTimeout) {
  Server s({.args = {"--header-timeout", "1", "--idle-timeout", "30"}});
  Conn c(s.port());
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.wait_closed(5s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4s);
  // A keep-alive connection still gets the idle timeout between requests.
  Conn k(s.port());
  EXPECT_EQ(k.request("GET", "/healthz").status, 200);
  EXPECT_FALSE(k.wait_closed(2s));
  EXPECT_EQ(k.request("GET", "/healthz").status, 200);
}

TEST(Hardening, ConnectionsBeyondThePerAddressLimitGet503) {
  Server s({.args = {"--max-connections-per-ip", "3"}});
  auto p = s.port();
  std::vector<std::unique_ptr<Conn>> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(std::make_unique<Conn>(p));
    EXPECT_EQ(held.back()->request("GET", "/healthz").status, 200);  // accepted, and kept open
  }
  {
    Conn extra(p);  // answered without being read: sending first could race a reset
    auto r = extra.read_response(false, 3s);
    EXPECT_EQ(r.status, 503);
    EXPECT_FALSE(r.header("retry-after").empty());
  }
  held.pop_back();
  bool ok = false;  // once the server has noticed the close
  for (int i = 0; i < 100 && !ok; ++i) {
    ok = get(p, "/healthz").status == 200;
    if (!ok) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(ok);
}

// Defect 18: small protocol mistakes.

TEST(Hardening, IfNoneMatchStarOnlyMatchesWhenItIsTheWholeField) {
  Server s;
  auto p = s.port();
  auto cid = std::to_string(make_creator(p, "etag"));
  auto up = request(p, "POST", "/api/creators/" + cid + "/images", real_png(8, 8));
  ASSERT_EQ(up.status, 201);
  std::string url = "/api/images/" + std::to_string(up.json().at("id").as_int64()) + "/content";
  std::string etag = get(p, url).header("etag");
  EXPECT_EQ(get(p, url, {{"If-None-Match", R"("nope", *)"}}).status, 200);
  EXPECT_EQ(get(p, url, {{"If-None-Match", R"("a*b")"}}).status, 200);
  EXPECT_EQ(get(p, url, {{"If-None-Match", "*"}}).status, 304);
  EXPECT_EQ(get(p, url, {{"If-None-Match", R"("nope", )" + etag}}).status, 304);
}

TEST(Hardening, CacheableAnswersVaryOnOriginWhenCorsIsOn) {
  Server s({.args = {"--cors-origins", "https://app.example"}});
  auto p = s.port();
  EXPECT_EQ(get(p, "/api/creators").header("vary"), "Origin");
  EXPECT_EQ(get(p, "/api/creators", {{"Origin", "https://evil.example"}}).header("vary"), "Origin");
  EXPECT_EQ(get(p, "/api/creators", {{"Origin", "https://app.example"}}).header("vary"), "Origin");
  Server plain;
  EXPECT_EQ(get(plain.port(), "/api/creators").header("vary"), "");
}

TEST(Hardening, MethodNotAllowedNamesTheRealMethod) {
  Server s;
  auto r = request(s.port(), "PROPFIND", "/api/creators");
  EXPECT_EQ(r.status, 405);
  EXPECT_NE(r.body.find("PROPFIND"), std::string::npos) << r.body;
}

TEST(Hardening, DuplicateJsonKeysAre400) {
  Server s;
  auto p = s.port();
  EXPECT_EQ(post_json(p, "/api/creators", R"({"name":"A","handle":"dup1","name":"B"})").status, 400);
  EXPECT_EQ(post_json(p, "/api/creators", R"({"name":"A","handle":"dup2","tags":["x","x"]})").status, 201);
  EXPECT_EQ(post_json(p, "/api/creators", R"({"name":"A","handle":"dup3","x":{"a":1,"\u0061":2}})").status, 400);
}

// Defect 8, the server's side: --write-timeout covered a whole response, so a large image to a
// slow but steady client was cut off. Now it bounds the time without progress (and
// --min-send-rate the average): the steady client gets every byte, a stalled one is cut off.
namespace {

// A client that reads up to `chunk` bytes every `pause`, after waiting `stall` first, until the
// server closes; returns the bytes of the whole answer.
std::string slow_get(uint16_t port, const std::string& target, size_t chunk, std::chrono::milliseconds pause,
                     std::chrono::milliseconds stall = 0ms) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return "";
  }
  std::string req = "GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  if (stall > 0ms) std::this_thread::sleep_for(stall);
  std::string out;
  std::string buf(chunk, '\0');
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10000) <= 0) break;
    ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) break;
    out.append(buf.data(), static_cast<size_t>(n));
    if (pause > 0ms) std::this_thread::sleep_for(pause);
  }
  ::close(fd);
  return out;
}

}  // namespace

TEST(Hardening, ASlowSteadyClientGetsALargeImageAndAStalledOneIsCutOff) {
  Server s({.args = {"--write-timeout", "2"}});
  auto p = s.port();
  auto cid = std::to_string(make_creator(p, "slowreader"));
  std::string image = real_png(16, 16, 20u << 20);  // a valid 20 MiB image
  auto up = request(p, "POST", "/api/creators/" + cid + "/images", image, {{"Content-Type", "image/png"}});
  ASSERT_EQ(up.status, 201) << up.body;
  std::string url = "/api/images/" + std::to_string(up.json().at("id").as_int64()) + "/content";
  // About 3 MB/s: six seconds for the whole answer, three times --write-timeout. (The server sees
  // progress each time the kernel takes more of the answer, at most a couple of MB apart.)
  auto start = std::chrono::steady_clock::now();
  std::string steady = slow_get(p, url, 64 * 1024, 20ms);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GT(took, 3000ms) << "the client was not slower than --write-timeout; the test proves nothing";
  ASSERT_GT(steady.size(), image.size());
  EXPECT_EQ(steady.substr(steady.size() - image.size()), image) << "the steady client got the whole image";
  // A client that takes nothing for four seconds: cut off after --write-timeout.
  std::string stalled = slow_get(p, url, 64 * 1024, 0ms, 4000ms);
  EXPECT_LT(stalled.size(), image.size()) << "a stalled client was cut off";
  EXPECT_EQ(get(p, "/healthz").status, 200);
}
