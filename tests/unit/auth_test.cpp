// Scopes, key secrets and the JWT verifier, with real tokens signed by tests/auth/jwt_tool.py
// (PyJWT and cryptography) at a fixed time, which the verifier is given.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "auth/api_keys.hpp"
#include "auth/jwt.hpp"
#include "auth/keyring.hpp"
#include "auth/principal.hpp"
#include "run_awaitable.hpp"
#include "store_fixture.hpp"

using namespace creatord;
using namespace creatord::auth;

namespace {

constexpr int64_t kNow = 1'800'000'000;
const std::string kSecret = "a-test-secret-of-at-least-32-characters!";

std::string shell(const std::string& command) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class Jwt : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = (std::filesystem::temp_directory_path() / ("creatord-jwt-" + std::to_string(::getpid()))).string();
    ASSERT_EQ(std::system(("/usr/bin/python3 " JWT_TOOL " keys " + dir_).c_str()), 0);
    auto keys = parse_jwks(read_file(dir_ + "/jwks-all.json"));
    ASSERT_TRUE(keys.ok());
    all_ = keys.value();
  }
  static void TearDownTestSuite() { std::filesystem::remove_all(dir_); }

  // A token signed at kNow; `args` as jwt_tool.py sign takes them.
  static std::string token(const std::string& args, const std::string& claims = R"({"sub":"user-1"})") {
    return shell("/usr/bin/python3 " JWT_TOOL " sign --now " + std::to_string(kNow) + " --claims '" + claims + "' " + args);
  }
  static std::string hs(const std::string& extra = "--exp-in 3600", const std::string& claims = R"({"sub":"user-1"})") {
    return token("--alg HS256 --key '" + kSecret + "' " + extra, claims);
  }
  JwtOptions hs_options() const {
    JwtOptions o;
    o.hs256_secret = kSecret;
    return o;
  }

  static std::string dir_;
  static std::vector<Jwk> all_;
};
std::string Jwt::dir_;
std::vector<Jwk> Jwt::all_;

}  // namespace

TEST(Scopes, ParseListsAndAdminImpliesEveryScope) {
  EXPECT_EQ(parse_scopes("read, write").value(), kRead | kWrite);
  EXPECT_EQ(parse_scopes("all").value(), kAllScopes);
  EXPECT_FALSE(parse_scopes("read,root").ok());
  EXPECT_NE(parse_scopes("read,root").error().message.find("root"), std::string::npos);
  EXPECT_FALSE(parse_scopes("").ok());
  EXPECT_EQ(scopes_text(kGenerate | kRead), "read,generate");
  EXPECT_EQ(scopes_text(kAdmin | kRead), "admin");
  Principal p;
  p.scopes = kRead;
  EXPECT_TRUE(p.has(kRead));
  EXPECT_FALSE(p.has(kWrite));
  p.scopes = kAdmin;
  EXPECT_TRUE(p.has(kEmail));
  EXPECT_EQ(p.name(), "anonymous");
  p.kind = Principal::Kind::key;
  p.id = "7";
  EXPECT_EQ(p.name(), "key:7");
}

TEST(ApiKeys, SecretsAreRandomAndOnlyTheirHashAndPrefixAreKept) {
  std::string a = generate_key_secret(), b = generate_key_secret();
  EXPECT_NE(a, b);
  EXPECT_EQ(a.rfind("crd_", 0), 0u);
  EXPECT_EQ(a.size(), 4u + 43u);
  EXPECT_TRUE(looks_like_api_key(a));
  EXPECT_EQ(key_hash(a).size(), 64u);
  EXPECT_EQ(key_prefix(a), a.substr(0, 10));
  auto raw = base64url_decode(a.substr(4));
  ASSERT_TRUE(raw);
  EXPECT_EQ(raw->size(), 32u);
  EXPECT_EQ(base64url_encode(*raw), a.substr(4));
  EXPECT_FALSE(base64url_decode("ab+/"));
  EXPECT_FALSE(base64url_decode("a"));
}

TEST_F(Jwt, AValidHs256TokenYieldsItsSubject) {
  auto v = verify_jwt(hs(), hs_options(), {}, kNow);
  EXPECT_TRUE(v.ok()) << v.reason;
  EXPECT_EQ(v.subject, "user-1");
}

TEST_F(Jwt, ExpiryAndNotBeforeAllowTheLeewayAndNoMore) {
  EXPECT_EQ(verify_jwt(hs("--exp-in -100"), hs_options(), {}, kNow).failure, JwtFailure::expired);
  EXPECT_TRUE(verify_jwt(hs("--exp-in -10"), hs_options(), {}, kNow).ok()) << "within 30 s of skew";
  EXPECT_EQ(verify_jwt(hs("--exp-in 3600 --nbf-in 100"), hs_options(), {}, kNow).failure, JwtFailure::not_yet_valid);
  EXPECT_TRUE(verify_jwt(hs("--exp-in 3600 --nbf-in 10"), hs_options(), {}, kNow).ok());
  EXPECT_EQ(verify_jwt(hs(""), hs_options(), {}, kNow).failure, JwtFailure::expired) << "no exp at all";
}

TEST_F(Jwt, IssuerAndAudienceMustMatchWhenConfigured) {
  auto o = hs_options();
  o.issuer = "https://example.supabase.co/auth/v1";
  o.audiences = {"authenticated"};
  std::string good = R"({"sub":"u","iss":"https://example.supabase.co/auth/v1","aud":"authenticated"})";
  EXPECT_TRUE(verify_jwt(hs("--exp-in 60", good), o, {}, kNow).ok());
  EXPECT_TRUE(verify_jwt(hs("--exp-in 60", R"({"sub":"u","iss":"https://example.supabase.co/auth/v1","aud":["x","authenticated"]})"), o, {}, kNow).ok());
  EXPECT_EQ(verify_jwt(hs("--exp-in 60", R"({"sub":"u","iss":"https://example.supabase.co/auth/v1","aud":"anon"})"), o, {}, kNow).failure,
            JwtFailure::wrong_audience);
  EXPECT_EQ(verify_jwt(hs("--exp-in 60", R"({"sub":"u","iss":"https://evil.example/auth/v1","aud":"authenticated"})"), o, {}, kNow).failure,
            JwtFailure::wrong_issuer);
  EXPECT_EQ(verify_jwt(hs("--exp-in 60", R"({"iss":"https://example.supabase.co/auth/v1","aud":"authenticated"})"), o, {}, kNow).failure,
            JwtFailure::no_subject);
}

TEST_F(Jwt, AlgNoneAndUnacceptedAlgorithmsAreRefused) {
  EXPECT_EQ(verify_jwt(token("--alg none --exp-in 60"), hs_options(), all_, kNow).failure, JwtFailure::bad_algorithm);
  EXPECT_EQ(verify_jwt(hs(), JwtOptions{}, all_, kNow).failure, JwtFailure::bad_algorithm) << "HS256 without a secret";
}

TEST_F(Jwt, AnRsaPublicKeyUsedAsAnHs256SecretDoesNotPass) {
  std::string forged = token("--alg HS256 --kid rsa1 --key @" + dir_ + "/rsa1.pub.pem --exp-in 60");
  EXPECT_EQ(verify_jwt(forged, JwtOptions{}, all_, kNow).failure, JwtFailure::bad_algorithm);
  EXPECT_EQ(verify_jwt(forged, hs_options(), all_, kNow).failure, JwtFailure::bad_signature);
}

TEST_F(Jwt, Rs256AndEs256VerifyAgainstTheJwks) {
  auto rs = verify_jwt(token("--alg RS256 --kid rsa1 --key " + dir_ + "/rsa1.pem --exp-in 60"), {}, all_, kNow);
  EXPECT_TRUE(rs.ok()) << rs.reason;
  auto es = verify_jwt(token("--alg ES256 --kid ec1 --key " + dir_ + "/ec1.pem --exp-in 60"), {}, all_, kNow);
  EXPECT_TRUE(es.ok()) << es.reason;
  EXPECT_EQ(es.subject, "user-1");
}

TEST_F(Jwt, TamperingWrongKeysAndUnknownKeyIdsAreTold) {
  EXPECT_EQ(verify_jwt(token("--alg RS256 --kid rsa1 --key " + dir_ + "/rsa1.pem --exp-in 60 --tamper"), {}, all_, kNow).failure,
            JwtFailure::bad_signature);
  EXPECT_EQ(verify_jwt(hs("--exp-in 60 --tamper"), hs_options(), {}, kNow).failure, JwtFailure::bad_signature);
  EXPECT_EQ(verify_jwt(token("--alg RS256 --kid rsa1 --key " + dir_ + "/rsa2.pem --exp-in 60"), {}, all_, kNow).failure,
            JwtFailure::bad_signature)
      << "signed by another key than its kid names";
  auto unknown = verify_jwt(token("--alg RS256 --kid rotated --key " + dir_ + "/rsa2.pem --exp-in 60"), {}, all_, kNow);
  EXPECT_EQ(unknown.failure, JwtFailure::unknown_key);
  EXPECT_EQ(unknown.kid, "rotated");
  EXPECT_EQ(verify_jwt(token("--alg RS256 --kid ec1 --key " + dir_ + "/rsa1.pem --exp-in 60"), {}, all_, kNow).failure,
            JwtFailure::bad_algorithm)
      << "an RS256 token naming an EC key";
  for (std::string bad : {"", "a.b", "a.b.c", "....", "eyJhbGciOiJIUzI1NiJ9.e30.", "x.y.z.w"})
    EXPECT_FALSE(verify_jwt(bad, hs_options(), all_, kNow).ok()) << bad;
}

TEST_F(Jwt, JwksParsingKeepsOnlyUsableKeys) {
  EXPECT_EQ(all_.size(), 3u);
  EXPECT_FALSE(parse_jwks("[]").ok());
  auto some = parse_jwks(R"({"keys":[{"kty":"oct","k":"AAAA"},{"kty":"RSA","n":"AQAB","e":"AQAB"},
                                     {"kty":"EC","crv":"P-384","x":"AA","y":"AA"},7]})");
  ASSERT_TRUE(some.ok());
  EXPECT_TRUE(some->empty()) << "a symmetric key, a too-small RSA key, another curve";
}

namespace {
class KeyStoreTest : public StoreFixture {
 protected:
  KeyStore& keys() { return *dynamic_cast<KeyStore*>(stores_); }
  ApiKey create(const std::string& secret, Scopes scopes, int64_t at = 1000) {
    auto k = run(keys().create_key(NewApiKey{"k", key_prefix(secret), key_hash(secret), scopes}, at));
    EXPECT_TRUE(k.ok()) << k.error().message;
    return k.value();
  }
};
}  // namespace

TEST_P(KeyStoreTest, KeysAreCreatedListedTouchedAndRevoked) {
  std::string secret = generate_key_secret();
  ApiKey a = create(secret, kRead | kGenerate);
  EXPECT_EQ(a.scopes, kRead | kGenerate);
  EXPECT_EQ(a.hash, key_hash(secret));
  EXPECT_FALSE(a.revoked_at_ms);
  ApiKey b = create(generate_key_secret(), kAdmin, 2000);
  ASSERT_TRUE(run(keys().touch_keys({{a.id, 5000}, {b.id, 7000}})).ok());
  ASSERT_TRUE(run(keys().touch_keys({{a.id, 4000}})).ok());  // an older use never moves it back
  auto list = run(keys().list_keys());
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ(list->at(0).id, a.id);
  EXPECT_EQ(list->at(0).last_used_at_ms, 5000);
  EXPECT_EQ(list->at(1).last_used_at_ms, 7000);
  EXPECT_EQ(list->at(1).scopes, kAdmin);
  auto revoked = run(keys().revoke_key(a.id, 9000));
  ASSERT_TRUE(revoked.ok());
  EXPECT_EQ(revoked->revoked_at_ms, 9000);
  EXPECT_EQ(run(keys().revoke_key(a.id, 9999))->revoked_at_ms, 9000) << "the first revocation stands";
  EXPECT_EQ(run(keys().revoke_key(12345, 9000)).error().code, ErrorCode::not_found);
  EXPECT_EQ(run(keys().create_key(NewApiKey{"dup", "p", key_hash(secret), kRead}, 1)).error().code, ErrorCode::conflict)
      << "one hash, one key";
}

TEST_P(KeyStoreTest, TheKeyringSeesNewAndRevokedKeysOnRefreshAndWritesUsesInABatch) {
  Keyring ring(keys());
  ASSERT_TRUE(run(ring.refresh()).ok());
  EXPECT_FALSE(ring.any_keys());
  std::string secret = generate_key_secret();
  ApiKey k = create(secret, kRead);
  EXPECT_FALSE(ring.authenticate(secret, 1)) << "not until the next refresh";
  ASSERT_TRUE(run(ring.refresh()).ok());
  EXPECT_TRUE(ring.any_keys());
  auto p = ring.authenticate(secret, 4242);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->name(), "key:" + std::to_string(k.id));
  EXPECT_FALSE(p->public_only);
  EXPECT_FALSE(ring.authenticate(secret + "x", 1));
  EXPECT_FALSE(run(keys().list_keys())->at(0).last_used_at_ms) << "a use is written on refresh, not on the request";
  ASSERT_TRUE(run(ring.refresh()).ok());
  EXPECT_EQ(run(keys().list_keys())->at(0).last_used_at_ms, 4242);
  ASSERT_TRUE(run(keys().revoke_key(k.id, 5000)).ok());
  ASSERT_TRUE(run(ring.refresh()).ok());
  EXPECT_FALSE(ring.authenticate(secret, 1));
  EXPECT_TRUE(ring.any_keys()) << "revoking every key does not turn credentials off";
}

INSTANTIATE_TEST_SUITE_P(Stores, KeyStoreTest, ::testing::Values("sqlite", "postgres"), store_param_name);
