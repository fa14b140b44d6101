// Issue 14: what an import from another service keeps: a creator's original id (external_id) and
// time (created_at), an image's original URL (source_url). The same on both stores.
#include <gtest/gtest.h>

#include "../unit/test_images.hpp"
#include "harness.hpp"

using namespace harness;
namespace json = boost::json;

TEST(ImportFields, ExternalIdIsKeptUniqueSearchableAndClearable) {
  Server s;
  auto p = s.port();
  auto a = post_json(p, "/api/creators",
                     R"({"name":"Old Friend","handle":"oldfriend","external_id":"5f0c7b1e-2d7a-4c1e-9a57-2f3d1c2b9e10",)"
                     R"("created_at":"2023-04-05T06:07:08.250Z"})");
  ASSERT_EQ(a.status, 201) << a.body;
  auto aj = a.json();
  EXPECT_EQ(aj.at("external_id").as_string(), "5f0c7b1e-2d7a-4c1e-9a57-2f3d1c2b9e10");
  EXPECT_EQ(aj.at("created_at").as_string(), "2023-04-05T06:07:08.250Z");
  EXPECT_NE(aj.at("updated_at").as_string(), "2023-04-05T06:07:08.250Z");
  auto id = aj.at("id").as_int64();

  auto plain = post_json(p, "/api/creators", R"({"name":"New","handle":"newone"})");
  ASSERT_EQ(plain.status, 201);
  EXPECT_TRUE(plain.json().at("external_id").is_null());

  auto dup = post_json(p, "/api/creators",
                       R"({"name":"Twin","handle":"twin","external_id":"5f0c7b1e-2d7a-4c1e-9a57-2f3d1c2b9e10"})");
  EXPECT_EQ(dup.status, 409);
  EXPECT_EQ(dup.json().at("error").at("field").as_string(), "external_id");
  auto taken = post_json(p, "/api/creators", R"({"name":"Twin","handle":"oldfriend","external_id":"other"})");
  EXPECT_EQ(taken.status, 409);
  EXPECT_EQ(taken.json().at("error").at("field").as_string(), "handle");

  auto found = get(p, "/api/creators?q=5f0c7b1e-2d7a-4c1e-9a57-2f3d1c2b9e10").json().at("items").as_array();
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].at("id").as_int64(), id);
  EXPECT_EQ(get(p, "/api/creators?q=5f0c7b1e").json().at("items").as_array().size(), 0u) << "exact, not a prefix";

  std::string long_id(129, 'x');
  auto too_long = post_json(p, "/api/creators", R"({"name":"L","handle":"longid","external_id":")" + long_id + "\"}");
  EXPECT_EQ(too_long.status, 422);
  EXPECT_EQ(too_long.json().at("error").at("field").as_string(), "external_id");
  auto bad_time = post_json(p, "/api/creators", R"({"name":"T","handle":"badtime","created_at":"yesterday"})");
  EXPECT_EQ(bad_time.status, 422);
  EXPECT_EQ(bad_time.json().at("error").at("field").as_string(), "created_at");

  auto patched = request(p, "PATCH", "/api/creators/" + std::to_string(id), R"({"external_id":null})",
                         {{"Content-Type", "application/json"}});
  ASSERT_EQ(patched.status, 200) << patched.body;
  EXPECT_TRUE(patched.json().at("external_id").is_null());
  auto time_patch = request(p, "PATCH", "/api/creators/" + std::to_string(id), R"({"created_at":"2020-01-01T00:00:00Z"})",
                            {{"Content-Type", "application/json"}});
  EXPECT_EQ(time_patch.status, 422) << "created_at is set on create only";
}

TEST(ImportFields, AnImageKeepsTheUrlItCameFrom) {
  Server s;
  auto p = s.port();
  auto c = post_json(p, "/api/creators", R"({"name":"Pics","handle":"pics"})").json().at("id").as_int64();
  std::string path = "/api/creators/" + std::to_string(c) + "/images";
  std::string url = "https://abc.supabase.co/storage/v1/object/public/images/a%20b.png?v=1";
  auto up = request(p, "POST", path + "?source_url=" + "https%3A%2F%2Fabc.supabase.co%2Fstorage%2Fv1%2Fobject%2Fpublic%2Fimages%2Fa%2520b.png%3Fv%3D1",
                    test_images::real_png(5, 6), {{"Content-Type", "image/png"}});
  ASSERT_EQ(up.status, 201) << up.body;
  EXPECT_EQ(up.json().at("source_url").as_string(), url);
  auto id = up.json().at("id").as_int64();
  EXPECT_EQ(get(p, "/api/images/" + std::to_string(id)).json().at("source_url").as_string(), url);
  auto plain = request(p, "POST", path, test_images::real_png(6, 6), {{"Content-Type", "image/png"}});
  ASSERT_EQ(plain.status, 201);
  EXPECT_TRUE(plain.json().at("source_url").is_null());
  auto bad = request(p, "POST", path + "?source_url=file%3A%2F%2F%2Fetc%2Fpasswd", test_images::real_png(7, 6),
                     {{"Content-Type", "image/png"}});
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.json().at("error").at("field").as_string(), "source_url");
}
