#include "mail/email.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

using namespace creatord;

TEST(Mime, HeaderWordsAreEncodedOnlyWhenNeeded) {
  EXPECT_EQ(encode_header_word("plain subject"), "plain subject");
  EXPECT_EQ(encode_header_word("Grüße"), "=?UTF-8?B?R3LDvMOfZQ==?=");
  std::string long_text;
  for (int i = 0; i < 40; ++i) long_text += "ü";
  auto enc = encode_header_word(long_text);
  size_t start = 0;
  while (start < enc.size()) {  // every encoded word fits in 75 characters
    size_t end = enc.find("\r\n ", start);
    std::string word = enc.substr(start, end == std::string::npos ? std::string::npos : end - start);
    EXPECT_LE(word.size(), 75u) << word;
    EXPECT_EQ(word.rfind("=?UTF-8?B?", 0), 0u);
    if (end == std::string::npos) break;
    start = end + 3;
  }
}

TEST(Mime, QuotedPrintable) {
  EXPECT_EQ(quoted_printable("hello"), "hello");
  EXPECT_EQ(quoted_printable("a=b"), "a=3Db");
  EXPECT_EQ(quoted_printable("café"), "caf=C3=A9");
  EXPECT_EQ(quoted_printable("trailing \nnext"), "trailing=20\r\nnext");
  EXPECT_EQ(quoted_printable("x\n.\ny"), "x\r\n=2E\r\ny");
  std::string longline(200, 'a');
  auto q = quoted_printable(longline);
  for (size_t pos = 0, next; pos < q.size(); pos = next + 2) {
    next = q.find("\r\n", pos);
    if (next == std::string::npos) next = q.size();
    EXPECT_LE(next - pos, 76u);
  }
}

TEST(Mime, BccNeverInHeadersAndPartsAreAlternatives) {
  Email e;
  e.id = 7;
  e.from = "App <app@example.com>";
  e.to = {"a@example.com"};
  e.bcc = {"hidden@example.com"};
  e.subject = "Hi";
  e.text = "text";
  e.html = "<p>html</p>";
  e.message_id = "<x@example.com>";
  auto m = build_mime(e);
  EXPECT_EQ(m.find("hidden@example.com"), std::string::npos);
  EXPECT_NE(m.find("multipart/alternative"), std::string::npos);
  EXPECT_NE(m.find("Message-ID: <x@example.com>"), std::string::npos);
  EXPECT_LT(m.find("text/plain"), m.find("text/html"));  // the richer part last
}

TEST(EmailRequest, ValidatesAndNamesFields) {
  MailLimits limits;
  auto ok = parse_email_request(boost::json::parse(R"({"to":"a@example.com","subject":"s","text":"t"})"), limits);
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->to.size(), 1u);
  auto field = [&](const char* json) {
    auto r = parse_email_request(boost::json::parse(json), limits);
    return r.ok() ? std::string("ok") : r.error().field.value_or("");
  };
  EXPECT_EQ(field(R"({"to":"a@example.com","subject":"a\rb","text":"t"})"), "subject");
  EXPECT_EQ(field(R"({"to":"a@example.com\nBcc: b@c.de","subject":"s","text":"t"})"), "to");
  EXPECT_EQ(field(R"({"to":"\"Quote\" <a@example.com>","subject":"s","text":"t"})"), "to");
  EXPECT_EQ(field(R"({"to":"Name <a@example.com>","subject":"s","html":"<b>x</b>"})"), "ok");
  EXPECT_EQ(address_of("Name <a@example.com>"), "a@example.com");
  EXPECT_EQ(format_rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
  EXPECT_NE(new_message_id("X <x@mail.example.org>").find("@mail.example.org>"), std::string::npos);
}
