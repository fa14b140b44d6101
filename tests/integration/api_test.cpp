// The API end to end: the real binary, real SQLite, HTTP over loopback.
#include <filesystem>

#include <gtest/gtest.h>

#include "../unit/test_images.hpp"
#include "harness.hpp"

using namespace harness;
namespace json = boost::json;

namespace {

int64_t create(uint16_t port, const std::string& handle, const std::string& name = "Some One", Headers h = {}) {
  auto r = post_json(port, "/api/creators", R"({"name":")" + name + R"(","handle":")" + handle + R"("})", h);
  EXPECT_EQ(r.status, 201) << r.body;
  return r.json().at("id").as_int64();
}

void expect_error(const Response& r, int status, const std::string& code, const char* field = nullptr) {
  EXPECT_EQ(r.status, status) << r.body;
  auto j = r.json();
  ASSERT_TRUE(j.is_object()) << r.body;
  EXPECT_EQ(j.at("error").at("code").as_string(), code) << r.body;
  EXPECT_FALSE(j.at("error").at("message").as_string().empty());
  if (field) EXPECT_EQ(j.at("error").at("field").as_string(), field) << r.body;
  EXPECT_EQ(r.header("content-type"), "application/json");
}

}  // namespace

TEST(Api, HealthAndReadiness) {
  Server s;
  EXPECT_EQ(get(s.port(), "/healthz").status, 200);
  auto ready = get(s.port(), "/readyz");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(ready.json().at("status").as_string(), "ready");
}

TEST(Api, CreatorLifecycle) {
  Server s;
  auto created = post_json(s.port(), "/api/creators",
                           R"({"name":"Mei Lin","handle":"MeiLin","email":"mei@example.com","bio":"hi","tags":["ink"]})");
  ASSERT_EQ(created.status, 201) << created.body;
  auto id = created.json().at("id").as_int64();
  EXPECT_EQ(created.header("location"), "/api/creators/" + std::to_string(id));
  EXPECT_EQ(created.json().at("handle").as_string(), "meilin");

  auto got = get(s.port(), "/api/creators/" + std::to_string(id));
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(got.json().at("email").as_string(), "mei@example.com");
  EXPECT_EQ(got.json().at("tags").as_array().size(), 1u);

  auto patched = request(s.port(), "PATCH", "/api/creators/" + std::to_string(id), R"({"bio":"new","email":null})",
                         {{"Content-Type", "application/json"}});
  ASSERT_EQ(patched.status, 200) << patched.body;
  EXPECT_EQ(patched.json().at("bio").as_string(), "new");
  EXPECT_TRUE(patched.json().at("email").is_null());
  EXPECT_EQ(patched.json().at("name").as_string(), "Mei Lin");

  auto del = request(s.port(), "DELETE", "/api/creators/" + std::to_string(id));
  EXPECT_EQ(del.status, 204);
  expect_error(get(s.port(), "/api/creators/" + std::to_string(id)), 404, "not_found");
  expect_error(request(s.port(), "DELETE", "/api/creators/" + std::to_string(id)), 404, "not_found");
}

TEST(Api, ListPagesNewestFirstWithCursorAndSearch) {
  Server s;
  std::vector<int64_t> ids;
  for (int i = 0; i < 7; ++i) ids.push_back(create(s.port(), "p" + std::to_string(i), i == 3 ? "Findme Person" : "Other"));
  std::vector<int64_t> seen;
  std::string target = "/api/creators?limit=3";
  for (int pages = 0; pages < 10; ++pages) {
    auto r = get(s.port(), target);
    ASSERT_EQ(r.status, 200) << r.body;
    auto j = r.json();
    for (const auto& it : j.at("items").as_array()) seen.push_back(it.at("id").as_int64());
    if (!j.at("has_more").as_bool()) {
      EXPECT_TRUE(j.at("next_cursor").is_null());
      break;
    }
    target = "/api/creators?limit=3&cursor=" + std::string(j.at("next_cursor").as_string());
  }
  std::vector<int64_t> expected(ids.rbegin(), ids.rend());
  EXPECT_EQ(seen, expected);

  auto found = get(s.port(), "/api/creators?q=FINDME");
  ASSERT_EQ(found.status, 200);
  ASSERT_EQ(found.json().at("items").as_array().size(), 1u);
  EXPECT_EQ(found.json().at("items").at(0).at("id").as_int64(), ids[3]);
  auto by_handle = get(s.port(), "/api/creators?q=p5");
  EXPECT_EQ(by_handle.json().at("items").as_array().size(), 1u);
  auto encoded = get(s.port(), "/api/creators?q=Findme%20Person");
  EXPECT_EQ(encoded.json().at("items").as_array().size(), 1u);
}

TEST(Api, BadInputGetsClearErrors) {
  Server s;
  auto p = s.port();
  expect_error(post_json(p, "/api/creators", R"({"name":"x")"), 400, "bad_request");
  expect_error(post_json(p, "/api/creators", "{\"name\":\"\xff\xfe\",\"handle\":\"a\"}"), 400, "bad_request");
  expect_error(post_json(p, "/api/creators", "[]"), 422, "validation_failed");
  expect_error(post_json(p, "/api/creators", R"({"handle":"a"})"), 422, "validation_failed", "name");
  expect_error(post_json(p, "/api/creators", R"({"name":1,"handle":"a"})"), 422, "validation_failed", "name");
  expect_error(post_json(p, "/api/creators", R"({"name":"a","handle":"a","x":1})"), 422, "validation_failed", "x");
  expect_error(post_json(p, "/api/creators", R"({"name":"a","handle":"a","email":"bad"})"), 422, "validation_failed", "email");
  expect_error(request(p, "POST", "/api/creators", R"({"name":"a","handle":"a"})", {{"Content-Type", "text/plain"}}),
               415, "unsupported_media_type");
  expect_error(request(p, "POST", "/api/creators", ""), 415, "unsupported_media_type");
  expect_error(get(p, "/api/creators/abc"), 400, "bad_request", "creator_id");
  expect_error(get(p, "/api/creators/-1"), 400, "bad_request", "creator_id");
  expect_error(get(p, "/api/creators/99999999999999999999999"), 400, "bad_request", "creator_id");
  expect_error(get(p, "/api/creators/12345"), 404, "not_found");
  for (const char* limit : {"0", "201", "-5", "abc", "1e3"})
    expect_error(get(p, std::string("/api/creators?limit=") + limit), 400, "bad_request", "limit");
  expect_error(get(p, "/api/creators?cursor=garbage"), 400, "bad_request", "cursor");
  expect_error(get(p, "/api/creators?q=%ZZ"), 400, "bad_request");
  expect_error(get(p, "/api/creators?q=%C3%28"), 400, "bad_request");
  expect_error(get(p, "/api/nothing-here"), 404, "not_found");

  create(p, "dup");
  expect_error(post_json(p, "/api/creators", R"({"name":"b","handle":"DUP"})"), 409, "conflict", "handle");

  auto not_allowed = request(p, "PUT", "/api/creators");
  expect_error(not_allowed, 405, "method_not_allowed");
  EXPECT_EQ(not_allowed.header("allow"), "GET, HEAD, POST, OPTIONS");
  // Still serving after all that.
  EXPECT_EQ(get(p, "/healthz").status, 200);
}

TEST(Api, SqlLookingTextIsStoredVerbatim) {
  Server s;
  std::string evil = "Robert'); DROP TABLE creators;--";
  auto r = post_json(s.port(), "/api/creators", R"({"name":"Robert'); DROP TABLE creators;--","handle":"bobby","bio":"' OR 1=1 --"})");
  ASSERT_EQ(r.status, 201) << r.body;
  auto got = get(s.port(), "/api/creators/" + std::to_string(r.json().at("id").as_int64()));
  EXPECT_EQ(got.json().at("name").as_string(), evil);
  EXPECT_EQ(got.json().at("bio").as_string(), "' OR 1=1 --");
  auto q = get(s.port(), "/api/creators?q=%27%20OR%201%3D1");
  EXPECT_EQ(q.status, 200);
  EXPECT_EQ(q.json().at("items").as_array().size(), 0u);
  auto list = get(s.port(), "/api/creators");
  EXPECT_EQ(list.json().at("items").as_array().size(), 1u);
}

TEST(Api, ImagesUploadListServeAndDelete) {
  Server s;
  auto p = s.port();
  auto cid = create(p, "painter");
  std::string png = test_images::real_png(64, 32);
  auto up = request(p, "POST", "/api/creators/" + std::to_string(cid) + "/images", png,
                    {{"Content-Type", "application/octet-stream"}});  // the header is not trusted
  ASSERT_EQ(up.status, 201) << up.body;
  auto img = up.json();
  EXPECT_EQ(img.at("content_type").as_string(), "image/png");
  EXPECT_EQ(img.at("width").as_int64(), 64);
  EXPECT_EQ(img.at("height").as_int64(), 32);
  EXPECT_EQ(img.at("size_bytes").as_int64(), static_cast<int64_t>(png.size()));
  auto iid = std::to_string(img.at("id").as_int64());
  EXPECT_EQ(up.header("location"), "/api/images/" + iid);

  auto jpeg = request(p, "POST", "/api/creators/" + std::to_string(cid) + "/images", test_images::real_jpeg(20, 10));
  ASSERT_EQ(jpeg.status, 201);
  EXPECT_EQ(jpeg.json().at("content_type").as_string(), "image/jpeg");
  auto webp = request(p, "POST", "/api/creators/" + std::to_string(cid) + "/images",
                      test_images::real_webp(5, 6));
  ASSERT_EQ(webp.status, 201);
  EXPECT_EQ(webp.json().at("content_type").as_string(), "image/webp");

  auto list = get(p, "/api/creators/" + std::to_string(cid) + "/images?limit=2");
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(list.json().at("items").as_array().size(), 2u);
  EXPECT_TRUE(list.json().at("has_more").as_bool());

  auto meta = get(p, "/api/images/" + iid);
  ASSERT_EQ(meta.status, 200);
  EXPECT_EQ(meta.json().at("url").as_string(), "/api/images/" + iid + "/content");

  auto content = get(p, "/api/images/" + iid + "/content");
  ASSERT_EQ(content.status, 200);
  EXPECT_EQ(content.body, png);
  EXPECT_EQ(content.header("content-type"), "image/png");
  std::string etag = content.header("etag");
  EXPECT_FALSE(etag.empty());
  EXPECT_NE(content.header("cache-control").find("max-age"), std::string::npos);
  auto cached = get(p, "/api/images/" + iid + "/content", {{"If-None-Match", etag}});
  EXPECT_EQ(cached.status, 304);
  EXPECT_EQ(cached.header("etag"), etag);
  auto changed = get(p, "/api/images/" + iid + "/content", {{"If-None-Match", "\"other\""}});
  EXPECT_EQ(changed.status, 200);

  expect_error(request(p, "POST", "/api/creators/" + std::to_string(cid) + "/images", "GIF89a not supported here"),
               415, "unsupported_media_type");
  expect_error(request(p, "POST", "/api/creators/" + std::to_string(cid) + "/images", ""), 400, "bad_request");
  expect_error(request(p, "POST", "/api/creators/777/images", png), 404, "not_found");
  expect_error(get(p, "/api/creators/777/images"), 404, "not_found");
  expect_error(get(p, "/api/images/abc"), 400, "bad_request", "image_id");

  EXPECT_EQ(request(p, "DELETE", "/api/images/" + iid).status, 204);
  expect_error(get(p, "/api/images/" + iid), 404, "not_found");
  expect_error(get(p, "/api/images/" + iid + "/content"), 404, "not_found");

  // Deleting the creator takes its images with it.
  auto jid = std::to_string(jpeg.json().at("id").as_int64());
  EXPECT_EQ(request(p, "DELETE", "/api/creators/" + std::to_string(cid)).status, 204);
  expect_error(get(p, "/api/images/" + jid), 404, "not_found");
}

TEST(Api, BodyAndHeaderLimits) {
  Server s({.args = {"--max-json-bytes", "1000", "--max-upload-bytes", "5000", "--max-header-bytes", "2048"}});
  auto p = s.port();
  std::string big_json = R"({"name":")" + std::string(2000, 'x') + R"(","handle":"a"})";
  expect_error(post_json(p, "/api/creators", big_json), 413, "payload_too_large");
  auto cid = create(p, "limits");
  std::string big_png = test_images::real_png(10, 10, 6000);
  expect_error(request(p, "POST", "/api/creators/" + std::to_string(cid) + "/images", big_png), 413,
               "payload_too_large");
  // The upload route allows more than a JSON route.
  std::string ok_png = test_images::real_png(10, 10, 3000);
  EXPECT_EQ(request(p, "POST", "/api/creators/" + std::to_string(cid) + "/images", ok_png).status, 201);
  expect_error(get(p, "/healthz", {{"X-Big", std::string(4000, 'h')}}), 431, "header_too_large");
  // Chunked bodies are limited too.
  Conn c(p);
  std::string chunked = "POST /api/creators HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 3; ++i) chunked += "1f4\r\n" + std::string(500, ' ') + "\r\n";
  chunked += "0\r\n\r\n";
  c.send_raw(chunked);
  expect_error(c.read_response(), 413, "payload_too_large");
  EXPECT_EQ(get(p, "/healthz").status, 200);
}

TEST(Api, WritesNeedATokenWhenTokensAreConfigured) {
  const std::string token = "test-token-0123456789abcdef";
  Server s({.env = {{"CREATORD_API_TOKENS", token + ",second-token-0123456789"}}});
  auto p = s.port();
  auto no = post_json(p, "/api/creators", R"({"name":"a","handle":"a"})");
  expect_error(no, 401, "unauthorized");
  EXPECT_EQ(no.header("www-authenticate"), "Bearer");
  expect_error(post_json(p, "/api/creators", R"({"name":"a","handle":"a"})", {{"Authorization", "Bearer wrong"}}),
               401, "unauthorized");
  expect_error(post_json(p, "/api/creators", R"({"name":"a","handle":"a"})", {{"Authorization", token}}), 401,
               "unauthorized");
  auto yes = post_json(p, "/api/creators", R"({"name":"a","handle":"a"})", {{"Authorization", "Bearer " + token}});
  EXPECT_EQ(yes.status, 201);
  auto second = post_json(p, "/api/creators", R"({"name":"b","handle":"b"})",
                          {{"Authorization", "bearer second-token-0123456789"}});
  EXPECT_EQ(second.status, 201);
  EXPECT_EQ(get(p, "/api/creators").status, 200);  // reads stay open
  expect_error(request(p, "DELETE", "/api/creators/1"), 401, "unauthorized");
}

TEST(Api, RefusesToListenBeyondLoopbackWithoutTokens) {
  Server s({.args = {"--listen", "0.0.0.0:0"}, .expect_listening = false});
  EXPECT_EQ(s.wait_exit(), 2);
  EXPECT_NE(s.output().find("no credentials are configured"), std::string::npos) << s.output();
}

TEST(Api, Cors) {
  Server s({.args = {"--cors-origins", "https://app.example.com"}});
  auto p = s.port();
  auto pre = request(p, "OPTIONS", "/api/creators", "",
                     {{"Origin", "https://app.example.com"}, {"Access-Control-Request-Method", "POST"},
                      {"Access-Control-Request-Headers", "content-type,authorization"}});
  EXPECT_EQ(pre.status, 204);
  EXPECT_EQ(pre.header("access-control-allow-origin"), "https://app.example.com");
  EXPECT_NE(pre.header("access-control-allow-methods").find("POST"), std::string::npos);
  EXPECT_NE(pre.header("access-control-allow-headers").find("Authorization"), std::string::npos);
  EXPECT_FALSE(pre.header("access-control-max-age").empty());

  auto other = request(p, "OPTIONS", "/api/creators", "",
                       {{"Origin", "https://evil.example"}, {"Access-Control-Request-Method", "POST"}});
  EXPECT_EQ(other.status, 204);
  EXPECT_TRUE(other.header("access-control-allow-origin").empty());

  auto simple = get(p, "/api/creators", {{"Origin", "https://app.example.com"}});
  EXPECT_EQ(simple.header("access-control-allow-origin"), "https://app.example.com");
  EXPECT_EQ(simple.header("vary"), "Origin");
  EXPECT_TRUE(get(p, "/api/creators").header("access-control-allow-origin").empty());
  EXPECT_EQ(request(p, "OPTIONS", "/nowhere").status, 404);
}

TEST(Api, RequestIdIsEchoedOrMinted) {
  Server s;
  auto mine = get(s.port(), "/healthz", {{"X-Request-Id", "trace-abc-123"}});
  EXPECT_EQ(mine.header("x-request-id"), "trace-abc-123");
  auto minted = get(s.port(), "/healthz");
  EXPECT_EQ(minted.header("x-request-id").size(), 16u);
  auto unsafe = get(s.port(), "/healthz", {{"X-Request-Id", "has space\"quote"}});
  EXPECT_NE(unsafe.header("x-request-id"), "has space\"quote");
  s.stop();
  EXPECT_NE(s.output().find("\"request_id\":\"trace-abc-123\""), std::string::npos);
}

TEST(Api, HeadAnswersHeadersOnly) {
  Server s;
  create(s.port(), "head");
  Conn c(s.port());
  auto h = c.request("HEAD", "/api/creators");
  EXPECT_EQ(h.status, 200);
  EXPECT_GT(std::stoul(h.header("content-length")), 10u);
  EXPECT_TRUE(h.body.empty());
  auto g = c.request("GET", "/api/creators");  // the connection is still in sync
  EXPECT_EQ(g.status, 200);
  EXPECT_EQ(g.body.size(), std::stoul(h.header("content-length")));
}

TEST(Api, DataSurvivesARestart) {
  std::string dir = temp_dir("restart");
  int64_t id;
  {
    Server s({.data_dir = dir});
    id = create(s.port(), "durable", "Durable Person");
    auto img = request(s.port(), "POST", "/api/creators/" + std::to_string(id) + "/images", test_images::real_png(3, 3));
    ASSERT_EQ(img.status, 201);
    EXPECT_EQ(s.stop(), 0);
  }
  {
    Server s({.data_dir = dir});
    auto got = get(s.port(), "/api/creators/" + std::to_string(id));
    ASSERT_EQ(got.status, 200);
    EXPECT_EQ(got.json().at("name").as_string(), "Durable Person");
    auto imgs = get(s.port(), "/api/creators/" + std::to_string(id) + "/images");
    ASSERT_EQ(imgs.json().at("items").as_array().size(), 1u);
    auto iid = imgs.json().at("items").at(0).at("id").as_int64();
    EXPECT_EQ(get(s.port(), "/api/images/" + std::to_string(iid) + "/content").body, test_images::real_png(3, 3));
  }
  std::filesystem::remove_all(dir);
}

TEST(Api, DemoSeedsAnEmptyStoreOnce) {
  std::string dir = temp_dir("demo");
  {
    Server s({.args = {"--demo"}, .data_dir = dir});
    for (int i = 0; i < 250 && get(s.port(), "/api/creators").json().at("items").as_array().size() < 8; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(get(s.port(), "/api/creators").json().at("items").as_array().size(), 8u);
    EXPECT_EQ(s.stop(), 0);
  }
  {
    Server s({.args = {"--demo"}, .data_dir = dir});
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    EXPECT_EQ(get(s.port(), "/api/creators").json().at("items").as_array().size(), 8u);
  }
  std::filesystem::remove_all(dir);
}

TEST(Api, MigrateCommandCreatesTheSchema) {
  std::string dir = temp_dir("migrate");
  std::string cmd = std::string(CREATORD_BINARY) + " migrate --data-dir " + dir + " > " + dir + "/out.txt 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
  EXPECT_TRUE(std::filesystem::exists(dir + "/creatord.db"));
  EXPECT_EQ(std::system(cmd.c_str()), 0);  // idempotent
  std::filesystem::remove_all(dir);
}

TEST(Api, ListCacheNeverServesStaleAnswers) {
  Server s;
  Conn c(s.port());  // one connection: one I/O thread, one cache
  auto count = [&] { return c.request("GET", "/api/creators?limit=200").json().at("items").as_array().size(); };
  EXPECT_EQ(count(), 0u);
  EXPECT_EQ(count(), 0u);  // now cached
  auto created = c.request("POST", "/api/creators", R"({"name":"Fresh","handle":"fresh"})",
                           {{"Content-Type", "application/json"}});
  ASSERT_EQ(created.status, 201);
  EXPECT_EQ(count(), 1u);
  auto id = std::to_string(created.json().at("id").as_int64());
  c.request("PATCH", "/api/creators/" + id, R"({"name":"Renamed"})", {{"Content-Type", "application/json"}});
  auto after = c.request("GET", "/api/creators?limit=200").json();
  EXPECT_EQ(after.at("items").at(0).at("name").as_string(), "Renamed");
  EXPECT_EQ(c.request("DELETE", "/api/creators/" + id).status, 204);
  EXPECT_EQ(count(), 0u);
}

TEST(Api, MigrateOnPostgres) {
  const char* admin = std::getenv("CREATORD_TEST_POSTGRES_URL");
  if (!admin) GTEST_SKIP() << "CREATORD_TEST_POSTGRES_URL is not set (make test sets it)";
  std::string db = "creatord_cli_" + std::to_string(::getpid());
  std::string url = std::string(admin).substr(0, std::string(admin).rfind('/')) + "/" + db;
  std::string psql = std::string("psql -q '") + admin + "' -c ";
  ASSERT_EQ(std::system((psql + "'DROP DATABASE IF EXISTS " + db + "' -c 'CREATE DATABASE " + db + "' > /dev/null").c_str()), 0);
  std::string dir = temp_dir("pgcli");
  std::string cmd = std::string(CREATORD_BINARY) + " migrate --database-url " + url + " >> " + dir + "/out.txt 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
  EXPECT_EQ(std::system(cmd.c_str()), 0);  // again: nothing to do
  std::system((psql + "'DROP DATABASE IF EXISTS " + db + " WITH (FORCE)' > /dev/null").c_str());
  std::filesystem::remove_all(dir);
}
