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

#include <ctime>
#include <random>

#include <fmt/format.h>

#include "core/clock.hpp"
#include "core/json_text.hpp"

namespace {

// What format_rfc3339 wrote before it cached the date: gmtime and fmt for every timestamp.
std::string rfc3339_by_gmtime(int64_t unix_ms) {
  time_t secs = static_cast<time_t>(unix_ms / 1000);
  int ms = static_cast<int>(unix_ms % 1000);
  if (ms < 0) {
    ms += 1000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

std::string random_text(std::mt19937_64& rng) {
  static const std::vector<std::string> pieces = {"a", "Z", " ", "\"", "\\", "/", "\n", "\t", "\b", "\f", "\r",
                                                  std::string(1, '\x01'), std::string(1, '\x1f'), "\x7f", "é", "🎨",
                                                  "日本", "</script>", "%", "_", "'"};
  std::string s;
  for (size_t n = rng() % 12; n > 0; --n) s += pieces[rng() % pieces.size()];
  return s;
}

}  // namespace

TEST(Rfc3339, CachedDateMatchesGmtimeAcrossDaysAndBefore1970) {
  std::vector<int64_t> samples = {0, -1, -999, -1000, -1001, 86400000 - 1, 86400000, -86400000, -86400000 - 1,
                                  951782400000 /* 2000-02-29 */, 4102444799999 /* 2099-12-31 end */, 1764398401123};
  std::mt19937_64 rng(13);
  for (int i = 0; i < 20000; ++i) samples.push_back(static_cast<int64_t>(rng() % 8000000000000ULL) - 1000000000000LL);
  for (int64_t ms : samples) {
    EXPECT_EQ(format_rfc3339(ms), rfc3339_by_gmtime(ms)) << ms;
    std::string appended = "x";
    append_rfc3339(appended, ms);
    EXPECT_EQ(appended, "x" + rfc3339_by_gmtime(ms)) << ms;
  }
}

TEST(CreatorJson, TextWrittenDirectlyIsTheSerializersText) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 2000; ++i) {
    Creator c;
    c.id = static_cast<int64_t>(rng() >> 1);
    c.name = random_text(rng);
    c.handle = random_text(rng);
    if (rng() % 2) c.email = random_text(rng);
    c.bio = random_text(rng);
    for (size_t n = rng() % 4; n > 0; --n) c.tags.push_back(random_text(rng));
    c.created_at_ms = static_cast<int64_t>(rng() % 4102444800000ULL);
    c.updated_at_ms = c.created_at_ms + static_cast<int64_t>(rng() % 100000);
    std::string direct;
    append_json(direct, c);
    EXPECT_EQ(direct, boost::json::serialize(to_json(c)));
    EXPECT_EQ(direct, to_json_text(to_json(c)));
  }
}

TEST(CreatorJson, StringsAreEscapedAsBoostDoes) {
  std::string all;
  for (int c = 1; c < 256; ++c) all.push_back(static_cast<char>(c));
  std::string direct;
  append_json_string(direct, all);
  EXPECT_EQ(direct, boost::json::serialize(boost::json::string(all)));
}

// The escape scan looks at eight bytes at a time: a byte to escape (or one just beside the
// ranges that need it) at every place of strings around those lengths is escaped as Boost does.
TEST(CreatorJson, EscapesAreFoundAtEveryPlaceOfALongString) {
  const std::string specials = std::string("\x01\x1f\"\\\n", 5) + std::string(1, '\0');
  const std::string neighbours = " !#[]\x7f\x80\xff";
  for (size_t len : {7, 8, 9, 15, 16, 17, 24, 33})
    for (size_t pos = 0; pos < len; ++pos)
      for (char b : specials + neighbours) {
        std::string s(len, 'a');
        s[pos] = b;
        if (pos + 3 < len) s[pos + 3] = '"';  // a second one in the same eight bytes, sometimes
        std::string direct;
        append_json_string(direct, s);
        ASSERT_EQ(direct, boost::json::serialize(boost::json::string(s))) << "len " << len << " pos " << pos << " byte "
                                                                          << int(static_cast<unsigned char>(b));
      }
}

namespace {
// How the stores read tags before the split without the parser.
std::vector<std::string> tags_by_parser(const std::string& text) {
  std::vector<std::string> out;
  boost::system::error_code ec;
  auto v = boost::json::parse(text, ec);
  if (ec || !v.is_array()) return out;
  for (const auto& t : v.get_array())
    if (t.is_string()) out.emplace_back(t.get_string());
  return out;
}
}  // namespace

TEST(CreatorTags, ReadAsTheParserReadsThem) {
  std::vector<std::string> texts = {"",          "[",          "]",         "[]",          "[\"a\"",     "[\"a\",]",
                                    "[\"a\" ]",  "[1,\"a\"]",  "{\"a\":1}", "[\"a\"]x",    "[\"a\"]]",   "[\"a\"\"b\"]",
                                    "[\"a,b\"]", "[\",\",\"\"]", "[\"\\u00e9\"]", "[\"\\\"\"]", " [\"a\"]", "[\"a\",\"b\"]",
                                    "null",      "[[\"a\"]]",  "[\"\"]",    "[\"a\",,\"b\"]"};
  std::mt19937 rng(7);
  const std::vector<std::string> alphabet = {"a", "b", " ", ",", "[", "]", "\"", "\\", "\n", "\t", "{", "}", ":", "\x01", "é", "日"};
  for (int i = 0; i < 2000; ++i) {
    std::vector<std::string> tags(rng() % 4);
    for (auto& t : tags)
      for (size_t n = rng() % 6; n > 0; --n) t += alphabet[rng() % alphabet.size()];
    texts.push_back(tags_to_json_text(tags));
    EXPECT_EQ(tags_from_json_text(texts.back()), tags);
  }
  for (const auto& t : texts) EXPECT_EQ(tags_from_json_text(t), tags_by_parser(t)) << t;
}
