// Issue 14: `creatord backup` while the server runs, `restore`, `verify`.
#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <regex>
#include <thread>

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include "../unit/test_images.hpp"
#include "harness.hpp"

using namespace harness;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

CliRun creatord(const std::string& args) { return run_creatord(args, true); }

// The store options that reach the same data as a test server on data_dir.
std::string store_of(const std::string& data_dir) {
  std::string out = " --data-dir " + data_dir;
  if (testing_postgres()) out += " --database-url '" + postgres_url_for(data_dir) + "'";
  return out;
}

int64_t create_creator(uint16_t port, const std::string& handle) {
  auto r = post_json(port, "/api/creators", R"({"name":"Backed Up","handle":")" + handle + R"("})");
  return r.status == 201 ? r.json().at("id").as_int64() : 0;
}

struct Uploaded {
  int64_t id = 0;
  std::string sha256;
};

Uploaded upload(uint16_t port, int64_t creator, const std::string& png) {
  auto r = request(port, "POST", "/api/creators/" + std::to_string(creator) + "/images", png,
                   {{"Content-Type", "image/png"}});
  if (r.status != 201) return {};
  auto j = r.json();
  return {j.at("id").as_int64(), std::string(j.at("sha256").as_string())};
}

// A write the server acknowledged: a creator, and sometimes an image of it.
struct Acked {
  int64_t creator = 0;
  int64_t image = 0;
  std::string png;
};

}  // namespace

TEST(Backup, OnlineBackupKeepsEveryWriteAcknowledgedBeforeItAndRestores) {
  if (testing_postgres()) GTEST_SKIP() << "backs up SQLite; PostgreSQL is backed up with pg_dump";
  Server a;
  std::mutex m;
  std::vector<Acked> acked;
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int t = 0; t < 3; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; !stop.load(); ++i) {
        Acked w;
        w.creator = create_creator(a.port(), "w" + std::to_string(t) + "x" + std::to_string(i));
        if (!w.creator) continue;
        if (i % 3 == 0) {
          w.png = test_images::real_png(4 + t, 4 + i % 200);
          w.image = upload(a.port(), w.creator, w.png).id;
        }
        std::lock_guard lock(m);
        acked.push_back(std::move(w));
      }
    });
  }
  auto count = [&] {
    std::lock_guard lock(m);
    return acked.size();
  };
  while (count() < 60) std::this_thread::sleep_for(10ms);
  std::vector<Acked> before;
  {
    std::lock_guard lock(m);
    before = acked;  // every write acknowledged before the backup starts
  }
  std::string dest = temp_dir("backup");
  CliRun backup = creatord("backup " + dest + store_of(a.data_dir()));
  size_t during = count();
  std::this_thread::sleep_for(100ms);
  stop = true;
  for (auto& w : writers) w.join();
  ASSERT_EQ(backup.rc, 0) << backup.out;
  EXPECT_GT(during, before.size()) << "the writers kept writing while the backup ran";
  EXPECT_TRUE(fs::exists(fs::path(dest) / "manifest.json"));
  a.stop();

  std::string restored = temp_dir("restored");
  fs::remove_all(restored);
  CliRun restore = creatord("restore " + dest + " --data-dir " + restored);
  ASSERT_EQ(restore.rc, 0) << restore.out;
  EXPECT_NE(restore.out.find("ok"), std::string::npos) << restore.out;

  Server b({.data_dir = restored});
  size_t images = 0;
  for (const auto& w : before) {
    ASSERT_EQ(get(b.port(), "/api/creators/" + std::to_string(w.creator)).status, 200) << "creator " << w.creator;
    if (!w.image) continue;
    auto content = get(b.port(), "/api/images/" + std::to_string(w.image) + "/content");
    ASSERT_EQ(content.status, 200) << "image " << w.image;
    EXPECT_EQ(content.body, w.png);
    ++images;
  }
  EXPECT_GT(images, 10u);
  b.stop();

  // Again into the same folder: only the files of images written since are copied; a third time
  // copies none.
  std::smatch found;
  ASSERT_TRUE(std::regex_search(backup.out, found, std::regex("(\\d+) image files \\((\\d+) copied, 0 already there\\)")))
      << backup.out;
  std::string first_files = found[1];
  CliRun again = creatord("backup " + dest + " --data-dir " + a.data_dir());
  ASSERT_EQ(again.rc, 0) << again.out;
  EXPECT_NE(again.out.find(" copied, " + first_files + " already there)"), std::string::npos) << again.out;
  ASSERT_TRUE(std::regex_search(again.out, found, std::regex("(\\d+) image files"))) << again.out;
  std::string all_files = found[1];
  CliRun third = creatord("backup " + dest + " --data-dir " + a.data_dir());
  EXPECT_NE(third.out.find("(0 copied, " + all_files + " already there)"), std::string::npos) << third.out;
  CliRun verify = creatord("verify --data-dir " + restored);
  EXPECT_EQ(verify.rc, 0) << verify.out;
  fs::remove_all(dest);
  fs::remove_all(restored);
}

TEST(Backup, RestoreRefusesACorruptedBackupNamingTheFile) {
  if (testing_postgres()) GTEST_SKIP() << "backs up SQLite; PostgreSQL is backed up with pg_dump";
  Server a;
  int64_t c = create_creator(a.port(), "corrupt");
  ASSERT_GT(c, 0);
  auto one = upload(a.port(), c, test_images::real_png(9, 9));
  auto two = upload(a.port(), c, test_images::real_png(10, 9));
  ASSERT_FALSE(one.sha256.empty());
  ASSERT_FALSE(two.sha256.empty());
  std::string dest = temp_dir("backup");
  CliRun backup = creatord("backup " + dest + " --data-dir " + a.data_dir());
  ASSERT_EQ(backup.rc, 0) << backup.out;

  std::string rel = "blobs/" + two.sha256.substr(0, 2) + "/" + two.sha256;
  {
    std::fstream f(fs::path(dest) / rel, std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f);
    f.seekp(20);
    f.put('\x7f');
  }
  std::string target = temp_dir("restored");
  fs::remove_all(target);
  CliRun restore = creatord("restore " + dest + " --data-dir " + target);
  EXPECT_EQ(restore.rc, 1) << restore.out;
  EXPECT_NE(restore.out.find(rel + ": checksum mismatch"), std::string::npos) << restore.out;
  EXPECT_EQ(restore.out.find(one.sha256), std::string::npos) << "only the damaged file is named: " << restore.out;
  EXPECT_FALSE(fs::exists(fs::path(target) / "creatord.db")) << "nothing restored";

  // A folder that holds data is never restored over.
  CliRun over = creatord("restore " + dest + " --data-dir " + a.data_dir());
  EXPECT_EQ(over.rc, 1);
  EXPECT_NE(over.out.find("empty data folder"), std::string::npos) << over.out;
  fs::remove_all(dest);
  fs::remove_all(target);
}

namespace {

void pg_exec(const std::string& url, const std::string& sql) {
  PGconn* c = PQconnectdb(url.c_str());
  PGresult* r = PQexec(c, sql.c_str());
  EXPECT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << PQerrorMessage(c);
  PQclear(r);
  PQfinish(c);
}

}  // namespace

// The same checks on either store: a missing image file, and stored bytes no image names.
TEST(Backup, VerifyFindsMissingAndOrphanImageBytes) {
  Server a;
  int64_t c = create_creator(a.port(), "verified");
  auto img = upload(a.port(), c, test_images::real_png(12, 7));
  ASSERT_FALSE(img.sha256.empty());
  CliRun clean = creatord("verify" + store_of(a.data_dir()));
  EXPECT_EQ(clean.rc, 0) << clean.out;
  EXPECT_NE(clean.out.find("ok, 1 image files checked"), std::string::npos) << clean.out;

  std::string orphan(64, 'e');
  if (testing_postgres()) {
    std::string url = postgres_url_for(a.data_dir());
    pg_exec(url, "DELETE FROM creatord.blobs WHERE sha256 = '" + img.sha256 + "'");
    pg_exec(url, "INSERT INTO creatord.blobs (sha256, bytes, created_at) VALUES ('" + orphan + "', '\\x00', 0)");
  } else {
    fs::path dir = fs::path(a.data_dir()) / "blobs";
    fs::remove(dir / img.sha256.substr(0, 2) / img.sha256);
    fs::create_directories(dir / "ee");
    std::ofstream(dir / "ee" / orphan) << "x";
  }
  CliRun broken = creatord("verify" + store_of(a.data_dir()));
  EXPECT_EQ(broken.rc, 1) << broken.out;
  EXPECT_NE(broken.out.find(img.sha256 + ": missing"), std::string::npos) << broken.out;
  EXPECT_NE(broken.out.find(orphan + ": orphan"), std::string::npos) << broken.out;
}
