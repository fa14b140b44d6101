#include "core/redact.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

using namespace creatord;

namespace {
class Redact : public ::testing::Test {
 protected:
  void SetUp() override { clear_secrets(); }
  void TearDown() override { clear_secrets(); }
};
}  // namespace

TEST_F(Redact, ReplacesEverySecretAndItsPercentEncodedForm) {
  add_secret("k3y/with space");
  EXPECT_EQ(redact("GET /v1?api_key=k3y/with space failed; k3y/with space again"),
            "GET /v1?api_key=[redacted] failed; [redacted] again");
  EXPECT_EQ(redact("https://api.example.com/v1?key=k3y%2Fwith%20space: 401"), "https://api.example.com/v1?key=[redacted]: 401");
  EXPECT_EQ(redact("nothing secret here"), "nothing secret here");
  EXPECT_FALSE(needs_redaction("nothing secret here"));
}

TEST_F(Redact, ALongerSecretContainingAShorterOneIsReplacedWhole) {
  add_secret("abcd");
  add_secret("abcdefgh");
  EXPECT_EQ(redact("x abcdefgh y abcd"), "x [redacted] y [redacted]");
}

TEST_F(Redact, ShortValuesAreNotSecrets) {
  add_secret("on");
  add_secret("");
  EXPECT_EQ(redact("connection refused on port 1"), "connection refused on port 1");
}

TEST_F(Redact, UrlUserinfoIsRedactedWithoutBeingConfigured) {
  EXPECT_EQ(redact("http://admin:hunter2@10.0.0.1:8080/x?y=1: refused"), "http://[redacted]@10.0.0.1:8080/x?y=1: refused");
  EXPECT_EQ(redact("postgres://u:p@db/x and smtp://mail@host"), "postgres://[redacted]@db/x and smtp://[redacted]@host");
  EXPECT_EQ(redact("see https://example.com/a@b and mailto:a@b.c"), "see https://example.com/a@b and mailto:a@b.c");
}

TEST_F(Redact, UrlPasswordsBecomeSecretsEverywhere) {
  add_url_password_secret("postgresql://creatord:db-pass-123@db.example.com:5432/creatord");
  EXPECT_EQ(redact("auth failed for password db-pass-123"), "auth failed for password [redacted]");
  add_url_password_secret("sqlite://data/creatord.db");  // no userinfo: nothing added
  EXPECT_EQ(redact("sqlite"), "sqlite");
}

TEST_F(Redact, JsonStringsAreRedactedAtAnyDepth) {
  add_secret("tok-123456");
  boost::json::value v = boost::json::parse(R"({"a":["x tok-123456"],"b":{"tok-123456":"tok-123456"},"n":1})");
  redact_json(v);
  EXPECT_EQ(boost::json::serialize(v), R"({"a":["x [redacted]"],"b":{"tok-123456":"[redacted]"},"n":1})");
}

TEST_F(Redact, APercentEncodedUrlPasswordIsASecretDecodedToo) {
  add_url_password_secret("postgres://creatord:p%40ss-w0rd@db/x");
  EXPECT_EQ(redact("password p@ss-w0rd rejected"), "password [redacted] rejected");
}
