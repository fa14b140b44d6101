#include "http/router.hpp"

#include <gtest/gtest.h>

using namespace creatord::http;

namespace {
Handler noop() {
  return [](Request&) -> boost::asio::awaitable<Response> { co_return Response::empty(204); };
}
}  // namespace

TEST(Router, MatchesLiteralsAndParameters) {
  Router r;
  r.add(Method::get, "/api/creators", noop());
  r.add(Method::get, "/api/creators/{id}", noop());
  r.add(Method::get, "/api/creators/{id}/images", noop());
  auto m = r.match(Method::get, "/api/creators/42/images");
  ASSERT_EQ(m.outcome, Router::Outcome::found);
  ASSERT_EQ(m.params.size(), 1u);
  EXPECT_EQ(m.params[0], "42");
  EXPECT_EQ(r.match(Method::get, "/api/creators").outcome, Router::Outcome::found);
  EXPECT_EQ(r.match(Method::get, "/api/creators/").outcome, Router::Outcome::found);
  EXPECT_EQ(r.match(Method::get, "/api/creator").outcome, Router::Outcome::not_found);
  EXPECT_EQ(r.match(Method::get, "/api/creators//images").outcome, Router::Outcome::not_found);
  EXPECT_EQ(r.match(Method::get, "/").outcome, Router::Outcome::not_found);
}

TEST(Router, DecodesSegmentsAfterSplittingTheRawPath) {
  Router r;
  r.add(Method::get, "/api/creators/{id}", noop());
  r.add(Method::post, "/api/jobs/{id}/cancel", noop());
  auto m = r.match(Method::get, "/api/%63reators/a%20b");
  ASSERT_EQ(m.outcome, Router::Outcome::found);
  EXPECT_EQ(m.params.at(0), "a b");
  auto slash = r.match(Method::get, "/api/creators/1%2Fcancel");
  ASSERT_EQ(slash.outcome, Router::Outcome::found);
  EXPECT_EQ(slash.params.at(0), "1/cancel");  // one segment, never a path to another resource
  EXPECT_EQ(r.match(Method::post, "/api/jobs/1%2Fcancel").outcome, Router::Outcome::not_found);
  EXPECT_EQ(r.match(Method::get, "/api/creators/%ZZ").outcome, Router::Outcome::not_found);
}

TEST(Router, MethodNotAllowedListsAllowedMethods) {
  Router r;
  r.add(Method::get, "/api/creators/{id}", noop());
  r.add(Method::del, "/api/creators/{id}", noop());
  auto m = r.match(Method::put, "/api/creators/1");
  EXPECT_EQ(m.outcome, Router::Outcome::method_not_allowed);
  EXPECT_EQ(m.allow, "GET, HEAD, DELETE, OPTIONS");
}

TEST(Router, HeadUsesGetAndOptionsIsNotAnError) {
  Router r;
  r.add(Method::get, "/healthz", noop());
  EXPECT_EQ(r.match(Method::head, "/healthz").outcome, Router::Outcome::found);
  auto o = r.match(Method::options, "/healthz");
  EXPECT_NE(o.outcome, Router::Outcome::method_not_allowed);
  EXPECT_EQ(o.allow, "GET, HEAD, OPTIONS");
}

TEST(Router, BodyLimitAndTokenPerRoute) {
  Router r(1000);
  r.add(Method::post, "/a/{id}/images", noop(), {.body_limit = 5000});
  r.add(Method::post, "/a", noop());
  r.add(Method::post, "/mail", noop(), {.token_required = true});
  EXPECT_EQ(r.match(Method::post, "/a/7/images").body_limit, 5000u);
  EXPECT_EQ(r.match(Method::post, "/a").body_limit, 1000u);
  EXPECT_EQ(r.match(Method::post, "/nowhere").body_limit, 1000u);
  EXPECT_FALSE(r.match(Method::post, "/a").token_required);
  EXPECT_TRUE(r.match(Method::post, "/mail").token_required);
}

TEST(Message, SplitTargetDecodesAndValidates) {
  auto ok = split_target("/api/creators/%41b?q=caf%C3%A9&limit=2");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->first, "/api/creators/%41b");  // decoded per segment by the router
  EXPECT_EQ(ok->second, "q=caf%C3%A9&limit=2");
  EXPECT_FALSE(split_target("/a?q=%ZZ"));
  EXPECT_FALSE(split_target("/a?q=%C3"));     // truncated UTF-8
  EXPECT_FALSE(split_target("/a%ff"));        // invalid UTF-8 in the path
  EXPECT_FALSE(split_target("http://x/a"));   // absolute form is not served
  EXPECT_FALSE(split_target("/a?q=%4"));      // short escape
}

TEST(Message, QueryParamDecodes) {
  Request req;
  req.query = "q=caf%C3%A9+au+lait&limit=5&empty=&flag";
  EXPECT_EQ(req.query_param("q").value(), "café au lait");
  EXPECT_EQ(req.query_param("limit").value(), "5");
  EXPECT_EQ(req.query_param("empty").value(), "");
  EXPECT_EQ(req.query_param("flag").value(), "");
  EXPECT_FALSE(req.query_param("missing").has_value());
}

TEST(Message, Utf8Validation) {
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("日本語 ✓ 😀"));
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));          // overlong
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(is_valid_utf8("abc\xE2\x82"));       // truncated
}

TEST(Router, EachRouteDeclaresItsQueryParameters) {
  Router r;
  r.add(Method::get, "/api/creators", noop(), {.query = {"limit", "cursor", "q"}});
  r.add(Method::get, "/healthz", noop());
  auto m = r.match(Method::head, "/api/creators");
  ASSERT_EQ(m.outcome, Router::Outcome::found);
  ASSERT_NE(m.query, nullptr);
  EXPECT_EQ(unknown_query_param("limit=5&q=mei", *m.query), std::nullopt);
  EXPECT_EQ(unknown_query_param("limit=5&&cursor=x&", *m.query), std::nullopt);
  EXPECT_EQ(unknown_query_param("limit=5&limt=3", *m.query), "limt");
  EXPECT_EQ(unknown_query_param("l%69mit=1&pa+ge", *m.query), "pa ge");  // decoded, as handlers read them
  auto h = r.match(Method::get, "/healthz");
  ASSERT_NE(h.query, nullptr);
  EXPECT_EQ(unknown_query_param("", *h.query), std::nullopt);
  EXPECT_EQ(unknown_query_param("verbose", *h.query), "verbose");
}

#include "api/errors.hpp"

// Idempotency keys are scoped (Stripe's semantics): the same client key on another target or
// from another caller (principal) is another key; the same key, target and caller is the same key.
TEST(Idempotency, KeysAreScopedToTheTargetAndTheToken) {
  Request a;
  a.principal.kind = creatord::auth::Principal::Kind::token;
  a.principal.id = "aaaa";
  Request b;
  b.principal.kind = creatord::auth::Principal::Kind::key;
  b.principal.id = "aaaa";
  Request anonymous;
  using creatord::api::scoped_key;
  EXPECT_EQ(scoped_key(a, "generate:creator:7", "k1"), scoped_key(a, "generate:creator:7", "k1"));
  EXPECT_NE(scoped_key(a, "generate:creator:7", "k1"), scoped_key(a, "generate:creator:2", "k1"));
  EXPECT_NE(scoped_key(a, "generate:creator:7", "k1"), scoped_key(a, "send-email", "k1"));
  EXPECT_NE(scoped_key(a, "generate:creator:7", "k1"), scoped_key(b, "generate:creator:7", "k1"));
  EXPECT_NE(scoped_key(a, "generate:creator:7", "k1"), scoped_key(anonymous, "generate:creator:7", "k1"));
  EXPECT_NE(scoped_key(a, "generate:creator:7", "k1"), scoped_key(a, "generate:creator:7", "k2"));
}
