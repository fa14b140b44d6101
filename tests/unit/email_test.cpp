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
  EXPECT_EQ(field(R"({"to":"Quo\"te <a@example.com>","subject":"s","text":"t"})"), "to");
  EXPECT_EQ(field(R"({"to":"\"Quote\" <a@example.com>","subject":"s","text":"t"})"), "ok");
  EXPECT_EQ(field(R"({"to":"Name <a@example.com>","subject":"s","html":"<b>x</b>"})"), "ok");
  EXPECT_EQ(address_of("Name <a@example.com>"), "a@example.com");
  EXPECT_EQ(format_rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
  EXPECT_NE(new_message_id("X <x@mail.example.org>").find("@mail.example.org>"), std::string::npos);
}

// Issue 10, defect 11: a mailbox is parsed whole and re-emitted; anything else is refused.
TEST(Mailbox, ParsesAddrSpecAndDisplayNames) {
  auto ok = [](std::string_view text) {
    auto m = parse_mailbox(text, "to");
    EXPECT_TRUE(m) << text << ": " << (m ? "" : m.error().message);
    return m ? format_mailbox(m.value()) : std::string("<refused>");
  };
  EXPECT_EQ(ok("a@example.com"), "a@example.com");
  EXPECT_EQ(ok("  a@example.com "), "a@example.com");
  EXPECT_EQ(ok("<a@example.com>"), "a@example.com");
  EXPECT_EQ(ok("Ann  Lee   <ann@example.com>"), "Ann Lee <ann@example.com>");
  EXPECT_EQ(ok("Zoë Ünïcode <zoe@example.com>"), "Zoë Ünïcode <zoe@example.com>");
  EXPECT_EQ(ok("J. R. <jr@example.com>"), "J. R. <jr@example.com>");
  // Quoted display names may hold specials; they stay quoted, escapes canonical.
  EXPECT_EQ(ok("\"Lee, Ann\" <ann@example.com>"), "\"Lee, Ann\" <ann@example.com>");
  EXPECT_EQ(ok("\"a \\\"b\\\" <c>\" <x@example.com>"), "\"a \\\"b\\\" <c>\" <x@example.com>");
  EXPECT_EQ(ok("\"Plain\" <p@example.com>"), "Plain <p@example.com>");
  EXPECT_EQ(ok("\"\" <p@example.com>"), "p@example.com");
  // The canonical form parses to the same mailbox, and address_of finds the real address.
  auto m = parse_mailbox("\"x <evil@attacker.example>\" <real@example.com>", "to");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->address, "real@example.com");
  EXPECT_EQ(address_of(format_mailbox(m.value())), "real@example.com");
  auto again = parse_mailbox(format_mailbox(m.value()), "to");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->display_name, m->display_name);
  EXPECT_EQ(again->address, m->address);
}

TEST(Mailbox, RefusesTextAfterTheAddressControlBytesAndSecondAddresses) {
  auto refused = [](std::string_view text) {
    auto m = parse_mailbox(text, "reply_to");
    if (m) return std::string("accepted as ") + format_mailbox(m.value());
    EXPECT_EQ(m.error().field.value_or(""), "reply_to") << text;
    return std::string("refused");
  };
  for (std::string_view bad : {
           "A <a@example.com>, b@evil.example",  // a second address after '>'
           "A <a@example.com> b@evil.example",
           "A <a@example.com>>",
           "<a@example.com><b@example.com>",
           "a@example.com, b@example.com",
           "a@example.com b@example.com",
           "A <a@example.com",
           "A a@example.com>",
           "Ann, Lee <a@example.com>",  // specials in an unquoted name
           "Ann (x) <a@example.com>",
           "An\"n <a@example.com>",
           "\"Ann <a@example.com>",  // unclosed quote
           "\"Ann\" x <a@example.com>",
           "A <not-an-address>",
           "A <>",
           "",
           "A\x01 <a@example.com>",  // control bytes
           "A\t<a@example.com>",
           "\"A\x7f\" <a@example.com>",
           "A <a@example.com>\r\nBcc: v@example.com",
           "\xff\xfe <a@example.com>",  // not UTF-8
       })
    EXPECT_EQ(refused(bad), "refused") << bad;
}

TEST(EmailRequest, StoresCanonicalMailboxes) {
  MailLimits limits;
  auto r = parse_email_request(boost::json::parse(R"({"to":["  Ann   Lee <ann@example.com> ","\"Lee, Bo\" <bo@example.com>"],
      "reply_to":"<help@example.com>","subject":"s","text":"t"})"), limits);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->to, (std::vector<std::string>{"Ann Lee <ann@example.com>", "\"Lee, Bo\" <bo@example.com>"}));
  EXPECT_EQ(r->reply_to.value_or(""), "help@example.com");
  auto bad = parse_email_request(boost::json::parse(R"({"to":"a@example.com","reply_to":"H <h@example.com>, x@evil.example",
      "subject":"s","text":"t"})"), limits);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, creatord::ErrorCode::validation);
  EXPECT_EQ(bad.error().field.value_or(""), "reply_to");
  // In the message: the quoted name stays one mailbox.
  creatord::Email e = r.value();
  e.from = "App <app@example.com>";
  e.message_id = "<x@example.com>";
  std::string mime = build_mime(e);
  EXPECT_NE(mime.find("To: \"Ann Lee\" <ann@example.com>,\r\n \"Lee, Bo\" <bo@example.com>\r\n"), std::string::npos) << mime;
  EXPECT_NE(mime.find("Reply-To: help@example.com\r\n"), std::string::npos) << mime;
}
