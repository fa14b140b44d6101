// Adversarial tests of what the server keeps and writes (issue 10): caches held to their byte
// budget, images decoded before they are accepted, storage failures seen. Each test names the
// defect it guards against and failed before its fix.
#include <string>

#include <gtest/gtest.h>

#include "harness.hpp"

using namespace harness;
using namespace std::chrono_literals;

namespace {

// The value of the first sample line of `series` in a /metrics text, or -1.
double metric(uint16_t port, const std::string& series) {
  auto text = get(port, "/metrics").body;
  auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

}  // namespace

// Defect 4: the creator-list cache grew to gigabytes (bounded by entries, keyed on the raw query).

TEST(Resources, ListCacheStaysWithinItsByteBudget) {
  constexpr size_t kBudget = 64 * 1024;
  Server s({.args = {"--response-cache-bytes", std::to_string(kBudget), "--list-cache-entries", "100000"}});
  auto p = s.port();
  for (int i = 0; i < 5; ++i)
    ASSERT_EQ(post_json(p, "/api/creators", R"({"name":"Cache )" + std::to_string(i) + R"(","handle":"cache)" +
                                                std::to_string(i) + "\"}").status, 201);
  // Unknown parameters are refused, so they cannot make entries.
  EXPECT_EQ(get(p, "/api/creators?limit=5&y=1").status, 400);
  // Every distinct search is a distinct answer: together they would hold far more than the budget.
  size_t offered = 0;
  for (int i = 0; i < 600; ++i) {
    std::string q = "nomatch" + std::to_string(i) + std::string(150, 'z');  // q: at most 200
    auto r = get(p, "/api/creators?limit=5&q=" + q);
    ASSERT_EQ(r.status, 200);
    offered += r.body.size() + q.size();
  }
  ASSERT_GT(offered, kBudget);
  double bytes = metric(p, "creatord_response_cache_bytes");
  double entries = metric(p, "creatord_response_cache_entries");
  EXPECT_GT(bytes, 0);
  EXPECT_LE(bytes, static_cast<double>(kBudget));
  EXPECT_GT(entries, 0);
  EXPECT_LT(entries, 600);
}

TEST(Resources, ListCacheKeysOnTheParsedQuery) {
  Server s;
  auto p = s.port();
  ASSERT_EQ(post_json(p, "/api/creators", R"({"name":"Ab","handle":"ab"})").status, 201);
  auto first = get(p, "/api/creators?limit=5&q=ab");
  ASSERT_EQ(first.status, 200);
  double entries = metric(p, "creatord_response_cache_entries");
  double hits = metric(p, "creatord_response_cache_hits_total");
  ASSERT_GE(entries, 1);
  // The same query spelled three other ways: the same entry answers.
  for (const char* same : {"/api/creators?q=ab&limit=5", "/api/creators?q=%61b&limit=05", "/api/creators?limit=5&q=a%62"}) {
    auto r = get(p, same);
    ASSERT_EQ(r.status, 200) << same;
    EXPECT_EQ(r.body, first.body) << same;
  }
  EXPECT_EQ(metric(p, "creatord_response_cache_entries"), entries);
  EXPECT_EQ(metric(p, "creatord_response_cache_hits_total"), hits + 3);
  // A write invalidates: the next read sees it.
  ASSERT_EQ(post_json(p, "/api/creators", R"({"name":"Abc","handle":"abc"})").status, 201);
  EXPECT_NE(get(p, "/api/creators?q=ab&limit=5").body.find("\"abc\""), std::string::npos);
}
