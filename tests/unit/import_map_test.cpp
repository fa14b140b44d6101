// Issue 14: rows of the original service made into creators, without I/O.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "app/import_map.hpp"

using namespace creatord;
namespace json = boost::json;

namespace {

json::object row(const char* text) { return json::parse(text).as_object(); }

std::string write_temp(const std::string& name, const std::string& text) {
  auto path = (std::filesystem::temp_directory_path() / name).string();
  std::ofstream(path) << text;
  return path;
}

}  // namespace

TEST(ImportMap, ARowKeepsItsIdAndTimeAndGetsItsOwnHandle) {
  ImportMap map;
  auto c = creator_from_row(row(R"({"id":"0b6f2a8e-1111-4c3b-9d1e-000000000001","name":"Zoë Ångström",)"
                                R"("email":"zoe@example.com","tags":["art","ink"],"created_at":"2023-02-03T04:05:06.789123+00:00",)"
                                R"("bio":null})"),
                            map);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->external_id, "0b6f2a8e-1111-4c3b-9d1e-000000000001");
  EXPECT_EQ(c->body.at("external_id").as_string(), c->external_id);
  EXPECT_EQ(c->body.at("handle").as_string(), "zo-ngstr-m");
  EXPECT_EQ(c->body.at("created_at").as_string(), "2023-02-03T04:05:06.789Z");
  EXPECT_EQ(c->body.at("tags").as_array().size(), 2u);
  EXPECT_FALSE(c->body.contains("bio"));
}

TEST(ImportMap, HandlesAreDerivedTheSameWayEveryTime) {
  EXPECT_EQ(derive_handle("Mei_Lin", "x", ""), "mei_lin");
  EXPECT_EQ(derive_handle("", "  Nora  Quist! ", ""), "nora-quist");
  EXPECT_EQ(derive_handle("", "", "first.last@example.com"), "first.last");
  EXPECT_EQ(derive_handle("", "日本", ""), "creator");
  EXPECT_EQ(derive_handle("", std::string(80, 'a'), "").size(), 40u);
  EXPECT_EQ(disambiguated_handle("nora", "id-1"), disambiguated_handle("nora", "id-1"));
  EXPECT_NE(disambiguated_handle("nora", "id-1"), disambiguated_handle("nora", "id-2"));
  // Numbers as ids, and a name from the email when there is none.
  auto c = creator_from_row(row(R"({"id":42,"email":"sam@example.com"})"), ImportMap{});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->external_id, "42");
  EXPECT_EQ(c->body.at("name").as_string(), "sam");
}

TEST(ImportMap, BadRowsSayWhy) {
  auto no_id = creator_from_row(row(R"({"name":"x"})"), ImportMap{});
  ASSERT_FALSE(no_id);
  EXPECT_NE(no_id.error().message.find("no id"), std::string::npos);
  auto bad_time = creator_from_row(row(R"({"id":"a","created_at":"last tuesday"})"), ImportMap{});
  ASSERT_FALSE(bad_time);
  EXPECT_EQ(bad_time.error().field, "created_at");
}

TEST(ImportMap, AMapFileRenamesColumnsAndTheRestIsReported) {
  auto path = write_temp("import-map-test.toml",
                         "[creators]\nname = \"full_name\"\nhandle = \"username\"\nignore = [\"updated_at\"]\n"
                         "[images]\nurl = \"image_url\"\n");
  auto map = load_import_map(path);
  ASSERT_TRUE(map) << map.error().message;
  auto r = row(R"({"id":"a","full_name":"Ada","username":"ada","followers":3,"updated_at":"x"})");
  auto c = creator_from_row(r, map.value());
  ASSERT_TRUE(c);
  EXPECT_EQ(c->body.at("handle").as_string(), "ada");
  auto unknown = unknown_columns(r, map->creators, map->creators_ignore);
  ASSERT_EQ(unknown.size(), 1u);
  EXPECT_EQ(unknown[0], "followers");
  EXPECT_EQ(map->images.at("url"), "image_url");

  auto wrong = load_import_map(write_temp("import-map-bad.toml", "[creators]\nnickname = \"x\"\n"));
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().message.find("no field 'nickname'"), std::string::npos) << wrong.error().message;
  std::filesystem::remove(path);
}
