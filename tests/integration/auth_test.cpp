// Issue 15: API keys with scopes (created, listed and revoked with `creatord keys` while the
// server runs), the scope of every route, anonymous reads of public fields, and JWT bearer
// tokens (HS256 with a secret, RS256/ES256 from a JWKS URL) made by tests/auth/jwt_tool.py.
#include <filesystem>
#include <iterator>
#include <sstream>
#include <fstream>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "../unit/test_images.hpp"
#include "harness.hpp"

using namespace harness;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

const std::string kToken = "auth-test-token-0123456789abcdef";
const Headers kAuth = {{"Authorization", "Bearer " + kToken}};
const std::string kJwtSecret = "a-test-secret-of-at-least-32-characters!";

Headers bearer(const std::string& credential) { return {{"Authorization", "Bearer " + credential}}; }

// A command's output without its last newline (and its exit status).
std::string run(const std::string& command, int* rc = nullptr) {
  auto r = run_command(command);
  if (rc) *rc = r.rc;
  while (!r.out.empty() && r.out.back() == '\n') r.out.pop_back();
  return r.out;
}

// `creatord keys ...` against the server's store, as an operator would run it beside the server.
std::string keys_cli(const Server& s, const std::string& args, int* rc = nullptr) {
  std::string bin = CREATORD_BINARY;
  if (testing_postgres()) bin += " --database-url " + postgres_url_for(s.data_dir());
  return run(bin + " keys " + args + " --data-dir " + s.data_dir() + " 2>/dev/null", rc);
}

std::string create_key(const Server& s, const std::string& scopes, const std::string& name) {
  int rc = -1;
  std::string secret = keys_cli(s, "create --scopes " + scopes + " --name " + name, &rc);
  EXPECT_EQ(rc, 0) << secret;
  EXPECT_EQ(secret.rfind("crd_", 0), 0u) << secret;
  return secret;
}

// Polls until pred(GET target with headers) holds or the time is up (keys take effect within
// --api-key-refresh).
Response poll_get(uint16_t port, const std::string& target, const Headers& h, const std::function<bool(const Response&)>& pred) {
  auto deadline = std::chrono::steady_clock::now() + 10s;
  Response r;
  do {
    r = get(port, target, h);
    if (pred(r)) return r;
    std::this_thread::sleep_for(50ms);
  } while (std::chrono::steady_clock::now() < deadline);
  return r;
}

std::string error_message(const Response& r) {
  auto v = r.json();
  return v.is_object() && v.as_object().contains("error") ? std::string(v.at("error").at("message").as_string()) : "";
}

int64_t make_creator(uint16_t port, const Headers& h, const std::string& handle = "authperson") {
  auto r = post_json(port, "/api/creators", R"({"name":"Auth Person","handle":")" + handle + R"(","email":"person@example.com"})", h);
  EXPECT_EQ(r.status, 201) << r.body;
  return r.status == 201 ? r.json().at("id").as_int64() : 0;
}

}  // namespace

TEST(Auth, KeysCreatedListedAndRevokedWhileTheServerRunsTakeEffectPromptly) {
  Server s({.args = {"--api-key-refresh", "0.2"}, .env = {{"CREATORD_API_TOKENS", kToken}}});
  std::string reader = create_key(s, "read", "dashboard");
  // A new key is accepted once the server has reloaded the keys (a bad one is 401, even to read).
  auto ok = poll_get(s.port(), "/api/creators", bearer(reader), [](const Response& r) { return r.status == 200; });
  EXPECT_EQ(ok.status, 200) << ok.body;
  auto wrong = get(s.port(), "/api/creators", bearer("crd_not-a-key-at-all"));
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(wrong.header("www-authenticate"), "Bearer error=\"invalid_token\"");

  // Scopes: a read key cannot write; the 403 names the scope.
  auto refused = post_json(s.port(), "/api/creators", R"({"name":"x","handle":"x"})", bearer(reader));
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_EQ(refused.json().at("error").at("code").as_string(), "forbidden");
  EXPECT_NE(error_message(refused).find("'write'"), std::string::npos) << refused.body;
  EXPECT_EQ(get(s.port(), "/api/creators", kAuth).status, 200);
  std::string writer = create_key(s, "write,read", "importer");
  poll_get(s.port(), "/api/creators", bearer(writer), [](const Response& r) { return r.status == 200; });
  EXPECT_EQ(post_json(s.port(), "/api/creators", R"({"name":"x","handle":"x"})", bearer(writer)).status, 201);

  // The list shows both, with last use recorded (written in the background, batched).
  std::string listed;
  auto last_used = [&](const std::string& name) {
    std::istringstream lines(listed);
    for (std::string line; std::getline(lines, line);) {
      std::istringstream cols(line);
      std::vector<std::string> c{std::istream_iterator<std::string>(cols), {}};
      if (c.size() == 7 && c[1] == name) return c[5];  // ID NAME PREFIX SCOPES CREATED LAST-USED REVOKED
    }
    return std::string("missing");
  };
  for (int i = 0; i < 100; ++i) {
    listed = keys_cli(s, "list");
    if (last_used("dashboard") != "-" && last_used("dashboard") != "missing" && last_used("importer") != "-" &&
        last_used("importer") != "missing")
      break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(last_used("dashboard").back(), 'Z') << listed;
  EXPECT_EQ(last_used("importer").back(), 'Z') << listed;
  EXPECT_NE(listed.find(reader.substr(0, 10)), std::string::npos) << "the prefix tells keys apart";
  EXPECT_EQ(listed.find(reader), std::string::npos) << "never the secret";

  // Revoked: refused once the server reloads.
  int rc = -1;
  std::string first_id = "1";
  keys_cli(s, "revoke " + first_id, &rc);
  EXPECT_EQ(rc, 0);
  auto gone = poll_get(s.port(), "/api/creators", bearer(reader), [](const Response& r) { return r.status == 401; });
  EXPECT_EQ(gone.status, 401) << gone.body;
  keys_cli(s, "revoke 999", &rc);
  EXPECT_EQ(rc, 3) << "no such key";
  keys_cli(s, "create --scopes root --name x", &rc);
  EXPECT_NE(rc, 0) << "unknown scope";

  // Only a hash is stored; the access log names the principal, never the credential.
  if (!testing_postgres()) {
    std::ifstream db(s.data_dir() + "/creatord.db", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(db)), {});
    EXPECT_EQ(bytes.find(writer), std::string::npos);
  }
  EXPECT_TRUE(s.wait_output("key:2"));
  std::string out = s.output();
  EXPECT_EQ(out.find(writer), std::string::npos);
  EXPECT_EQ(out.find(kToken), std::string::npos);
  EXPECT_NE(out.find("token:"), std::string::npos);
}

// One row per operation of the OpenAPI document: the scope it needs. Every key lacking it gets
// 403 naming it; a key with it gets past authorization; no credential gets 401 (reads: public).
TEST(Auth, EveryRouteNeedsItsScope) {
  struct RouteScope {
    std::string method, path, scope;
  };
  const std::vector<RouteScope> table = {
      {"GET", "/healthz", "public"},
      {"GET", "/readyz", "public"},
      {"GET", "/openapi.json", "public"},
      {"GET", "/docs", "public"},
      {"GET", "/docs/{file}", "public"},
      {"GET", "/", "public"},
      {"GET", "/ui", "public"},
      {"GET", "/ui/{file}", "public"},
      {"GET", "/metrics", "read"},
      {"GET", "/api/creators", "read"},
      {"POST", "/api/creators", "write"},
      {"GET", "/api/creators/{id}", "read"},
      {"PATCH", "/api/creators/{id}", "write"},
      {"DELETE", "/api/creators/{id}", "write"},
      {"GET", "/api/creators/{id}/images", "read"},
      {"POST", "/api/creators/{id}/images", "write"},
      {"GET", "/api/images/{id}", "read"},
      {"DELETE", "/api/images/{id}", "write"},
      {"GET", "/api/images/{id}/content", "read"},
      {"POST", "/api/creators/{id}/generate", "generate"},
      {"GET", "/api/jobs", "read"},
      {"GET", "/api/jobs/{id}", "read"},
      {"POST", "/api/jobs/{id}/cancel", "generate"},
      {"POST", "/api/jobs/{id}/retry", "generate"},
      {"GET", "/api/jobs/{id}/events", "read"},
      {"GET", "/api/pipelines", "read"},
      {"GET", "/api/queues", "read"},
      {"POST", "/api/queues/{name}/pause", "admin"},
      {"POST", "/api/queues/{name}/resume", "admin"},
      {"GET", "/api/schedules", "read"},
      {"POST", "/api/send-email", "email"},
      {"GET", "/api/emails", "email"},
      {"GET", "/api/emails/{id}", "email"},
  };
  Server s({.args = {"--api-key-refresh", "0.2", "--run-jobs=false"}, .env = {{"CREATORD_API_TOKENS", kToken}}});
  // The table covers the document, and the document the router (a unit test checks that).
  auto doc = get(s.port(), "/openapi.json").json();
  std::set<std::pair<std::string, std::string>> documented, tabled;
  for (const auto& [path, item] : doc.at("paths").as_object())
    for (const auto& [method, op] : item.as_object()) {
      std::string m(method);
      std::transform(m.begin(), m.end(), m.begin(), ::toupper);
      documented.insert({m, std::string(path)});
      auto* x = op.as_object().if_contains("x-scope");
      ASSERT_TRUE(x) << m << " " << std::string_view(path);
      for (const auto& row : table)
        if (row.method == m && row.path == std::string_view(path))
          EXPECT_EQ(row.scope, x->as_string()) << m << " " << row.path;
    }
  for (const auto& row : table) tabled.insert({row.method, row.path});
  EXPECT_EQ(documented, tabled);

  std::map<std::string, std::string> keys;
  for (std::string scope : {"read", "write", "generate", "email", "admin"}) keys[scope] = create_key(s, scope, scope + "-key");
  for (const auto& [scope, secret] : keys)
    poll_get(s.port(), "/healthz", bearer(secret), [&](const Response&) {
      return get(s.port(), "/api/pipelines", bearer(secret)).status != 401;
    });
  auto concrete = [](std::string path) {
    for (auto [from, to] : {std::pair<std::string, std::string>{"{id}", "999999"}, {"{name}", "nope"}, {"{file}", "index.html"}})
      if (auto pos = path.find(from); pos != std::string::npos) path.replace(pos, from.size(), to);
    return path;
  };
  for (const auto& row : table) {
    std::string target = concrete(row.path);
    std::string body = row.method == "GET" || row.method == "DELETE" ? "" : "{}";
    Headers json_type = {{"Content-Type", "application/json"}};
    auto call = [&](const Headers& auth) {
      Headers h = auth;
      if (!body.empty()) h.insert(h.end(), json_type.begin(), json_type.end());
      return request(s.port(), row.method, target, body, h);
    };
    for (const auto& [scope, secret] : keys) {
      auto r = call(bearer(secret));
      bool allowed = row.scope == "public" || scope == row.scope || scope == "admin";
      if (allowed) {
        EXPECT_NE(r.status, 401) << row.method << " " << target << " with " << scope << ": " << r.body;
        EXPECT_NE(r.status, 403) << row.method << " " << target << " with " << scope << ": " << r.body;
      } else {
        EXPECT_EQ(r.status, 403) << row.method << " " << target << " with " << scope << ": " << r.body;
        EXPECT_NE(error_message(r).find("'" + row.scope + "'"), std::string::npos) << r.body;
      }
    }
    auto anonymous = call({});
    bool open_read = row.scope == "public" || (row.scope == "read" && row.path != "/metrics");
    if (open_read) EXPECT_NE(anonymous.status, 401) << row.method << " " << target << ": " << anonymous.body;
    else {
      EXPECT_EQ(anonymous.status, 401) << row.method << " " << target << ": " << anonymous.body;
      EXPECT_EQ(anonymous.header("www-authenticate"), "Bearer");
    }
    EXPECT_NE(call(kAuth).status, 403) << "a shared token has every scope: " << row.method << " " << target;
  }
}

TEST(Auth, AnonymousReadsSeeOnlyPublicFieldsAndPublicReadFalseClosesThem) {
  Server s({.args = {"--api-key-refresh", "0.2"}, .env = {{"CREATORD_API_TOKENS", kToken}}});
  int64_t cid = make_creator(s.port(), kAuth);
  std::string target = "/api/creators/" + std::to_string(cid);
  auto anon = get(s.port(), target).json();
  EXPECT_FALSE(anon.as_object().contains("email")) << json::serialize(anon);
  EXPECT_EQ(anon.at("handle").as_string(), "authperson");
  auto anon_list = get(s.port(), "/api/creators").json();
  EXPECT_FALSE(anon_list.at("items").at(0).as_object().contains("email"));
  EXPECT_EQ(get(s.port(), target, kAuth).json().at("email").as_string(), "person@example.com");
  // The list cache keeps public and full answers apart.
  EXPECT_EQ(get(s.port(), "/api/creators", kAuth).json().at("items").at(0).at("email").as_string(), "person@example.com");
  EXPECT_FALSE(get(s.port(), "/api/creators").json().at("items").at(0).as_object().contains("email"));
  std::string reader = create_key(s, "read", "reader");
  auto full = poll_get(s.port(), target, bearer(reader), [](const Response& r) { return r.status == 200; });
  EXPECT_EQ(full.json().at("email").as_string(), "person@example.com") << "a read key sees private fields";

  // A job's private fields and email jobs: not for anonymous callers, nor for a read key (email jobs).
  auto job = post_json(s.port(), target + "/generate?wait=30", R"({"pipeline":"diagnostic"})", kAuth).json();
  std::string job_target = "/api/jobs/" + std::to_string(job.at("id").as_int64());
  auto public_job = get(s.port(), job_target).json();
  for (const char* field : {"result", "error", "payload"}) EXPECT_FALSE(public_job.as_object().contains(field)) << field;
  auto keyed_job = get(s.port(), job_target, bearer(reader)).json();
  EXPECT_TRUE(keyed_job.as_object().contains("result")) << json::serialize(keyed_job);
  auto email_jobs = get(s.port(), "/api/jobs?kind=email", bearer(reader));
  EXPECT_EQ(email_jobs.status, 403) << email_jobs.body;
  EXPECT_EQ(get(s.port(), "/api/jobs?kind=email").status, 401);

  Server closed({.args = {"--public-read=false"}, .env = {{"CREATORD_API_TOKENS", kToken}}});
  for (std::string t : {"/api/creators", "/api/jobs", "/api/pipelines", "/api/queues", "/api/creators/1"}) {
    auto r = get(closed.port(), t);
    EXPECT_EQ(r.status, 401) << t << ": " << r.body;
    EXPECT_EQ(r.header("www-authenticate"), "Bearer");
    EXPECT_EQ(r.json().at("error").at("code").as_string(), "unauthorized");
  }
  EXPECT_EQ(get(closed.port(), "/healthz").status, 200);
  EXPECT_EQ(get(closed.port(), "/api/creators", kAuth).status, 200);
}

TEST(Auth, WithoutCredentialsConfiguredTheLoopbackDemoModeIsOpen) {
  Server s;
  int64_t cid = make_creator(s.port(), {});
  EXPECT_EQ(get(s.port(), "/api/creators/" + std::to_string(cid)).json().at("email").as_string(), "person@example.com");
  EXPECT_EQ(get(s.port(), "/api/emails").status, 403) << "email is never an open relay";
  // A key created later turns credentials on (revoking it does not turn them off).
  std::string key = create_key(s, "all", "first");
  auto r = poll_get(s.port(), "/api/creators/" + std::to_string(cid), {}, [](const Response& r) {
    return r.status == 200 && !r.json().as_object().contains("email");
  });
  EXPECT_FALSE(r.json().as_object().contains("email"));
  EXPECT_EQ(post_json(s.port(), "/api/creators", R"({"name":"y","handle":"y"})").status, 401);
  EXPECT_EQ(post_json(s.port(), "/api/creators", R"({"name":"y","handle":"y"})", bearer(key)).status, 201);
}

namespace {

// Keys made once per test: rsa1, rsa2 (RS256), ec1 (ES256), with JWKS documents beside them.
struct JwtKeys {
  std::string dir = temp_dir("jwt");
  JwtKeys() { EXPECT_EQ(std::system(("/usr/bin/python3 " JWT_TOOL " keys " + dir).c_str()), 0); }
  ~JwtKeys() { std::filesystem::remove_all(dir); }
  std::string sign(const std::string& args, const std::string& claims = R"({"sub":"user-1","aud":"authenticated"})") const {
    return run("/usr/bin/python3 " JWT_TOOL " sign --claims '" + claims + "' " + args);
  }
  std::string hs(const std::string& extra = "--exp-in 3600", const std::string& claims = R"({"sub":"user-1","aud":"authenticated"})") const {
    return sign("--alg HS256 --key '" + kJwtSecret + "' " + extra, claims);
  }
  std::string rs(const std::string& key, const std::string& kid, const std::string& extra = "--exp-in 3600") const {
    return sign("--alg " + std::string(key.rfind("ec", 0) == 0 ? "ES256" : "RS256") + " --key " + dir + "/" + key +
                ".pem --kid " + kid + " " + extra);
  }
};

// tests/auth/jwt_tool.py serve: DIR/jwks.json at /jwks.json, fetches counted, 503 while DIR/down.
struct JwksServer : ScriptServer {
  explicit JwksServer(const std::string& jwks_file) : ScriptServer(JWT_TOOL, {"--dir", "{dir}"}) {
    std::filesystem::copy_file(jwks_file, dir() + "/jwks.json", std::filesystem::copy_options::overwrite_existing);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port()) + "/jwks.json"; }
  int fetches() const {
    std::ifstream in(dir() + "/fetches");
    int n = 0;
    in >> n;
    return n;
  }
  void serve(const std::string& jwks_file) {
    std::filesystem::copy_file(jwks_file, dir() + "/jwks.tmp", std::filesystem::copy_options::overwrite_existing);
    std::filesystem::rename(dir() + "/jwks.tmp", dir() + "/jwks.json");
  }
  void down() { std::ofstream(dir() + "/down") << "down"; }
};

bool wait_for(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 10s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return pred();
}

void expect_401(const Response& r, const std::string& what) {
  EXPECT_EQ(r.status, 401) << what << ": " << r.body;
  EXPECT_EQ(r.header("www-authenticate"), "Bearer error=\"invalid_token\"") << what;
  auto v = r.json();
  ASSERT_TRUE(v.is_object() && v.as_object().contains("error")) << what << ": " << r.body;
  EXPECT_EQ(v.at("error").at("code").as_string(), "unauthorized") << what;
}

}  // namespace

TEST(AuthJwt, Hs256TokensAreCheckedForTimeAudienceIssuerAlgorithmAndSignature) {
  JwtKeys keys;
  Server s({.args = {"--public-read=false", "--jwt-secret", kJwtSecret, "--jwt-audience", "authenticated", "--jwt-issuer",
                     "https://project.supabase.co/auth/v1"}});
  const std::string iss = R"("iss":"https://project.supabase.co/auth/v1")";
  const std::string good = R"({"sub":"user-1","aud":"authenticated",)" + iss + "}";
  auto ok = get(s.port(), "/api/creators", bearer(keys.hs("--exp-in 3600", good)));
  EXPECT_EQ(ok.status, 200) << ok.body;
  expect_401(get(s.port(), "/api/creators", bearer(keys.hs("--exp-in -3600", good))), "expired");
  expect_401(get(s.port(), "/api/creators", bearer(keys.hs("--exp-in 3600 --nbf-in 3600", good))), "not yet valid");
  expect_401(get(s.port(), "/api/creators", bearer(keys.hs("--exp-in 3600", R"({"sub":"u","aud":"anon",)" + iss + "}"))), "wrong audience");
  expect_401(get(s.port(), "/api/creators", bearer(keys.hs("--exp-in 3600", R"({"sub":"u","aud":"authenticated","iss":"https://evil.example"})"))),
             "wrong issuer");
  expect_401(get(s.port(), "/api/creators", bearer(keys.sign("--alg none --exp-in 3600", good))), "alg none");
  expect_401(get(s.port(), "/api/creators", bearer(keys.hs("--exp-in 3600 --tamper", good))), "tampered payload");
  expect_401(get(s.port(), "/api/creators", bearer(keys.sign("--alg HS256 --key wrong-secret-wrong-secret-wrong-secret --exp-in 3600", good))),
             "another secret");
  expect_401(get(s.port(), "/api/creators", bearer(keys.rs("rsa1", "rsa1"))), "RS256 without a JWKS");
  // A signed-in user reads public fields and makes their own creator; deleting needs a key.
  Headers user = bearer(keys.hs("--exp-in 3600", good));
  auto own = post_json(s.port(), "/api/creators", R"({"name":"u","handle":"u"})", user);
  ASSERT_EQ(own.status, 201) << own.body;
  auto denied = request(s.port(), "DELETE", "/api/creators/" + std::to_string(own.json().at("id").as_int64()), "", user);
  EXPECT_EQ(denied.status, 403) << denied.body;
  EXPECT_NE(error_message(denied).find("'write'"), std::string::npos);
  EXPECT_TRUE(s.wait_output("user:user-1"));
}

TEST(AuthJwt, JwksKeysAreFetchedRotatedOnAnUnknownKidAtABoundedRateAndKeptWhenTheServerIsDown) {
  JwtKeys keys;
  JwksServer jwks(keys.dir + "/jwks-rsa1.json");
  Server s({.args = {"--public-read=false", "--jwks-url", jwks.url(), "--jwks-min-refresh", "60"}});
  ASSERT_TRUE(wait_for([&] { return jwks.fetches() >= 1; }));
  auto ok = get(s.port(), "/api/creators", bearer(keys.rs("rsa1", "rsa1")));
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(jwks.fetches(), 1);
  expect_401(get(s.port(), "/api/creators", bearer(keys.rs("rsa1", "rsa1", "--exp-in -3600"))), "expired");
  expect_401(get(s.port(), "/api/creators", bearer(keys.rs("rsa1", "rsa1", "--exp-in 3600 --tamper"))), "tampered");
  // HS/RS confusion: the RSA public key as an HS256 secret.
  expect_401(get(s.port(), "/api/creators",
                 bearer(keys.sign("--alg HS256 --kid rsa1 --key @" + keys.dir + "/rsa1.pub.pem --exp-in 3600"))),
             "HS256 signed with the RSA public key");

  // The provider rotates: a token naming a new key fetches the JWKS once, and passes.
  jwks.serve(keys.dir + "/jwks-all.json");
  auto rotated = get(s.port(), "/api/creators", bearer(keys.rs("ec1", "ec1")));
  EXPECT_EQ(rotated.status, 200) << rotated.body;
  EXPECT_EQ(jwks.fetches(), 2);
  // Made-up key ids do not fetch again within --jwks-min-refresh.
  for (int i = 0; i < 3; ++i) expect_401(get(s.port(), "/api/creators", bearer(keys.rs("rsa2", "made-up-" + std::to_string(i)))), "unknown kid");
  EXPECT_EQ(jwks.fetches(), 2);
  // The JWKS server goes down: the keys fetched stay in force.
  jwks.down();
  EXPECT_EQ(get(s.port(), "/api/creators", bearer(keys.rs("rsa2", "rsa2"))).status, 200);
  EXPECT_EQ(get(s.port(), "/api/creators", bearer(keys.rs("rsa1", "rsa1"))).status, 200);
}

TEST(AuthJwt, WithTheJwksServerDownFromTheStartTokensGet401Not500) {
  JwtKeys keys;
  JwksServer jwks(keys.dir + "/jwks-rsa1.json");
  jwks.down();
  Server s({.args = {"--jwks-url", jwks.url(), "--jwks-min-refresh", "0"}});
  ASSERT_TRUE(wait_for([&] { return jwks.fetches() >= 1; }));
  int before = jwks.fetches();
  expect_401(get(s.port(), "/api/creators", bearer(keys.rs("rsa1", "rsa1"))), "no keys at all");
  EXPECT_EQ(jwks.fetches(), before + 1) << "the unknown kid tried once more";
  EXPECT_EQ(get(s.port(), "/api/creators").status, 200) << "anonymous public reads are unaffected";
  jwks.stop();
  expect_401(get(s.port(), "/api/creators", bearer(keys.rs("rsa1", "rsa1"))), "JWKS server gone");
}

// Ownership: a signed-in user makes one creator for themselves, changes it, uploads to it,
// generates for it and reads its jobs in full; nobody else's. Anything else needs a key.
TEST(AuthOwnership, AUserActsOnTheirOwnCreatorAndNoOneElses) {
  JwtKeys keys;
  Server s({.args = {"--jwt-secret", kJwtSecret, "--api-key-refresh", "0.2"}, .env = {{"CREATORD_API_TOKENS", kToken}}});
  Headers alice = bearer(keys.hs("--exp-in 3600", R"({"sub":"alice"})"));
  Headers bob = bearer(keys.hs("--exp-in 3600", R"({"sub":"bob"})"));
  auto made = post_json(s.port(), "/api/creators", R"({"name":"Alice","handle":"alice","email":"alice@example.com"})", alice);
  ASSERT_EQ(made.status, 201) << made.body;
  EXPECT_EQ(made.json().at("owner").as_string(), "alice");
  int64_t a = made.json().at("id").as_int64();
  std::string at = "/api/creators/" + std::to_string(a);
  auto second = post_json(s.port(), "/api/creators", R"({"name":"Alice 2","handle":"alice2"})", alice);
  EXPECT_EQ(second.status, 409) << second.body;
  EXPECT_EQ(second.json().at("error").at("field").as_string(), "owner");
  int64_t b = make_creator(s.port(), bob, "bob");

  // Changing: one's own only.
  EXPECT_EQ(request(s.port(), "PATCH", at, R"({"bio":"mine"})", {{"Content-Type", "application/json"}, alice[0]}).status, 200);
  auto foreign = request(s.port(), "PATCH", at, R"({"bio":"not mine"})", {{"Content-Type", "application/json"}, bob[0]});
  EXPECT_EQ(foreign.status, 403) << foreign.body;
  EXPECT_NE(error_message(foreign).find("'write'"), std::string::npos) << foreign.body;
  EXPECT_EQ(get(s.port(), at).json().at("bio").as_string(), "mine");
  EXPECT_EQ(request(s.port(), "DELETE", at, "", alice).status, 403) << "deleting needs a key with write";

  // Images: upload to one's own only.
  std::string png = test_images::real_png(16, 16);
  auto up = request(s.port(), "POST", at + "/images", png, {{"Content-Type", "image/png"}, alice[0]});
  EXPECT_EQ(up.status, 201) << up.body;
  EXPECT_EQ(request(s.port(), "POST", at + "/images", png, {{"Content-Type", "image/png"}, bob[0]}).status, 403);
  if (up.status == 201)
    EXPECT_EQ(request(s.port(), "DELETE", "/api/images/" + std::to_string(up.json().at("id").as_int64()), "", bob).status, 403);

  // Jobs: generate for one's own; read one's own jobs in full, others' public fields only.
  auto job = post_json(s.port(), at + "/generate?wait=30", R"({"pipeline":"diagnostic"})", alice);
  ASSERT_TRUE(job.status == 200 || job.status == 202) << job.body;
  EXPECT_EQ(post_json(s.port(), at + "/generate", R"({"pipeline":"diagnostic"})", bob).status, 403);
  std::string job_at = "/api/jobs/" + std::to_string(job.json().at("id").as_int64());
  auto own = wait_job(s.port(), job.json().at("id").as_int64(), [](const json::value& j) { return job_in(j, {"succeeded"}); });
  auto mine = get(s.port(), job_at, alice).json();
  EXPECT_TRUE(mine.as_object().contains("result")) << json::serialize(mine);
  auto theirs = get(s.port(), job_at, bob).json();
  EXPECT_FALSE(theirs.as_object().contains("result")) << json::serialize(theirs);
  EXPECT_TRUE(get(s.port(), "/api/jobs?creator_id=" + std::to_string(a), alice).json().at("items").at(0).as_object().contains("result"));
  EXPECT_FALSE(get(s.port(), "/api/jobs?creator_id=" + std::to_string(a), bob).json().at("items").at(0).as_object().contains("result"));
  EXPECT_EQ(request(s.port(), "POST", job_at + "/cancel", "", bob).status, 403);

  // Private fields of the creator: to its owner.
  EXPECT_EQ(get(s.port(), at, alice).json().at("email").as_string(), "alice@example.com");
  EXPECT_FALSE(get(s.port(), at, bob).json().as_object().contains("email"));
  EXPECT_FALSE(get(s.port(), at).json().as_object().contains("owner"));
  EXPECT_FALSE(get(s.port(), "/api/creators/" + std::to_string(b), alice).json().as_object().contains("email"));

  // A key with the scope acts on any creator.
  std::string writer = create_key(s, "write", "support");
  auto fixed = poll_get(s.port(), "/healthz", {}, [&](const Response&) {
    return request(s.port(), "PATCH", at, R"({"bio":"fixed by support"})", {{"Content-Type", "application/json"}, bearer(writer)[0]}).status == 200;
  });
  EXPECT_EQ(get(s.port(), at).json().at("bio").as_string(), "fixed by support");
}

// Quotas count per principal: each user, key and token has its own, and a signed-in user's own
// (smaller) cap and rate apply within the per-principal ones.
TEST(AuthQuotas, EachUserHasTheirOwnUnfinishedJobsAndEnqueueRate) {
  JwtKeys keys;
  Server s({.args = {"--jwt-secret", kJwtSecret, "--run-jobs=false", "--enqueue-rate", "0", "--user-enqueue-rate", "0",
                     "--max-unfinished-jobs-per-user", "2"},
            .env = {{"CREATORD_API_TOKENS", kToken}}});
  Headers alice = bearer(keys.hs("--exp-in 3600", R"({"sub":"alice"})"));
  Headers bob = bearer(keys.hs("--exp-in 3600", R"({"sub":"bob"})"));
  int64_t a = make_creator(s.port(), alice, "alice");
  int64_t b = make_creator(s.port(), bob, "bob");
  auto gen = [&](int64_t cid, const Headers& h) {
    return post_json(s.port(), "/api/creators/" + std::to_string(cid) + "/generate", R"({"pipeline":"diagnostic"})", h);
  };
  EXPECT_EQ(gen(a, alice).status, 202);
  EXPECT_EQ(gen(a, alice).status, 202);
  auto full = gen(a, alice);
  EXPECT_EQ(full.status, 429) << full.body;
  EXPECT_FALSE(full.header("retry-after").empty());
  EXPECT_EQ(full.json().at("error").at("field").as_string(), "quota");
  EXPECT_EQ(gen(b, bob).status, 202) << "bob counts his own";
  EXPECT_EQ(gen(a, kAuth).status, 202) << "a shared token is not held to a user's cap";

  Server rated({.args = {"--jwt-secret", kJwtSecret, "--run-jobs=false", "--user-enqueue-rate", "1", "--user-enqueue-burst", "2"},
                .env = {{"CREATORD_API_TOKENS", kToken}}});
  int64_t ra = make_creator(rated.port(), alice, "alice");
  auto rgen = [&](const Headers& h) {
    return post_json(rated.port(), "/api/creators/" + std::to_string(ra) + "/generate", R"({"pipeline":"diagnostic"})", h);
  };
  EXPECT_EQ(rgen(alice).status, 202);
  EXPECT_EQ(rgen(alice).status, 202);
  auto slow = rgen(alice);
  EXPECT_EQ(slow.status, 429) << slow.body;
  EXPECT_GE(std::stoi(slow.header("retry-after").empty() ? "0" : slow.header("retry-after")), 1);
  EXPECT_EQ(slow.json().at("error").at("field").as_string(), "rate");
  EXPECT_EQ(rgen(kAuth).status, 202) << "the user rate is the user's alone";
}

TEST(Auth, WithoutAnyCredentialOnlyLoopbackIsListenedOn) {
  Server refused({.args = {"--listen", "0.0.0.0:0"}, .expect_listening = false});
  EXPECT_EQ(refused.wait_exit(), 2);
  EXPECT_NE(refused.output().find("refusing to start"), std::string::npos) << refused.output();
  // A JWT setting is a credential: users must sign in.
  Server jwt({.args = {"--listen", "0.0.0.0:0", "--jwt-secret", kJwtSecret}});
  EXPECT_EQ(post_json(jwt.port(), "/api/creators", R"({"name":"n","handle":"n"})").status, 401);
}
