#include "domain/creator.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

using namespace creatord;

namespace {
Result<CreatorFields> parse(const char* json, FieldsMode mode = FieldsMode::create) {
  return parse_creator_fields(boost::json::parse(json), mode);
}
std::string field_of(const Result<CreatorFields>& r) { return r.ok() ? "" : r.error().field.value_or(""); }
}  // namespace

TEST(CreatorFields, AcceptsAValidCreator) {
  auto r = parse(R"({"name":"  Mei Lin ","handle":"MeiLin","email":"mei@example.com","bio":"a\nb","tags":["x","y","x"]})");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r->name, "Mei Lin");
  EXPECT_EQ(*r->handle, "meilin");
  EXPECT_EQ(r->email->value(), "mei@example.com");
  EXPECT_EQ(*r->bio, "a\nb");
  EXPECT_EQ(r->tags->size(), 2u);  // duplicates folded
}

TEST(CreatorFields, NamesTheFieldOfEachMistake) {
  EXPECT_EQ(field_of(parse(R"({"handle":"a"})")), "name");
  EXPECT_EQ(field_of(parse(R"({"name":"a"})")), "handle");
  EXPECT_EQ(field_of(parse(R"({"name":"","handle":"a"})")), "name");
  EXPECT_EQ(field_of(parse(R"({"name":5,"handle":"a"})")), "name");
  EXPECT_EQ(field_of(parse(R"({"name":"a","handle":"has space"})")), "handle");
  EXPECT_EQ(field_of(parse(R"({"name":"a","handle":"_x"})")), "handle");
  EXPECT_EQ(field_of(parse(R"({"name":"a","handle":"a","email":"nope"})")), "email");
  EXPECT_EQ(field_of(parse(R"({"name":"a","handle":"a","tags":"x"})")), "tags");
  EXPECT_EQ(field_of(parse(R"({"name":"a","handle":"a","tags":["ok", 3]})")), "tags[1]");
  EXPECT_EQ(field_of(parse(R"({"name":"a","handle":"a","color":"red"})")), "color");
  EXPECT_EQ(field_of(parse(R"({"name":"a","handle":"a","id":7})")), "id");
  EXPECT_EQ(field_of(parse(R"({"name":"a\u0001b","handle":"a"})")), "name");
  std::string long_name = R"({"name":")" + std::string(201, 'x') + R"(","handle":"a"})";
  EXPECT_EQ(field_of(parse(long_name.c_str())), "name");
  EXPECT_FALSE(parse("[1,2]"));
}

TEST(CreatorFields, LengthsCountCharactersNotBytes) {
  std::string name;
  for (int i = 0; i < 200; ++i) name += "é";
  std::string body = R"({"name":")" + name + R"(","handle":"a"})";
  EXPECT_TRUE(parse(body.c_str()));
}

TEST(CreatorFields, PatchAllowsSubsetsAndClearingEmail) {
  auto r = parse(R"({"email":null})", FieldsMode::patch);
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->email.has_value());
  EXPECT_FALSE(r->email->has_value());
  Creator c;
  c.name = "Old";
  c.email = "old@example.com";
  apply_fields(c, r.value());
  EXPECT_EQ(c.name, "Old");
  EXPECT_FALSE(c.email.has_value());
  EXPECT_TRUE(parse("{}", FieldsMode::patch));
}

TEST(CreatorFields, SqlLookingTextIsJustText) {
  auto r = parse(R"({"name":"Robert'); DROP TABLE creators;--","handle":"bobby"})");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r->name, "Robert'); DROP TABLE creators;--");
}

TEST(Email, Syntax) {
  EXPECT_TRUE(is_valid_email("a@b.co"));
  EXPECT_TRUE(is_valid_email("first.last+tag@sub.example.org"));
  EXPECT_FALSE(is_valid_email("a@b"));
  EXPECT_FALSE(is_valid_email("@b.co"));
  EXPECT_FALSE(is_valid_email("a@.co"));
  EXPECT_FALSE(is_valid_email("a b@c.co"));
  EXPECT_FALSE(is_valid_email("a@b.co\r\nBcc: x@y.z"));
  EXPECT_FALSE(is_valid_email("a..b@c.co"));
}

TEST(CreatorJson, HasEveryField) {
  Creator c;
  c.id = 3;
  c.name = "N";
  c.handle = "n";
  c.tags = {"t"};
  c.created_at_ms = 0;
  c.updated_at_ms = 1500;
  auto o = to_json(c);
  EXPECT_EQ(o["id"].as_int64(), 3);
  EXPECT_TRUE(o["email"].is_null());
  EXPECT_EQ(o["created_at"].as_string(), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(o["updated_at"].as_string(), "1970-01-01T00:00:01.500Z");
  EXPECT_EQ(o["tags"].as_array().size(), 1u);
}
