#include "jobs/pipeline_config.hpp"

#include <fstream>

#include <boost/json.hpp>
#include <gtest/gtest.h>
#include <unistd.h>

#include "jobs/template.hpp"

using namespace creatord;
namespace json = boost::json;

namespace {
std::string write(const std::string& text) {
  std::string path = ::testing::TempDir() + "/pipelines_" + std::to_string(::getpid()) + "_" +
                     ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".toml";
  std::ofstream(path) << text;
  return path;
}
std::string error_of(const std::string& text) {
  auto r = load_pipeline_file(write(text));
  return r ? "ok" : r.error().message;
}
const char* kStep = "[[pipeline]]\nname = \"p\"\n  [[pipeline.step]]\n  name = \"a\"\n  type = \"exec\"\n  command = [\"true\"]\n";
}  // namespace

TEST(Template, RendersPathsKeepingTypes) {
  auto ctx = json::parse(R"({"creator":{"name":"Mei","tags":["ink","sea"]},"steps":{"a":{"output":{"n":3,"list":[{"id":7}]}}}})");
  EXPECT_EQ(render_template(json::value("{{ creator.tags }}"), ctx).value(), json::parse(R"(["ink","sea"])"));
  EXPECT_EQ(render_template(json::value("{{steps.a.output.n}}"), ctx).value(), json::value(3));
  EXPECT_EQ(render_template(json::value("{{ steps.a.output.list.0.id }}"), ctx).value(), json::value(7));
  EXPECT_EQ(render_string("Hi {{ creator.name }}, {{ steps.a.output.n }} tags: {{ creator.tags }}", ctx).value(),
            R"(Hi Mei, 3 tags: ["ink","sea"])");
  auto obj = render_template(json::parse(R"({"who":"{{ creator.name }}","n":[1,"{{ steps.a.output.n }}"]})"), ctx);
  EXPECT_EQ(obj.value(), json::parse(R"({"who":"Mei","n":[1,3]})"));
  EXPECT_FALSE(render_string("{{ creator.missing }}", ctx));
  EXPECT_FALSE(render_string("{{ creator.tags.9 }}", ctx));
  EXPECT_FALSE(render_string("{{ unclosed", ctx));
  EXPECT_FALSE(check_template(json::value("{{ bad path! }}")));
  EXPECT_TRUE(check_template(json::parse(R"({"a":["{{ x.y }}"]})")));
}

TEST(Template, UrlValuesArePercentEncodedPerComponent) {
  auto ctx = json::parse(R"({"params":{"id":"a/../b","q":"x&y=1 #z","dots":"..","n":7,"url":"http://h/p?a=b"}})");
  EXPECT_EQ(render_url("https://api.example/v1/{{ params.id }}?q={{ params.q }}&n={{ params.n }}", ctx).value(),
            "https://api.example/v1/a%2F..%2Fb?q=x%26y%3D1%20%23z&n=7");
  EXPECT_FALSE(render_url("https://api.example/v1/{{ params.dots }}/x", ctx));   // would climb the path
  EXPECT_EQ(render_url("https://api.example/v1?d={{ params.dots }}", ctx).value(), "https://api.example/v1?d=..");
  EXPECT_EQ(render_url("{{ params.url | raw }}", ctx).value(), "http://h/p?a=b");
  EXPECT_EQ(render_string("{{ params.id | raw }}", ctx).value(), "a/../b");
  EXPECT_FALSE(check_template(json::value("{{ params.id | upper }}")));
  EXPECT_TRUE(check_template(json::value("{{ params.id | raw }}")));
  EXPECT_FALSE(check_url_template("{{ response.poll_url }}"));
  EXPECT_TRUE(check_url_template("{{ response.poll_url | raw }}"));
  EXPECT_TRUE(check_url_template("https://x/{{ params.id }}"));
}

TEST(Template, EnvironmentSecrets) {
  ::setenv("CREATORD_TEST_SECRET", "s3cr3t", 1);
  EXPECT_EQ(expand_env("Bearer ${CREATORD_TEST_SECRET}").value(), "Bearer s3cr3t");
  EXPECT_FALSE(expand_env("${CREATORD_TEST_UNSET_VARIABLE}"));
}

TEST(PipelineFile, LoadsAValidFile) {
  auto r = load_pipeline_file(write(std::string(kStep) +
                                    "  [[pipeline.step]]\n  name = \"b\"\n  type = \"http\"\n  needs = [\"a\"]\n"
                                    "  url = \"http://127.0.0.1:9/x\"\n  body = { v = \"{{ steps.a.output.v }}\" }\n"
                                    "  poll = { url = \"{{ response.next | raw }}\", interval_seconds = 0.5 }\n"));
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ(r->front().steps.size(), 2u);
  EXPECT_FALSE(r->front().builtin);
}

TEST(PipelineFile, EveryMistakeNamesItsLine) {
  auto has = [](const std::string& err, const std::string& where, const std::string& what) {
    return err.find(where) != std::string::npos && err.find(what) != std::string::npos;
  };
  EXPECT_PRED3(has, error_of("[[pipeline]]\nname = \"p\"\nname = \"q\"\n"), ":3:", "");               // TOML syntax
  EXPECT_PRED3(has, error_of(std::string(kStep) + "  colour = \"red\"\n"), ":7:", "unknown key `colour`");
  EXPECT_PRED3(has, error_of("[[pipeline]]\nname = \"p\"\n  [[pipeline.step]]\n  name = \"a\"\n  type = \"exec\"\n"), ":3:",
               "needs `command`");
  EXPECT_PRED3(has, error_of("[[pipeline]]\nname = \"p\"\n  [[pipeline.step]]\n  name = \"a\"\n  type = \"ftp\"\n"), ":5:",
               "`type` must be exec, http or noop");
  EXPECT_PRED3(has, error_of(std::string(kStep) + "  timeout_seconds = \"soon\"\n"), ":7:", "number of seconds");
  EXPECT_PRED3(has, error_of(std::string(kStep) + "  input = { x = \"{{ oops\" }\n"), ":7:", "unclosed");
  EXPECT_PRED3(has, error_of(std::string(kStep) + "  needs = [\"zzz\"]\n"), ":3:", "unknown step zzz");
  std::string cycle = "[[pipeline]]\nname = \"p\"\n"
                      "  [[pipeline.step]]\n  name = \"a\"\n  type = \"exec\"\n  command = [\"true\"]\n  needs = [\"b\"]\n"
                      "  [[pipeline.step]]\n  name = \"b\"\n  type = \"exec\"\n  command = [\"true\"]\n  needs = [\"a\"]\n";
  EXPECT_PRED3(has, error_of(cycle), ":3:", "cycle");
  EXPECT_PRED3(has, error_of(std::string(kStep) + std::string(kStep)), ":8:", "defined twice");
  EXPECT_PRED3(has, error_of("[[pipeline]]\nname = \"p\"\nresult = \"nope\"\n  [[pipeline.step]]\n  name = \"a\"\n  type = \"exec\"\n  command = [\"true\"]\n"),
               ":3:", "`result` names no step");
  EXPECT_PRED3(has, error_of("[[pipeline]]\nname = \"p\"\n  [[pipeline.step]]\n  name = \"a\"\n  type = \"http\"\n  url = \"ftp://x\"\n"),
               ":6:", "http://");
  EXPECT_PRED3(has, error_of("title = \"x\"\n"), ":1:", "unknown key `title`");
  EXPECT_NE(error_of("").find("no [[pipeline]]"), std::string::npos);
}

// Issue 16: what a job will need is checked before it exists.
TEST(PipelineFile, ParamsAreDeclaredWithTypesAndDefaults) {
  auto r = load_pipeline_file(write(
      "[[pipeline]]\nname = \"p\"\n  [pipeline.params]\n  style = { type = \"string\", default = \"neon\" }\n"
      "  size = { type = \"integer\" }\n"
      "  [[pipeline.step]]\n  name = \"a\"\n  type = \"exec\"\n  command = [\"true\"]\n"
      "  input = { s = \"{{ params.style }}\", n = \"{{ params.size }}\" }\n"));
  ASSERT_TRUE(r) << r.error().message;
  const Pipeline& p = r->front();
  auto ok = resolve_params(p, json::parse(R"({"size":3})"));
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(json::value(ok.value()), json::parse(R"({"size":3,"style":"neon"})"));
  auto missing = resolve_params(p, json::value(nullptr));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().field, "params.size");
  EXPECT_EQ(resolve_params(p, json::parse(R"({"size":"big"})")).error().field, "params.size");
  EXPECT_EQ(resolve_params(p, json::parse(R"({"size":1,"colour":"red"})")).error().field, "params.colour");
  auto shown = params_json(p);
  EXPECT_EQ(shown.at("style").at("default").as_string(), "neon");
  EXPECT_EQ(shown.at("size").at("required").as_bool(), true);
}

TEST(PipelineFile, ParamsATemplateNeedsAreRequiredAtEnqueue) {
  auto r = load_pipeline_file(write(std::string(kStep) + "  input = { s = \"{{ params.style.name }}\" }\n"));
  ASSERT_TRUE(r) << r.error().message;
  auto missing = resolve_params(r->front(), json::object{});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().field, "params.style");
  EXPECT_NE(missing.error().message.find("step a uses it"), std::string::npos) << missing.error().message;
  EXPECT_TRUE(resolve_params(r->front(), json::parse(R"({"style":{"name":"x"}})")));
  EXPECT_EQ(params_json(r->front()).at("style").at("type").as_string(), "any");
}

TEST(PipelineFile, ParamMistakesAndUnsetVariablesNameTheirLine) {
  auto has = [](const std::string& err, const std::string& where, const std::string& what) {
    return err.find(where) != std::string::npos && err.find(what) != std::string::npos;
  };
  std::string head = "[[pipeline]]\nname = \"p\"\n  [pipeline.params]\n";
  std::string step = "  [[pipeline.step]]\n  name = \"a\"\n  type = \"exec\"\n  command = [\"true\"]\n";
  EXPECT_PRED3(has, error_of(head + "  style = { type = \"colour\" }\n" + step), ":4:", "`type` must be");
  EXPECT_PRED3(has, error_of(head + "  n = { type = \"integer\", default = \"x\" }\n" + step), ":4:", "must be of type integer");
  EXPECT_PRED3(has, error_of(head + "  n = { type = \"integer\" }\n" + step + "  input = { x = \"{{ params.m }}\" }\n"),
               ":5:", "uses params.m");
  ::unsetenv("CREATORD_TEST_UNSET_BASE");
  EXPECT_PRED3(has, error_of(std::string(kStep) + "  env = { X = \"${CREATORD_TEST_UNSET_BASE}\" }\n"), ":7:",
               "environment variable CREATORD_TEST_UNSET_BASE is not set");
  EXPECT_PRED3(has,
               error_of("[[pipeline]]\nname = \"p\"\n  [[pipeline.step]]\n  name = \"a\"\n  type = \"http\"\n"
                        "  url = \"${CREATORD_TEST_UNSET_BASE}/x\"\n"),
               ":6:", "CREATORD_TEST_UNSET_BASE");
}

// Found by fuzz/pipelines: toml++ 3.3 reaches __builtin_unreachable() on some non-ASCII
// characters where it expects whitespace (U+00E9, U+FEFD, ...). TOML allows them only in strings
// and comments: elsewhere they are refused with the place, before toml++ sees them.
TEST(PipelineConfig, NonAsciiOutsideStringsIsRefusedWithItsPlace) {
  auto e = error_of("[[pipeline]]\nname = \"x\" \xC3\xA9\n");
  EXPECT_NE(e.find(":2:12: a non-ASCII character outside a string or comment"), std::string::npos) << e;
  e = error_of("\xEF\xBB\xBDour own\n");
  EXPECT_NE(e.find(":1:1: a non-ASCII character"), std::string::npos) << e;
  // In strings (all four kinds) and comments they are fine, and a byte order mark is allowed.
  auto ok = load_pipeline_file(write("\xEF\xBB\xBF# caf\xC3\xA9\n[[pipeline]]\nname = \"p\"\n"
                                     "description = \"caf\xC3\xA9 \\\" '''\"\nresult = 'r\xC3\xA9'\n"
                                     "[[pipeline.step]]\nname = \"r\xC3\xA9\"\ntype = \"builtin\"\n"));
  if (!ok) EXPECT_EQ(ok.error().message.find("non-ASCII"), std::string::npos) << ok.error().message;
}
