#include "core/json_text.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

using creatord::format_json_double;
using creatord::normalize_json_text;
using creatord::to_json_text;

TEST(JsonText, IntegralDoublesAreIntegers) {
  EXPECT_EQ(format_json_double(0.0), "0");
  EXPECT_EQ(format_json_double(-0.0), "0");
  EXPECT_EQ(format_json_double(1.0), "1");
  EXPECT_EQ(format_json_double(250.0), "250");
  EXPECT_EQ(format_json_double(-3.0), "-3");
}

TEST(JsonText, FractionsHaveAtMostThreeDecimals) {
  EXPECT_EQ(format_json_double(1.0 / 3), "0.333");
  EXPECT_EQ(format_json_double(2.0 / 3), "0.667");
  EXPECT_EQ(format_json_double(0.2), "0.2");
  EXPECT_EQ(format_json_double(12.5), "12.5");
  EXPECT_EQ(format_json_double(0.9999), "1");
  EXPECT_EQ(format_json_double(0.000123456), "0.000123");
  EXPECT_EQ(format_json_double(1e-9), "1e-09");
  EXPECT_EQ(format_json_double(1e20), "1e+20");
}

TEST(JsonText, CompactMatchesBoostExceptForDoubles) {
  auto v = boost::json::parse(R"({"a":[1,-2,true,null,"x\"y\u00e9\n"],"b":{},"c":[],"u":18446744073709551615})");
  EXPECT_EQ(to_json_text(v), boost::json::serialize(v));
  EXPECT_EQ(to_json_text(boost::json::parse(R"({"p":0.5})")), R"({"p":0.5})");
  EXPECT_EQ(to_json_text(boost::json::parse(R"({"progress":3.333333333333333E-1,"n":1E0})")),
            R"({"progress":0.333,"n":1})");
  EXPECT_EQ(normalize_json_text(R"({"progress":0E0})"), R"({"progress":0})");
  EXPECT_EQ(normalize_json_text("not json"), "not json");
}

TEST(JsonText, PrettyIndents) {
  auto v = boost::json::parse(R"({"a":[1,2],"b":{}})");
  EXPECT_EQ(to_json_text(v, 2), "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": {}\n}");
}
