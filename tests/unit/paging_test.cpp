#include "domain/paging.hpp"

#include <gtest/gtest.h>

using namespace creatord;

TEST(Paging, CursorRoundTrips) {
  for (int64_t id : {1LL, 42LL, 1000000LL, 9223372036854775807LL}) {
    auto c = encode_cursor(id);
    EXPECT_EQ(decode_cursor(c).value(), id) << c;
  }
}

TEST(Paging, RejectsForgedCursors) {
  EXPECT_FALSE(decode_cursor(""));
  EXPECT_FALSE(decode_cursor("!!!"));
  EXPECT_FALSE(decode_cursor("djE6"));      // "v1:" with no id
  EXPECT_FALSE(decode_cursor("eDE6Nw"));    // wrong version
  EXPECT_FALSE(decode_cursor(std::string(100, 'A')));
}

TEST(Paging, ParsesLimits) {
  EXPECT_EQ(parse_page_query(std::nullopt, std::nullopt, std::nullopt)->limit, 50);
  EXPECT_EQ(parse_page_query(std::string("200"), std::nullopt, std::nullopt)->limit, 200);
  for (const char* bad : {"0", "-1", "201", "abc", "", "5x", "99999999999999999999"}) {
    auto r = parse_page_query(std::string(bad), std::nullopt, std::nullopt);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().field.value(), "limit");
    EXPECT_EQ(r.error().code, ErrorCode::bad_request);
  }
  auto bad_cursor = parse_page_query(std::nullopt, std::string("zzz"), std::nullopt);
  ASSERT_FALSE(bad_cursor);
  EXPECT_EQ(bad_cursor.error().field.value(), "cursor");
}

TEST(Paging, ParsesIds) {
  EXPECT_EQ(parse_id("1").value(), 1);
  EXPECT_EQ(parse_id("9223372036854775807").value(), INT64_MAX);
  for (const char* bad : {"0", "-3", "01", "1.5", "abc", "", "9223372036854775808", " 1"}) EXPECT_FALSE(parse_id(bad)) << bad;
}
