// Issue 14: `creatord import` from a Supabase-like PostgreSQL (uuid ids, text[] tags,
// timestamptz, image URLs served by a local HTTP server) and from a PostgREST JSON export, into
// a running server, while it serves.
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include "harness.hpp"

using namespace harness;
namespace json = boost::json;

namespace {

const std::string kAda = "11111111-1111-4111-8111-111111111111";
const std::string kGrace = "22222222-2222-4222-8222-222222222222";
const std::string kTwin = "33333333-3333-4333-8333-333333333333";
const std::string kBad = "44444444-4444-4444-8444-444444444444";
const std::string kOrphanImage = "dddddddd-dddd-4ddd-8ddd-dddddddddddd";

bool exec(PGconn* c, const std::string& sql) {
  PGresult* r = PQexec(c, sql.c_str());
  bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  if (!ok) ADD_FAILURE() << sql << ": " << PQerrorMessage(c);
  PQclear(r);
  return ok;
}

// A database shaped like the original service's Supabase project; its URL.
std::string supabase_like_source(uint16_t images_port) {
  static std::atomic<int> n{0};
  std::string db = "import_src_" + std::to_string(::getpid()) + "_" + std::to_string(n++);
  PGconn* admin = PQconnectdb(pg_admin_url().c_str());
  PQclear(PQexec(admin, ("DROP DATABASE IF EXISTS " + db).c_str()));
  exec(admin, "CREATE DATABASE " + db);
  PQfinish(admin);
  std::string url = pg_url_for_database(db);
  PGconn* c = PQconnectdb(url.c_str());
  std::string img = "http://127.0.0.1:" + std::to_string(images_port) + "/png/length?bytes=";
  exec(c,
       "CREATE TABLE public.creators (id uuid PRIMARY KEY, full_name text, username text, email text, bio text, "
       "tags text[], followers integer, created_at timestamptz NOT NULL DEFAULT now());"
       "CREATE TABLE public.images (id uuid PRIMARY KEY, creator_id uuid NOT NULL, image_url text NOT NULL, "
       "created_at timestamptz NOT NULL DEFAULT now());"
       "INSERT INTO public.creators VALUES "
       "('" + kAda + "', 'Ada Lovelace', 'ada', 'ada@example.com', 'Analyst', ARRAY['math','engines'], 10, "
       "'2022-03-04 05:06:07.123+00'),"
       "('" + kGrace + "', 'Grace Hopper', NULL, 'grace@example.com', '', ARRAY[]::text[], 5, '2022-05-06 07:08:09+02'),"
       "('" + kTwin + "', 'Ada Twin', 'ada', 'twin@example.com', NULL, NULL, 0, '2022-01-01 00:00:00+00'),"
       "('" + kBad + "', 'Bad Email', 'bademail', 'not-an-email', NULL, NULL, 0, '2022-01-01 00:00:00+00');"
       "INSERT INTO public.images (id, creator_id, image_url) VALUES "
       "('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', '" + kAda + "', '" + img + "1500'),"
       "('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', '" + kAda + "', '" + img + "2500'),"
       "('cccccccc-cccc-4ccc-8ccc-cccccccccccc', '" + kGrace + "', '" + img + "3500'),"
       "('" + kOrphanImage + "', '" + kBad + "', '" + img + "4500');");
  PQfinish(c);
  return url;
}

json::value creator_by_external_id(uint16_t port, const std::string& external_id) {
  auto items = get(port, "/api/creators?q=" + external_id).json().at("items").as_array();
  return items.size() == 1 ? items[0] : json::value();
}

}  // namespace

TEST(Import, FromASupabaseLikeDatabaseWhileTheServerServes) {
  if (pg_admin_url().empty()) GTEST_SKIP() << "needs CREATORD_TEST_POSTGRES_URL (the source database)";
  ScriptServer images(DOWNLOAD_SERVER_SCRIPT, {});
  std::string source = supabase_like_source(images.port());
  std::string dir = temp_dir("import");
  std::string map = dir + "/map.toml";
  std::ofstream(map) << "[creators]\nname = \"full_name\"\nhandle = \"username\"\n[images]\nurl = \"image_url\"\n";
  Server s;
  auto p = s.port();
  ASSERT_EQ(get(p, "/api/creators").json().at("items").as_array().size(), 0u);  // cached now
  std::string args = "import --from '" + source + "' --map " + map + " --server http://127.0.0.1:" + std::to_string(p);

  // Image URLs on loopback are internal: refused unless allowed, like a step's downloads.
  auto first = run_creatord(args, true);
  EXPECT_EQ(first.rc, 1) << first.out;
  EXPECT_NE(first.out.find("creators row " + kBad + ": 422"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("(email)"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("columns not imported: followers"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("internal and not allowed"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("images row " + kOrphanImage + ": its creator " + kBad + " was not imported"),
            std::string::npos)
      << first.out;
  EXPECT_NE(first.out.find("3 creators imported (0 already there), 0 images imported"), std::string::npos) << first.out;

  // The list the server had cached shows them at once.
  EXPECT_EQ(get(p, "/api/creators").json().at("items").as_array().size(), 3u);
  auto ada = creator_by_external_id(p, kAda);
  ASSERT_TRUE(ada.is_object());
  EXPECT_EQ(ada.at("handle").as_string(), "ada");
  EXPECT_EQ(ada.at("created_at").as_string(), "2022-03-04T05:06:07.123Z");
  EXPECT_EQ(ada.at("tags").as_array().size(), 2u);
  auto grace = creator_by_external_id(p, kGrace);
  ASSERT_TRUE(grace.is_object());
  EXPECT_EQ(grace.at("handle").as_string(), "grace-hopper");
  EXPECT_EQ(grace.at("created_at").as_string(), "2022-05-06T05:08:09.000Z");
  auto twin = creator_by_external_id(p, kTwin);
  ASSERT_TRUE(twin.is_object());
  std::string twin_handle(twin.at("handle").as_string());
  EXPECT_EQ(twin_handle.rfind("ada-", 0), 0u) << twin_handle;

  auto second = run_creatord(args + " --allow-internal 127.0.0.1", true);
  EXPECT_EQ(second.rc, 1) << second.out;
  EXPECT_NE(second.out.find("0 creators imported (3 already there), 3 images imported (0 already there), 2 rows failed"),
            std::string::npos)
      << second.out;
  auto ada_images = get(p, "/api/creators/" + std::to_string(ada.at("id").as_int64()) + "/images").json();
  ASSERT_EQ(ada_images.at("items").as_array().size(), 2u);
  for (const auto& img : ada_images.at("items").as_array()) {
    std::string url(img.at("source_url").as_string());
    EXPECT_NE(url.find("/png/length?bytes="), std::string::npos) << url;
    EXPECT_EQ(get(p, "/api/images/" + std::to_string(img.at("id").as_int64()) + "/content").status, 200);
  }

  auto third = run_creatord(args + " --allow-internal 127.0.0.1", true);
  EXPECT_NE(third.out.find("0 creators imported (3 already there), 0 images imported (3 already there)"),
            std::string::npos)
      << third.out;
  EXPECT_EQ(get(p, "/api/creators").json().at("items").as_array().size(), 3u);
  std::filesystem::remove_all(dir);
}

TEST(Import, FromAPostgrestJsonExport) {
  ScriptServer images(DOWNLOAD_SERVER_SCRIPT, {});
  std::string dir = temp_dir("import");
  std::string file = dir + "/export.json";
  std::ofstream(file) << R"([{"id":"j-1","name":"Json Person","email":"json@example.com","rank":1,"images":[)"
                      << R"({"id":"ji-1","url":"http://127.0.0.1:)" << images.port() << R"(/png/length?bytes=1800"}]}])";
  Server s;
  auto r = run_creatord("import --from-json " + file + " --allow-internal 127.0.0.1 --server http://127.0.0.1:" +
                            std::to_string(s.port()),
                        true);
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("columns not imported: rank"), std::string::npos) << r.out;
  auto c = creator_by_external_id(s.port(), "j-1");
  ASSERT_TRUE(c.is_object()) << r.out;
  EXPECT_EQ(c.at("handle").as_string(), "json-person");
  auto imgs = get(s.port(), "/api/creators/" + std::to_string(c.at("id").as_int64()) + "/images").json();
  EXPECT_EQ(imgs.at("items").as_array().size(), 1u);
  std::filesystem::remove_all(dir);
}
