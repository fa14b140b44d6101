// Adversarial tests of what the server keeps and writes (issue 10): caches held to their byte
// budget, images decoded before they are accepted, storage failures seen. Each test names the
// defect it guards against and failed before its fix.
#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

#include <thread>

#include <gtest/gtest.h>

#include "../unit/test_images.hpp"
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

// Image bytes never change for an image id: after the first answer they come from the response
// cache, not from the store (a file read on SQLite, a query and a hex decode on PostgreSQL); with
// no cache budget every answer reads them again.
TEST(Resources, ImageBytesAreReadFromTheStoreOnceWhileCached) {
  for (bool cached : {true, false}) {
    Server s({.args = cached ? std::vector<std::string>{} : std::vector<std::string>{"--response-cache-bytes", "0"}});
    auto p = s.port();
    auto cid = post_json(p, "/api/creators", R"({"name":"Pics","handle":"pics"})").json().at("id").as_int64();
    std::string png = test_images::real_png(12, 8);
    auto up = request(p, "POST", "/api/creators/" + std::to_string(cid) + "/images", png);
    ASSERT_EQ(up.status, 201) << up.body;
    std::string content = "/api/images/" + std::to_string(up.json().at("id").as_int64()) + "/content";
    ASSERT_EQ(get(p, content).body, png);
    const std::string reads = R"(creatord_pool_task_duration_seconds_count{pool="files"})";
    double before = metric(p, reads);
    ASSERT_GE(before, 1);
    for (int i = 0; i < 5; ++i) {
      auto r = get(p, content);
      ASSERT_EQ(r.status, 200);
      ASSERT_EQ(r.body, png);  // the same bytes, whichever way they came
    }
    EXPECT_EQ(metric(p, reads) - before, cached ? 0 : 5) << (cached ? "cached" : "no cache budget");
  }
}

TEST(Resources, ListCacheKeysOnTheParsedQuery) {
  Server s;
  auto p = s.port();
  ASSERT_EQ(post_json(p, "/api/creators", R"({"name":"Ab","handle":"ab"})").status, 201);
  auto first = get(p, "/api/creators?limit=5&q=ab");
  ASSERT_EQ(first.status, 200);
  // On PostgreSQL the write also comes back as a notification, which may move the cache's
  // version once more after the first read was cached: wait until a repeated read hits.
  for (int i = 0; i < 200; ++i) {
    double before = metric(p, "creatord_response_cache_hits_total");
    ASSERT_EQ(get(p, "/api/creators?limit=5&q=ab").status, 200);
    if (metric(p, "creatord_response_cache_hits_total") > before) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
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

// Issue 13: a job's writes (its progress, its events, the images it stores) cleared the cached
// creators lists, so the cache barely worked while jobs ran; only creator writes change them.
TEST(Resources, ListCacheOutlivesAJobAndNotACreatorWrite) {
  Server s;
  auto p = s.port();
  auto created = post_json(p, "/api/creators", R"({"name":"Cached Creator","handle":"cached","tags":["neon"]})");
  ASSERT_EQ(created.status, 201);
  auto cid = created.json().at("id").as_int64();
  ASSERT_EQ(get(p, "/api/creators?limit=7").status, 200);
  double hits = metric(p, "creatord_response_cache_hits_total");
  ASSERT_EQ(get(p, "/api/creators?limit=7").status, 200);
  ASSERT_EQ(metric(p, "creatord_response_cache_hits_total"), hits + 1);  // cached
  auto job = post_json(p, "/api/creators/" + std::to_string(cid) + "/generate",
                       R"({"params":{"variants":1,"avatar_size":32,"banner_width":64,"banner_height":32,"detail":20,"thumb_size":16}})");
  ASSERT_EQ(job.status, 202) << job.body;
  auto done = wait_job(p, job.json().at("id").as_int64(), [](const boost::json::value& j) {
    return job_in(j, {"succeeded", "failed", "cancelled"});
  });
  ASSERT_EQ(done.at("state").as_string(), "succeeded");
  ASSERT_GT(done.at("result").at("images").as_int64(), 0);  // it stored images and moved its progress
  ASSERT_EQ(get(p, "/api/creators?limit=7").status, 200);
  EXPECT_EQ(metric(p, "creatord_response_cache_hits_total"), hits + 2);  // still cached
  ASSERT_EQ(post_json(p, "/api/creators", R"({"name":"Second","handle":"second"})").status, 201);
  auto after = get(p, "/api/creators?limit=7");
  EXPECT_EQ(metric(p, "creatord_response_cache_hits_total"), hits + 2);  // a creator write cleared it
  EXPECT_NE(after.body.find("\"second\""), std::string::npos);
}

// Defect 15: a full disk or a read-only image folder gave a 500 with no log line, and /readyz
// stayed 200 while every write failed.

namespace {

// A 1 MiB tmpfs mounted over a folder (the blob folder, before the server starts), so a test can
// fill it (ENOSPC) or make it read-only (EROFS): tests run as root, whom chmod does not stop.
class SmallDisk {
 public:
  explicit SmallDisk(std::string dir) : dir_(std::move(dir)) {
    std::filesystem::create_directories(dir_);
    mounted_ = ::mount("tmpfs", dir_.c_str(), "tmpfs", 0, "size=1m") == 0;
    if (!mounted_) error_ = std::strerror(errno);
  }
  ~SmallDisk() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  SmallDisk(const SmallDisk&) = delete;
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }

  // Writes one file until the file system says ENOSPC, in ever smaller pieces.
  void fill() {
    int fd = ::open((dir_ + "/filler").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    std::string chunk(64 * 1024, 'f');
    for (size_t piece : {size_t{64 * 1024}, size_t{4096}, size_t{1}})
      while (::write(fd, chunk.data(), piece) > 0) {
      }
    ::close(fd);
  }
  void unfill() { std::filesystem::remove(dir_ + "/filler"); }
  bool read_only(bool on) {
    unsigned long flags = MS_REMOUNT | (on ? MS_RDONLY : 0);
    return ::mount("tmpfs", dir_.c_str(), "tmpfs", flags, "size=1m") == 0;
  }

 private:
  std::string dir_;
  bool mounted_ = false;
  std::string error_;
};

// The line of the server's output that carries request id `rid` and `text`, or "".
std::string log_line(Server& s, const std::string& rid, const std::string& text) {
  s.wait_output(text, 3s);
  std::string out = s.output();
  size_t pos = 0;
  while (pos < out.size()) {
    size_t end = out.find('\n', pos);
    if (end == std::string::npos) end = out.size();
    std::string line = out.substr(pos, end - pos);
    if (line.find(rid) != std::string::npos && line.find(text) != std::string::npos) return line;
    pos = end + 1;
  }
  return "";
}

Response upload(uint16_t port, int64_t creator, const std::string& bytes) {
  return request(port, "POST", "/api/creators/" + std::to_string(creator) + "/images", bytes);
}

int64_t new_creator(uint16_t port, const std::string& handle) {
  auto r = post_json(port, "/api/creators", R"({"name":"Disk","handle":")" + handle + "\"}");
  EXPECT_EQ(r.status, 201) << r.body;
  return r.status == 201 ? r.json().at("id").as_int64() : 0;
}

}  // namespace

TEST(Resources, AFullDiskGives507ALogLineAndNotReady) {
  if (testing_postgres()) GTEST_SKIP() << "image bytes live in PostgreSQL on this pass, not in a folder";
  std::string dir = temp_dir("fulldisk");
  {
    SmallDisk disk(dir + "/blobs");
    if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (" << disk.error() << "); needs CAP_SYS_ADMIN";
    Server s({.data_dir = dir});
    auto p = s.port();
    auto cid = new_creator(p, "fulldisk");
    EXPECT_EQ(get(p, "/readyz").status, 200);
    disk.fill();
    auto r = upload(p, cid, test_images::real_png(64, 48));
    EXPECT_EQ(r.status, 507) << r.body;
    EXPECT_EQ(r.json().at("error").at("code").as_string(), "insufficient_storage");
    EXPECT_EQ(r.body.find("/blobs"), std::string::npos) << "no paths to clients: " << r.body;
    std::string rid = r.header("x-request-id");
    ASSERT_FALSE(rid.empty());
    EXPECT_NE(log_line(s, rid, "No space left on device"), "") << s.output();
    auto ready = get(p, "/readyz");
    EXPECT_EQ(ready.status, 503) << ready.body;
    // Space again: ready again, and the same upload is stored.
    disk.unfill();
    EXPECT_EQ(get(p, "/readyz").status, 200);
    EXPECT_EQ(upload(p, cid, test_images::real_png(64, 48)).status, 201);
  }
  std::filesystem::remove_all(dir);
}

TEST(Resources, AReadOnlyImageFolderIsLoggedAndNotReady) {
  if (testing_postgres()) GTEST_SKIP() << "image bytes live in PostgreSQL on this pass, not in a folder";
  std::string dir = temp_dir("rodisk");
  {
    SmallDisk disk(dir + "/blobs");
    if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (" << disk.error() << "); needs CAP_SYS_ADMIN";
    Server s({.data_dir = dir});
    auto p = s.port();
    auto cid = new_creator(p, "rodisk");
    EXPECT_EQ(get(p, "/readyz").status, 200);
    ASSERT_TRUE(disk.read_only(true)) << std::strerror(errno);
    auto r = upload(p, cid, test_images::real_png(32, 32));
    EXPECT_EQ(r.status, 500) << r.body;
    std::string rid = r.header("x-request-id");
    EXPECT_NE(log_line(s, rid, "Read-only file system"), "") << s.output();
    EXPECT_EQ(get(p, "/readyz").status, 503);
    ASSERT_TRUE(disk.read_only(false)) << std::strerror(errno);
    EXPECT_EQ(get(p, "/readyz").status, 200);
    EXPECT_EQ(upload(p, cid, test_images::real_png(32, 32)).status, 201);
  }
  std::filesystem::remove_all(dir);
}

// Defect 14: images were checked by their header only.

TEST(Resources, HeaderOnlyAndTruncatedImagesAreRefused) {
  Server s;
  auto p = s.port();
  auto cid = new_creator(p, "truncated");
  auto header_only = test_images::png(64, 64).substr(0, 33);
  auto r = upload(p, cid, header_only);
  EXPECT_EQ(r.status, 415) << r.body;
  std::string png = test_images::real_png(120, 80);
  EXPECT_EQ(upload(p, cid, png.substr(0, png.size() - 20)).status, 415);
  std::string jpeg = test_images::real_jpeg(120, 80);
  EXPECT_EQ(upload(p, cid, jpeg.substr(0, jpeg.size() / 2)).status, 415);
  std::string webp = test_images::real_webp(120, 80);
  EXPECT_EQ(upload(p, cid, webp.substr(0, webp.size() - 10)).status, 415);
  auto list = get(p, "/api/creators/" + std::to_string(cid) + "/images");
  EXPECT_EQ(list.json().at("items").as_array().size(), 0u) << list.body;
}

TEST(Resources, APngHtmlPolyglotIsStoredWithoutItsTailAndServedAsAnImageOnly) {
  Server s;
  auto p = s.port();
  auto cid = new_creator(p, "polyglot");
  std::string png = test_images::real_png(16, 16);
  std::string html = "<html><body><script>alert(document.cookie)</script></body></html>";
  auto r = upload(p, cid, png + html);
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.json().at("size_bytes").as_int64(), static_cast<int64_t>(png.size()));
  auto content = get(p, "/api/images/" + std::to_string(r.json().at("id").as_int64()) + "/content");
  ASSERT_EQ(content.status, 200);
  EXPECT_EQ(content.body, png) << "the HTML after IEND was stored";
  EXPECT_EQ(content.header("content-type"), "image/png");
  EXPECT_EQ(content.header("x-content-type-options"), "nosniff");
  EXPECT_EQ(content.header("content-disposition").rfind("inline; filename=\"image-", 0), 0u) << content.header("content-disposition");
}

TEST(Resources, AZlibBombIsRefusedBeforeItIsDecoded) {
  Server s({.args = {"--max-image-pixels", "2000000"}});
  auto p = s.port();
  auto cid = new_creator(p, "bomb");
  // A real zlib stream under an IHDR that claims 65535 x 65535 pixels.
  auto bomb = test_images::with_ihdr_size(test_images::real_png(1024, 1024), 65535, 65535);
  auto r = upload(p, cid, bomb);
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(r.json().at("error").at("field").as_string(), "body");
  // The limit is the option's: 1500 x 1500 is over 2,000,000 pixels, 1024 x 1024 is not.
  EXPECT_EQ(upload(p, cid, test_images::real_png(1500, 1500)).status, 422);
  EXPECT_EQ(upload(p, cid, test_images::real_png(1024, 1024)).status, 201);
}
