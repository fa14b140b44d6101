// What http and exec steps may fetch and read (issue 10, defects 5 to 8): downloads are bounded
// in size and rate, not cut off by a fixed time, and steps reach no internal address and read
// no file outside their folder unless the pipeline says so.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "harness.hpp"

using namespace harness;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

// tests/http/download_server.py: slow, stalled, oversize and redirecting answers.
class DownloadServer : public ScriptServer {
 public:
  DownloadServer() : ScriptServer(DOWNLOAD_SERVER_SCRIPT, {}) {}
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port()); }
  int64_t hits(const std::string& path) const {
    auto body = get(port(), "/hits").json();  // a named copy: if_contains points into it
    auto* n = body.as_object().if_contains(path);
    return n ? n->as_int64() : 0;
  }
};

struct PipelineFile {
  std::string dir = temp_dir("outgoing");
  std::string file = dir + "/pipelines.toml";
  explicit PipelineFile(const std::string& toml) { std::ofstream(file) << toml; }
  ~PipelineFile() { std::filesystem::remove_all(dir); }
};

// A pipeline of one http step that GETs url; the answer's "data" lists images to download.
std::string images_pipeline(const std::string& name, const std::string& url, const std::string& extra = "") {
  return "[[pipeline]]\nname = \"" + name + "\"\n  [[pipeline.step]]\n  name = \"fetch\"\n  type = \"http\"\n"
         "  method = \"GET\"\n  url = \"" + url + "\"\n  images_from = \"data\"\n  request_retries = 0\n" +
         "  allow_internal = [\"127.0.0.1\"]\n" + extra;
}

int64_t make_creator(uint16_t port, const std::string& handle) {
  auto r = post_json(port, "/api/creators", R"({"name":"Out Going","handle":")" + handle + R"("})");
  EXPECT_EQ(r.status, 201) << r.body;
  return r.json().at("id").as_int64();
}

json::value run(uint16_t port, int64_t cid, const std::string& pipeline, std::chrono::milliseconds timeout = 60s) {
  auto r = post_json(port, "/api/creators/" + std::to_string(cid) + "/generate",
                     R"({"pipeline":")" + pipeline + R"(","max_attempts":1})");
  EXPECT_EQ(r.status, 202) << r.body;
  return wait_job(port, r.json().at("id").as_int64(),
                  [](const json::value& j) { return job_in(j, {"succeeded", "failed", "cancelled"}); }, timeout);
}

size_t image_count(uint16_t port, int64_t cid) {
  auto r = get(port, "/api/creators/" + std::to_string(cid) + "/images");
  return r.json().at("items").as_array().size();
}

}  // namespace

// Defect 7: a download above the limit was stored truncated (the part that fitted). It is refused
// whole, with or without a Content-Length, and nothing is stored.
TEST(Outgoing, OversizeImageDownloadsAreRefusedWholeAndNothingIsStored) {
  DownloadServer d;
  const std::string limit = "  max_response_bytes = 1000000\n";
  PipelineFile cfg(images_pipeline("chunked", d.url() + "/list/png/chunked?bytes=3000000", limit) +
                   images_pipeline("length", d.url() + "/list/png/length?bytes=3000000", limit) +
                   images_pipeline("fits", d.url() + "/list/png/chunked?bytes=200000", limit));
  Server s({.args = {"--pipelines", cfg.file}});
  auto cid = make_creator(s.port(), "oversize");
  for (std::string p : {"chunked", "length"}) {
    auto job = run(s.port(), cid, p);
    EXPECT_EQ(job.at("state").as_string(), "failed") << p << ": " << json::serialize(job);
    EXPECT_NE(job.at("last_error").as_string().find("larger than 1000000 bytes"), std::string::npos)
        << p << ": " << json::serialize(job);
  }
  EXPECT_EQ(image_count(s.port(), cid), 0u) << "a truncated download was stored";
  auto fits = run(s.port(), cid, "fits");  // the same pipeline under the limit works
  ASSERT_EQ(fits.at("state").as_string(), "succeeded") << json::serialize(fits);
  EXPECT_EQ(image_count(s.port(), cid), 1u);
}

// Defect 8: one fixed time for a whole download cut off a large image on a slow link. A download
// that keeps moving may take as long as it needs (up to a generous cap); one that stops moving
// is abandoned after the stall timeout.
TEST(Outgoing, ASlowSteadyDownloadFinishesAndAStalledOneIsAbandoned) {
  DownloadServer d;
  PipelineFile cfg(images_pipeline("slow", d.url() + "/list/png/slow?bytes=200000&seconds=4") +
                   images_pipeline("stalled", d.url() + "/list/png/stall?bytes=200000"));
  // The stall timeout is a quarter of the slow download's time: a fixed time for the whole
  // download this short would cut it off.
  Server s({.args = {"--pipelines", cfg.file, "--step-download-stall-timeout", "1", "--step-download-min-rate", "2000"}});
  auto cid = make_creator(s.port(), "slowlink");
  auto slow = run(s.port(), cid, "slow");
  ASSERT_EQ(slow.at("state").as_string(), "succeeded") << json::serialize(slow);
  EXPECT_EQ(image_count(s.port(), cid), 1u);
  auto started = std::chrono::steady_clock::now();
  auto stalled = run(s.port(), cid, "stalled");
  EXPECT_EQ(stalled.at("state").as_string(), "failed") << json::serialize(stalled);
  EXPECT_NE(stalled.at("last_error").as_string().find("too slow"), std::string::npos) << json::serialize(stalled);
  // Long before the server's minute of silence ends (and nowhere near --step-download-timeout).
  EXPECT_LT(std::chrono::steady_clock::now() - started, 40s);
  EXPECT_EQ(image_count(s.port(), cid), 1u);
}

// Defect 6: an exec step's image paths reached files anywhere (`../`, absolute paths, symlinks),
// and "no such file" and "not a PNG" told a client what exists. Only a file inside the step's
// folder is read; everything else gets one answer.
TEST(Outgoing, ExecImagePathsStayInsideTheStepsFolder) {
  PipelineFile cfg("[[pipeline]]\nname = \"img\"\n  [[pipeline.step]]\n  name = \"s\"\n  type = \"exec\"\n"
                   "  command = [\"/usr/bin/python3\", \"" + std::string(STEP_SCRIPT) + "\"]\n  cwd = \"step\"\n"
                   "  input = { mode = \"image_at\", write = \"{{ params.write }}\", path = \"{{ params.path }}\" }\n");
  const std::string step_dir = cfg.dir + "/step";
  std::filesystem::create_directories(step_dir);
  std::filesystem::create_symlink(cfg.dir + "/outside.png", step_dir + "/link.png");
  std::ofstream(cfg.dir + "/not-an-image.txt") << "just text";
  Server s({.args = {"--pipelines", cfg.file}});
  auto cid = make_creator(s.port(), "paths");
  auto job = [&](const std::string& write, const std::string& path) {
    auto r = post_json(s.port(), "/api/creators/" + std::to_string(cid) + "/generate",
                       R"({"pipeline":"img","max_attempts":1,"params":{"write":")" + write + R"(","path":")" + path + "\"}}");
    EXPECT_EQ(r.status, 202) << r.body;
    return wait_job(s.port(), r.json().at("id").as_int64(),
                    [](const json::value& j) { return job_in(j, {"succeeded", "failed", "cancelled"}); });
  };
  // A real PNG outside the step's folder (written by the step itself), reached three ways.
  const std::string outside = cfg.dir + "/outside.png";
  std::vector<std::string> errors;
  for (std::string path : {std::string("../outside.png"), outside, std::string("link.png")}) {
    auto j = job(outside, path);
    EXPECT_EQ(j.at("state").as_string(), "failed") << path << ": " << json::serialize(j);
    errors.push_back(std::string(j.at("last_error").as_string()));
  }
  EXPECT_EQ(image_count(s.port(), cid), 0u) << "a file outside the step's folder was stored";
  // Missing, and existing but not an image: the same answer as outside.
  for (std::string path : {std::string("../no-such.png"), std::string("../not-an-image.txt"), std::string("/etc/passwd")}) {
    auto j = job("", path);
    EXPECT_EQ(j.at("state").as_string(), "failed") << path;
    errors.push_back(std::string(j.at("last_error").as_string()));
  }
  for (const auto& e : errors) EXPECT_EQ(e, errors.front());
  EXPECT_NE(errors.front().find("names no image file in the step's folder"), std::string::npos) << errors.front();
  auto inside = job(step_dir + "/made-here.png", "made-here.png");
  ASSERT_EQ(inside.at("state").as_string(), "succeeded") << json::serialize(inside);
  EXPECT_EQ(image_count(s.port(), cid), 1u);
}

// Defect 5: http steps fetched loopback, private and link-local addresses (step URLs, URLs built
// from params, images_from entries), and their errors told a client what answered. An internal
// address is refused, whatever form it is written in, unless the step's allow_internal (or
// --step-allow-internal) names it; the client gets one generic error, the log the details.
TEST(Outgoing, StepsReachNoInternalAddressUnlessAllowed) {
  DownloadServer d;  // on 127.0.0.1: stands for a service inside the network
  const std::string port = std::to_string(d.port());
  auto call = [](const std::string& name, const std::string& url, const std::string& extra = "") {
    return "[[pipeline]]\nname = \"" + name + "\"\n  [[pipeline.step]]\n  name = \"call\"\n  type = \"http\"\n"
           "  method = \"GET\"\n  url = \"" + url + "\"\n  request_retries = 0\n  timeout_seconds = 5\n" + extra;
  };
  const std::string via_name = "  allow_internal = [\"localhost\"]\n  images_from = \"data\"\n";
  PipelineFile cfg(
      call("loopback", "http://127.0.0.1:" + port + "/secret") +
      call("hex", "http://0x7f000001:" + port + "/secret") +
      call("mapped", "http://[::ffff:127.0.0.1]:" + port + "/secret") +
      call("v6loopback", "http://[::1]:" + port + "/secret") +
      call("metadata", "http://169.254.169.254/latest/meta-data/") +
      call("private", "http://10.255.255.1:" + port + "/secret") +
      call("from_params", "{{ params.target | raw }}") +
      // The API is allowed (by name); the image URL its answer points at is not.
      call("image_url", "http://localhost:" + port + "/point?to=http://127.0.0.1:" + port + "/secret.png", via_name) +
      // A redirect is not followed, allowed API or not.
      call("redirect", "http://localhost:" + port + "/redirect?to=http://127.0.0.1:" + port + "/secret", via_name) +
      call("allowed", "http://127.0.0.1:" + port + "/list/png/length?bytes=2000",
           "  allow_internal = [\"127.0.0.0/8\"]\n  images_from = \"data\"\n"));
  Server s({.args = {"--pipelines", cfg.file}});
  auto cid = make_creator(s.port(), "ssrf");
  auto job = [&](const std::string& pipeline, const std::string& params = "{}") {
    auto r = post_json(s.port(), "/api/creators/" + std::to_string(cid) + "/generate",
                       R"({"pipeline":")" + pipeline + R"(","max_attempts":1,"params":)" + params + "}");
    EXPECT_EQ(r.status, 202) << r.body;
    return wait_job(s.port(), r.json().at("id").as_int64(),
                    [](const json::value& j) { return job_in(j, {"succeeded", "failed", "cancelled"}); });
  };
  for (std::string p : {"loopback", "hex", "mapped", "v6loopback", "metadata", "private", "image_url"}) {
    auto j = job(p);
    EXPECT_EQ(j.at("state").as_string(), "failed") << p << ": " << json::serialize(j);
    EXPECT_EQ(j.at("last_error").as_string(), "target address not allowed") << p << ": " << json::serialize(j);
  }
  auto from_params = job("from_params", R"({"target":"http://127.0.0.1:)" + port + R"(/secret"})");
  EXPECT_EQ(from_params.at("last_error").as_string(), "target address not allowed") << json::serialize(from_params);
  auto redirect = job("redirect");
  EXPECT_EQ(redirect.at("state").as_string(), "failed");
  EXPECT_NE(redirect.at("last_error").as_string().find("HTTP 302"), std::string::npos) << json::serialize(redirect);
  EXPECT_EQ(d.hits("/secret") + d.hits("/secret.png"), 0) << "an internal address was reached";
  EXPECT_EQ(image_count(s.port(), cid), 0u);
  EXPECT_TRUE(s.wait_output("step call refused")) << "the details belong in the log";
  EXPECT_NE(s.output().find(R"("address":"127.0.0.1")"), std::string::npos) << s.output();

  auto allowed = job("allowed");
  ASSERT_EQ(allowed.at("state").as_string(), "succeeded") << json::serialize(allowed);
  EXPECT_EQ(image_count(s.port(), cid), 1u);
  EXPECT_EQ(d.hits("/png/length"), 1);

  // The server-wide list (for development) opens the same door for every step.
  Server dev({.args = {"--pipelines", cfg.file, "--step-allow-internal", "127.0.0.1,::1"}});
  auto r = post_json(dev.port(), "/api/creators/" + std::to_string(make_creator(dev.port(), "dev")) + "/generate",
                     R"({"pipeline":"loopback","max_attempts":1})");
  ASSERT_EQ(r.status, 202) << r.body;
  auto reached = wait_job(dev.port(), r.json().at("id").as_int64(),
                          [](const json::value& j) { return job_in(j, {"succeeded", "failed", "cancelled"}); });
  EXPECT_NE(reached.at("last_error").as_string().find("HTTP 404"), std::string::npos) << json::serialize(reached);
  EXPECT_EQ(d.hits("/secret"), 1);
}

// A step's allow_internal is checked when the file is read.
TEST(Outgoing, ABadAllowInternalEntryNamesItsLine) {
  PipelineFile cfg("[[pipeline]]\nname = \"p\"\n  [[pipeline.step]]\n  name = \"a\"\n  type = \"http\"\n"
                   "  url = \"http://example.com/\"\n  allow_internal = [\"10.0.0.0/40\"]\n");
  Server bad({.args = {"--pipelines", cfg.file}, .expect_listening = false});
  EXPECT_EQ(bad.wait_exit(), 2);
  EXPECT_NE(bad.output().find(cfg.file + ":7:"), std::string::npos) << bad.output();
  EXPECT_NE(bad.output().find("10.0.0.0/40"), std::string::npos) << bad.output();
}
