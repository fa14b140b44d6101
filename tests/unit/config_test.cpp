#include "app/config.hpp"

#include <cstdio>
#include <fstream>
#include <unistd.h>
#include <map>

#include <CLI/CLI.hpp>
#include <gtest/gtest.h>

using namespace creatord;

namespace {
std::map<std::string, std::string> g_env;
const char* fake_env(const char* name) {
  auto it = g_env.find(name);
  return it == g_env.end() ? nullptr : it->second.c_str();
}

struct Parsed {
  Config cfg;
  std::string error;
};

Parsed parse(std::vector<std::string> args) {
  Parsed p;
  CLI::App app;
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  add_options(app, p.cfg);
  args.insert(args.begin(), "creatord");
  auto merged = merge_sources(args, app, fake_env);
  if (!merged) {
    p.error = merged.error().message;
    return p;
  }
  std::vector<const char*> argv;
  for (const auto& a : merged.value()) argv.push_back(a.c_str());
  app.parse(static_cast<int>(argv.size()), argv.data());
  return p;
}

std::string write_file(const std::string& text) {
  // One file per test process: ctest runs the tests in parallel.
  std::string path = ::testing::TempDir() + "/creatord_test_" + std::to_string(::getpid()) + "_" +
                     ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".conf";
  std::ofstream(path) << text;
  return path;
}
}  // namespace

TEST(Config, DefaultsAreDocumentedValues) {
  g_env.clear();
  auto p = parse({});
  EXPECT_EQ(p.cfg.listen, "127.0.0.1:8000");
  EXPECT_EQ(p.cfg.data_dir, "./data");
  EXPECT_EQ(p.cfg.threads, 0u);
  EXPECT_FALSE(p.cfg.demo);
}

TEST(Config, FlagsBeatEnvironmentWhichBeatsTheFile) {
  auto file = write_file("# comment\nlisten = \"127.0.0.1:1111\"\ndata_dir = '/from/file'\nthreads = 3\n"
                         "cors-origins = [\"http://a\", \"http://b\"]\n");
  g_env = {{"CREATORD_LISTEN", "127.0.0.1:2222"}};
  auto p = parse({"--config", file, "--threads", "5"});
  ASSERT_EQ(p.error, "");
  EXPECT_EQ(p.cfg.listen, "127.0.0.1:2222");  // env over file
  EXPECT_EQ(p.cfg.data_dir, "/from/file");    // file over default
  EXPECT_EQ(p.cfg.threads, 5u);               // flag over file
  EXPECT_EQ(p.cfg.cors_origins, (std::vector<std::string>{"http://a", "http://b"}));
  g_env = {{"CREATORD_LISTEN", "127.0.0.1:2222"}, {"CREATORD_CONFIG", file}};
  auto q = parse({"--listen=127.0.0.1:3333"});
  EXPECT_EQ(q.cfg.listen, "127.0.0.1:3333");  // flag over env
  EXPECT_EQ(q.cfg.data_dir, "/from/file");    // CREATORD_CONFIG names the file
  g_env.clear();
}

TEST(Config, FileMistakesNameTheLine) {
  g_env.clear();
  auto unknown = parse({"--config", write_file("listen = \"x:1\"\ncolour = blue\n")});
  EXPECT_NE(unknown.error.find(":2: unknown setting 'colour'"), std::string::npos) << unknown.error;
  auto no_eq = parse({"--config", write_file("\n\nlisten\n")});
  EXPECT_NE(no_eq.error.find(":3: expected key = value"), std::string::npos) << no_eq.error;
  auto missing = parse({"--config", "/nonexistent/creatord.conf"});
  EXPECT_NE(missing.error.find("cannot read"), std::string::npos);
}

TEST(Config, FileValuesAreCheckedWhereTheyAreWritten) {
  g_env.clear();
  auto p = parse({"--config", write_file("# threads\nlisten = \"127.0.0.1:1\"\nthreads = \"two\"\n")});
  EXPECT_NE(p.error.find(".conf:3: bad value 'two' for 'threads'"), std::string::npos) << p.error;
  auto q = parse({"--config", write_file("sqlite-synchronous = SOMETIMES\n")});
  EXPECT_NE(q.error.find(".conf:1: bad value 'SOMETIMES' for 'sqlite-synchronous'"), std::string::npos) << q.error;
  auto ok = parse({"--config", write_file("threads = 2\nrender-idle = false\n")});
  EXPECT_EQ(ok.error, "");
  EXPECT_EQ(ok.cfg.threads, 2u);
  EXPECT_FALSE(ok.cfg.render_idle);
}

TEST(Config, BooleansTakeTheirValueWithASpaceOrAnEqualsSign) {
  g_env.clear();
  EXPECT_FALSE(parse({"--render-idle", "false"}).cfg.render_idle);
  EXPECT_FALSE(parse({"--render-idle=false"}).cfg.render_idle);
  EXPECT_TRUE(parse({"--render-idle", "true"}).cfg.render_idle);
  EXPECT_TRUE(parse({"--demo"}).cfg.demo);
  EXPECT_TRUE(parse({"--demo", "true", "--threads", "1"}).cfg.demo);
  EXPECT_FALSE(parse({"--access-log", "off"}).cfg.access_log);
  EXPECT_FALSE(parse({"--run-jobs", "no"}).cfg.run_jobs);
  EXPECT_FALSE(parse({"--smtp-verify-tls", "0"}).cfg.smtp_verify_tls);
  // A word that is no boolean stays an argument of its own.
  auto p = parse({"--demo", "--threads", "3"});
  EXPECT_TRUE(p.cfg.demo);
  EXPECT_EQ(p.cfg.threads, 3u);
}

TEST(Config, EnvironmentListsSplitOnCommas) {
  g_env = {{"CREATORD_API_TOKENS", "aaaaaaaaaaaaaaaa,bbbbbbbbbbbbbbbb"}};
  auto p = parse({});
  EXPECT_EQ(p.cfg.api_tokens.size(), 2u);
  EXPECT_TRUE(finalize(p.cfg));
  g_env.clear();
}

TEST(Config, FinalizeRejectsWeakTokensAndBadValues) {
  Config c;
  c.api_tokens = {"short"};
  EXPECT_FALSE(finalize(c));
  Config d;
  d.listen = "nonsense";
  EXPECT_FALSE(finalize(d));
  Config e;
  e.header_timeout = 0;
  EXPECT_FALSE(finalize(e));
}

TEST(Config, BodyMemoryMustHoldTheLargestBody) {
  Config c;
  EXPECT_EQ(c.max_body_memory, 256u << 20);
  EXPECT_TRUE(finalize(c));
  c.max_body_memory = c.max_upload_bytes - 1;
  EXPECT_FALSE(finalize(c));
}

TEST(Config, ParseListen) {
  auto a = parse_listen("127.0.0.1:0");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->first, "127.0.0.1");
  EXPECT_EQ(a->second, 0);
  auto b = parse_listen("[::1]:8080");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->first, "::1");
  EXPECT_EQ(b->second, 8080);
  EXPECT_FALSE(parse_listen("localhost"));
  EXPECT_FALSE(parse_listen("localhost:99999"));
  EXPECT_FALSE(parse_listen(":80"));
}

TEST(Config, PublicUrlIsGivenOrDerivedFromListen) {
  Config c;
  EXPECT_EQ(public_base_url(c, "127.0.0.1", 8000), "http://127.0.0.1:8000");
  EXPECT_EQ(public_base_url(c, "::1", 8001), "http://[::1]:8001");
  EXPECT_EQ(public_base_url(c, "0.0.0.0", 80).find("0.0.0.0"), std::string::npos);  // the host name instead
  c.public_url = "https://creatord.example.com/";
  EXPECT_TRUE(finalize(c));
  EXPECT_EQ(public_base_url(c, "127.0.0.1", 8000), "https://creatord.example.com");
  for (const char* bad : {"creatord.example.com", "ftp://x", "https://", "https://x/?a=1", "https://x y"}) {
    Config d;
    d.public_url = bad;
    EXPECT_FALSE(finalize(d)) << bad;
  }
}
