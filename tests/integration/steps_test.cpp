// Your own steps: exec (a program) and http (an API), declared in a pipelines file.
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "harness.hpp"

using namespace harness;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

std::string exec_step(const std::string& name, const std::string& input, const std::string& extra = "") {
  return "  [[pipeline.step]]\n  name = \"" + name + "\"\n  type = \"exec\"\n  command = [\"/usr/bin/python3\", \"" +
         std::string(STEP_SCRIPT) + "\"]\n  input = " + input + "\n" + extra;
}

struct PipelineDir {
  std::string dir = temp_dir("steps");
  std::string file = dir + "/pipelines.toml";
  explicit PipelineDir(const std::string& toml) { std::ofstream(file) << toml; }
  ~PipelineDir() { std::filesystem::remove_all(dir); }
};

int64_t creator(uint16_t port) {
  auto r = post_json(port, "/api/creators", R"({"name":"Step Person","handle":"stepper","tags":["a","b"]})");
  return r.json().at("id").as_int64();
}

json::value run_job(uint16_t port, int64_t cid, const std::string& pipeline, const std::string& params = "{}",
                    const std::string& extra = "") {
  auto r = post_json(port, "/api/creators/" + std::to_string(cid) + "/generate",
                     R"({"pipeline":")" + pipeline + R"(","params":)" + params + extra + "}");
  EXPECT_EQ(r.status, 202) << r.body;
  return r.json();
}

bool terminal(const json::value& j) { return job_in(j, {"succeeded", "failed", "cancelled"}); }

const json::object& step(const json::value& job, const std::string& name) {
  for (const auto& s : job.at("steps").as_array())
    if (s.at("name").as_string() == name) return s.as_object();
  throw std::runtime_error("no step " + name);
}

// Alive and not a zombie.
bool alive(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), {});
  if (text.empty()) return false;
  auto close = text.rfind(')');
  return close != std::string::npos && text.size() > close + 2 && text[close + 2] != 'Z';
}

std::pair<int, int> read_pids(const std::string& file, std::chrono::milliseconds timeout = 20s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(file);
    int a = 0, b = 0;
    if (in >> a >> b) return {a, b};
    std::this_thread::sleep_for(20ms);
  }
  return {0, 0};
}

bool gone_soon(int pid, std::chrono::milliseconds timeout = 10s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (alive(pid) && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(20ms);
  return !alive(pid);
}

int threads_of(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  return -1;
}

}  // namespace

TEST(Steps, ExecPassesJsonBothWaysWithTemplatesAndProgress) {
  PipelineDir cfg("[[pipeline]]\nname = \"echo\"\n" +
            exec_step("first", R"({ mode = "echo", name = "{{ creator.name }}", tags = "{{ creator.tags }}", n = "{{ params.n }}" })") +
            exec_step("second", R"({ mode = "echo", from_first = "{{ steps.first.output.got.name }}" })", "  needs = [\"first\"]\n"));
  Server s({.args = {"--pipelines", cfg.file}});
  auto pipelines = get(s.port(), "/api/pipelines").json().at("items").as_array();
  EXPECT_EQ(pipelines.size(), 3u);  // generate, diagnostic, echo
  auto id = run_job(s.port(), creator(s.port()), "echo", R"({"n":5})").at("id").as_int64();
  auto done = wait_job(s.port(), id, terminal);
  ASSERT_EQ(done.at("state").as_string(), "succeeded") << json::serialize(done);
  auto got = step(done, "first").at("output").at("got");
  EXPECT_EQ(got.at("name").as_string(), "Step Person");
  EXPECT_EQ(got.at("tags"), json::parse(R"(["a","b"])"));
  EXPECT_EQ(got.at("n").as_int64(), 5);
  EXPECT_EQ(step(done, "second").at("output").at("got").at("from_first").as_string(), "Step Person");
  EXPECT_NE(step(done, "first").at("log").as_string().find("PROGRESS 0.5 halfway"), std::string::npos);
  auto events = get(s.port(), "/api/jobs/" + std::to_string(id) + "/events?last_event_id=0");  // stream ends with the job
  EXPECT_NE(events.body.find("\"message\":\"halfway\""), std::string::npos);
}

// Every progress report of an exec step becomes a step.progress event, coalesced to a few per
// second per step; the last one (here 0.8, on a line without a newline) is always sent.
TEST(Steps, ExecProgressBecomesEventsAndTheLastIsAlwaysSent) {
  PipelineDir cfg("[[pipeline]]\nname = \"progress\"\n" + exec_step("s", R"({ mode = "progress" })"));
  Server s({.args = {"--pipelines", cfg.file}});
  auto id = run_job(s.port(), creator(s.port()), "progress").at("id").as_int64();
  auto done = wait_job(s.port(), id, terminal);
  ASSERT_EQ(done.at("state").as_string(), "succeeded") << json::serialize(done);
  auto events = get(s.port(), "/api/jobs/" + std::to_string(id) + "/events?last_event_id=0").body;
  std::vector<json::value> reports;
  const std::string marker = "event: step.progress\ndata: ";
  for (size_t at = events.find(marker); at != std::string::npos; at = events.find(marker, at + 1)) {
    size_t from = at + marker.size();
    reports.push_back(json::parse(events.substr(from, events.find('\n', from) - from)));
  }
  ASSERT_FALSE(reports.empty()) << events;
  EXPECT_LE(reports.size(), 3u) << events;  // eight reports within milliseconds, coalesced
  EXPECT_EQ(reports.back().at("progress").to_number<double>(), 0.8) << events;
  EXPECT_EQ(reports.back().at("message").as_string(), "almost there") << events;
  EXPECT_LT(events.find("event: step.progress"), events.find("event: step.finished")) << events;
}

TEST(Steps, ExecFailuresAreClearStepErrors) {
  PipelineDir cfg("[[pipeline]]\nname = \"notjson\"\n" + exec_step("s", R"({ mode = "notjson" })") +
            "[[pipeline]]\nname = \"fails\"\n" + exec_step("s", R"({ mode = "fail" })") +
            "[[pipeline]]\nname = \"missing\"\n  [[pipeline.step]]\n  name = \"s\"\n  type = \"exec\"\n  command = [\"/no/such/program\"]\n");
  Server s({.args = {"--pipelines", cfg.file, "--job-retry-base", "0.05"}});
  auto cid = creator(s.port());
  auto a = wait_job(s.port(), run_job(s.port(), cid, "notjson").at("id").as_int64(), terminal);
  EXPECT_EQ(a.at("state").as_string(), "failed");
  EXPECT_NE(step(a, "s").at("error").as_string().find("not JSON"), std::string::npos);
  EXPECT_EQ(a.at("attempt").as_int64(), 1);  // a program's bad output is not worth retrying
  auto b = wait_job(s.port(), run_job(s.port(), cid, "fails", "{}", R"(,"max_attempts":2)").at("id").as_int64(), terminal);
  EXPECT_EQ(b.at("state").as_string(), "failed");
  EXPECT_NE(b.at("last_error").as_string().find("exited with code 3: bad thing happened"), std::string::npos)
      << json::serialize(b);
  EXPECT_EQ(b.at("attempt").as_int64(), 2);  // a failing exit is retried
  auto c = wait_job(s.port(), run_job(s.port(), cid, "missing").at("id").as_int64(), terminal);
  EXPECT_NE(c.at("last_error").as_string().find("cannot run /no/such/program"), std::string::npos);
}

TEST(Steps, ExecTimeoutAndCancelLeaveNoProcessBehind) {
  PipelineDir cfg("[[pipeline]]\nname = \"slow\"\n" +
            exec_step("s", R"({ mode = "sleep", seconds = 300, pid_file = "{{ params.pid_file }}" })",
                      "  timeout_seconds = 1\n  kill_grace_seconds = 1\n") +
            "[[pipeline]]\nname = \"slower\"\n" +
            exec_step("s", R"({ mode = "sleep", seconds = 300, pid_file = "{{ params.pid_file }}" })"));
  Server s({.args = {"--pipelines", cfg.file}});
  auto cid = creator(s.port());
  std::string pids1 = cfg.dir + "/timeout.pids";
  auto t = run_job(s.port(), cid, "slow", R"({"pid_file":")" + pids1 + "\"}", R"(,"max_attempts":1)").at("id").as_int64();
  auto [p1, c1] = read_pids(pids1);
  ASSERT_GT(p1, 0);
  auto timed_out = wait_job(s.port(), t, terminal);
  EXPECT_EQ(timed_out.at("state").as_string(), "failed");
  EXPECT_NE(timed_out.at("last_error").as_string().find("timed out"), std::string::npos);
  EXPECT_TRUE(gone_soon(p1));
  EXPECT_TRUE(gone_soon(c1)) << "the step's child outlived it";

  std::string pids2 = cfg.dir + "/cancel.pids";
  auto c = run_job(s.port(), cid, "slower", R"({"pid_file":")" + pids2 + "\"}").at("id").as_int64();
  auto [p2, c2] = read_pids(pids2);
  ASSERT_GT(p2, 0);
  EXPECT_EQ(request(s.port(), "POST", "/api/jobs/" + std::to_string(c) + "/cancel").status, 202);
  EXPECT_EQ(wait_job(s.port(), c, terminal, 15s).at("state").as_string(), "cancelled");
  EXPECT_TRUE(gone_soon(p2));
  EXPECT_TRUE(gone_soon(c2));
}

TEST(Steps, ACrashMidStepKillsTheProgramAndTheStepRunsAgainAfterRestart) {
  PipelineDir cfg("[[pipeline]]\nname = \"nap\"\n" +
            exec_step("s", R"({ mode = "sleep", seconds = "{{ params.seconds }}", pid_file = "{{ params.pid_file }}" })"));
  std::string pids = cfg.dir + "/nap.pids";
  int64_t id;
  int step_pid;
  {
    // On PostgreSQL a dead instance's jobs return when their lease expires: keep it short.
    Server s({.args = {"--pipelines", cfg.file, "--job-lease", "2", "--job-heartbeat", "0.5"}, .data_dir = cfg.dir + "/data"});
    id = run_job(s.port(), creator(s.port()), "nap", R"({"seconds":1,"pid_file":")" + pids + "\"}").at("id").as_int64();
    step_pid = read_pids(pids).first;
    ASSERT_GT(step_pid, 0);
    std::filesystem::remove(pids);
    s.stop(SIGKILL);
  }
  EXPECT_TRUE(gone_soon(step_pid)) << "the orphaned step kept running";
  Server s({.args = {"--pipelines", cfg.file, "--job-lease", "2", "--job-heartbeat", "0.5"}, .data_dir = cfg.dir + "/data"});
  auto done = wait_job(s.port(), id, terminal, 30s);
  EXPECT_EQ(done.at("state").as_string(), "succeeded") << json::serialize(done);
  EXPECT_EQ(done.at("attempt").as_int64(), 2);
}

TEST(Steps, AHundredExecStepsAtOnceCostNoExtraThreads) {
  PipelineDir cfg("[[pipeline]]\nname = \"nap\"\n" +
            exec_step("s", R"({ mode = "sleep", seconds = 1.5, pid_file = "{{ params.pid_file }}" })"));
  // A configured pipeline runs in a queue of its own name; --queues sets how many run at once.
  Server s({.args = {"--pipelines", cfg.file, "--queues", "generate=2,default=8,email=4,nap=100",
                     "--max-unfinished-jobs-per-creator", "100", "--enqueue-burst", "100"}});
  auto cid = creator(s.port());
  int idle_threads = threads_of(s.pid());
  std::vector<int64_t> ids;
  for (int i = 0; i < 100; ++i) {
    auto job = run_job(s.port(), cid, "nap", R"({"pid_file":")" + cfg.dir + "/p" + std::to_string(i) + "\"}");
    EXPECT_EQ(job.at("kind").as_string(), "nap");
    EXPECT_EQ(job.at("queue").as_string(), "nap");
    ids.push_back(job.at("id").as_int64());
  }
  for (int i = 0; i < 100; ++i) read_pids(cfg.dir + "/p" + std::to_string(i));  // all are running now
  int busy_threads = threads_of(s.pid());
  EXPECT_LE(busy_threads, idle_threads + 2) << "idle " << idle_threads << ", with 100 programs running " << busy_threads;
  for (auto id : ids) EXPECT_EQ(wait_job(s.port(), id, terminal, 60s).at("state").as_string(), "succeeded");
}

TEST(Steps, ExecImagesBecomeTheCreatorsImages) {
  PipelineDir cfg("[[pipeline]]\nname = \"img\"\n" + exec_step("s", R"({ mode = "image" })", "  cwd = \".\"\n"));
  Server s({.args = {"--pipelines", cfg.file}});
  auto cid = creator(s.port());
  auto done = wait_job(s.port(), run_job(s.port(), cid, "img").at("id").as_int64(), terminal);
  ASSERT_EQ(done.at("state").as_string(), "succeeded") << json::serialize(done);
  auto image_id = step(done, "s").at("output").at("images").at(0).at("image_id").as_int64();
  auto meta = get(s.port(), "/api/images/" + std::to_string(image_id)).json();
  EXPECT_EQ(meta.at("width").as_int64(), 4);
  EXPECT_EQ(meta.at("source").as_string(), "step");
}

TEST(Steps, HttpSuccessRetriesRateLimitsTimeoutsPollingAndLimits) {
  FakeAi ai({"--api-key", "sk-test-key"});
  auto http = [&](const std::string& name, const std::string& method, const std::string& path, const std::string& extra = "") {
    return "[[pipeline]]\nname = \"" + name + "\"\n  [[pipeline.step]]\n  name = \"call\"\n  type = \"http\"\n  method = \"" + method +
           "\"\n  url = \"" + ai.url() + path + "\"\n  retry_backoff_seconds = 0.05\n" +
           "  allow_internal = [\"127.0.0.1\"]\n" + extra;
  };
  PipelineDir cfg(http("gen", "POST", "/v1/images/generations",
                 "  headers = { Authorization = \"Bearer ${TEST_AI_KEY}\" }\n"
                 "  body = { prompt = \"portrait of {{ creator.name }}\", size = \"16x16\" }\n  images_from = \"data\"\n") +
            http("flaky", "GET", "/flaky/k1") + http("limited", "GET", "/ratelimited/k1") +
            http("hang", "GET", "/hang", "  timeout_seconds = 1\n  request_retries = 0\n") +
            http("poll", "POST", "/v1/async/generations",
                 "  poll = { url = \"{{ response.poll_url | raw }}\", interval_seconds = 0.05 }\n") +
            http("big", "GET", "/big", "  max_response_bytes = 1000000\n") + http("missing", "GET", "/status/404"));
  Server s({.args = {"--pipelines", cfg.file, "--job-retry-base", "0.05"}, .env = {{"TEST_AI_KEY", "sk-test-key"}}});
  auto cid = creator(s.port());
  auto job = [&](const std::string& p) {
    return wait_job(s.port(), run_job(s.port(), cid, p, "{}", R"(,"max_attempts":1)").at("id").as_int64(), terminal);
  };
  auto gen = job("gen");
  ASSERT_EQ(gen.at("state").as_string(), "succeeded") << json::serialize(gen);
  EXPECT_EQ(gen.at("result").at("prompt").as_string(), "portrait of Step Person");
  auto img = gen.at("result").at("images").at(0).at("image_id").as_int64();
  EXPECT_EQ(get(s.port(), "/api/images/" + std::to_string(img)).json().at("width").as_int64(), 16);

  auto flaky = job("flaky");
  EXPECT_EQ(flaky.at("state").as_string(), "succeeded");
  EXPECT_EQ(flaky.at("result").at("calls").as_int64(), 3);  // 500, 500, then 200
  auto limited = job("limited");
  EXPECT_EQ(limited.at("state").as_string(), "succeeded");
  EXPECT_EQ(limited.at("result").at("calls").as_int64(), 2);  // waited for Retry-After, then 200
  auto hang = job("hang");
  EXPECT_EQ(hang.at("state").as_string(), "failed");
  EXPECT_NE(hang.at("last_error").as_string().find("timed out"), std::string::npos) << json::serialize(hang);
  auto poll = job("poll");
  ASSERT_EQ(poll.at("state").as_string(), "succeeded") << json::serialize(poll);
  EXPECT_EQ(poll.at("result").at("status").as_string(), "succeeded");
  EXPECT_TRUE(poll.at("result").at("images").at(0).at("image_id").is_int64());
  auto big = job("big");
  EXPECT_EQ(big.at("state").as_string(), "failed");
  EXPECT_NE(big.at("last_error").as_string().find("larger than"), std::string::npos) << json::serialize(big);
  auto missing = job("missing");
  EXPECT_NE(missing.at("last_error").as_string().find("HTTP 404"), std::string::npos);
}

TEST(Steps, PipelinesCheckPointsAtMistakesAndABadFileStopsStartUp) {
  PipelineDir cfg("[[pipeline]]\nname = \"p\"\n  [[pipeline.step]]\n  name = \"a\"\n  type = \"exec\"\n  command = [\"true\"]\n  needs = [\"a\"]\n");
  std::string out = cfg.dir + "/out.txt";
  int rc = std::system((std::string(CREATORD_BINARY) + " pipelines check " + cfg.file + " 2> " + out).c_str());
  EXPECT_NE(WEXITSTATUS(rc), 0);
  std::ifstream in(out);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_NE(text.find(cfg.file + ":3:"), std::string::npos) << text;
  EXPECT_NE(text.find("cycle"), std::string::npos) << text;
  Server bad({.args = {"--pipelines", cfg.file}, .expect_listening = false});
  EXPECT_EQ(bad.wait_exit(), 2);
  EXPECT_NE(bad.output().find("cycle"), std::string::npos);
  EXPECT_EQ(std::system(("AI_BASE_URL=http://127.0.0.1:9 AI_API_KEY=k " + std::string(CREATORD_BINARY) +
                         " pipelines check " + EXAMPLES_DIR + "/pipelines.toml > /dev/null").c_str()),
            0);
}

// Issue 16: a pipeline fails early. A ${VAR} that is not set stops start-up (and `pipelines
// check`) naming it and its line; a param a template needs is checked when the job is asked for.
TEST(Steps, UnsetVariablesStopStartUpNamingTheirLine) {
  PipelineDir cfg("[[pipeline]]\nname = \"p\"\n  [[pipeline.step]]\n  name = \"a\"\n  type = \"http\"\n"
                  "  url = \"${CREATORD_TEST_NOT_SET}/v1/x\"\n");
  std::string out = cfg.dir + "/out.txt";
  int rc = std::system(("env -u CREATORD_TEST_NOT_SET " + std::string(CREATORD_BINARY) + " pipelines check " + cfg.file +
                        " 2> " + out).c_str());
  EXPECT_NE(WEXITSTATUS(rc), 0);
  std::ifstream in(out);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_NE(text.find(cfg.file + ":6:"), std::string::npos) << text;
  EXPECT_NE(text.find("environment variable CREATORD_TEST_NOT_SET is not set"), std::string::npos) << text;
  Server bad({.args = {"--pipelines", cfg.file}, .expect_listening = false});
  EXPECT_EQ(bad.wait_exit(), 2);
  EXPECT_NE(bad.output().find("CREATORD_TEST_NOT_SET"), std::string::npos) << bad.output();
  EXPECT_NE(bad.output().find(cfg.file + ":6:"), std::string::npos) << bad.output();
}

TEST(Steps, ParamsAreCheckedWhenTheJobIsAskedFor) {
  PipelineDir cfg("[[pipeline]]\nname = \"loose\"\n" + exec_step("s", R"({ mode = "echo", style = "{{ params.style }}" })") +
                  "[[pipeline]]\nname = \"typed\"\n  [pipeline.params]\n"
                  "  style = { type = \"string\", default = \"neon\" }\n  size = { type = \"integer\" }\n" +
                  exec_step("s", R"({ mode = "echo", style = "{{ params.style }}", size = "{{ params.size }}" })"));
  Server s({.args = {"--pipelines", cfg.file}});
  auto cid = creator(s.port());
  auto ask = [&](const std::string& pipeline, const std::string& params) {
    return post_json(s.port(), "/api/creators/" + std::to_string(cid) + "/generate",
                     R"({"pipeline":")" + pipeline + R"(","params":)" + params + "}");
  };
  auto missing = ask("loose", "{}");
  ASSERT_EQ(missing.status, 422) << missing.body;
  EXPECT_EQ(missing.json().at("error").at("field").as_string(), "params.style");
  auto no_size = ask("typed", "{}");
  ASSERT_EQ(no_size.status, 422) << no_size.body;
  EXPECT_EQ(no_size.json().at("error").at("field").as_string(), "params.size");
  EXPECT_EQ(ask("typed", R"({"size":"big"})").status, 422);
  EXPECT_EQ(ask("typed", R"({"size":2,"colour":"red"})").json().at("error").at("field").as_string(), "params.colour");
  auto ok = ask("typed", R"({"size":2})");
  ASSERT_EQ(ok.status, 202) << ok.body;
  auto done = wait_job(s.port(), ok.json().at("id").as_int64(), terminal);
  ASSERT_EQ(done.at("state").as_string(), "succeeded") << json::serialize(done);
  EXPECT_EQ(step(done, "s").at("output").at("got").at("style").as_string(), "neon");  // the default
  json::value typed;
  auto pipelines = get(s.port(), "/api/pipelines").json();
  for (const auto& p : pipelines.at("items").as_array())
    if (p.at("name").as_string() == "typed") typed = p;
  ASSERT_TRUE(typed.is_object());
  EXPECT_EQ(typed.at("params").at("style").at("default").as_string(), "neon");
  EXPECT_EQ(typed.at("params").at("size").at("type").as_string(), "integer");
  EXPECT_EQ(typed.at("params").at("size").at("required").as_bool(), true);
}
