// The email outbox against a real SMTP server (aiosmtpd): what it received is checked.
#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "harness.hpp"

using namespace harness;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

const std::string kToken = "mail-token-0123456789abcdef";
const Headers kAuth = {{"Authorization", "Bearer " + kToken}};

std::vector<std::string> mail_args(const SmtpServer& smtp, std::vector<std::string> extra = {}) {
  std::vector<std::string> a = {"--smtp-url", "smtp://127.0.0.1:" + std::to_string(smtp.port()), "--job-retry-base", "0.05",
                                "--job-retry-cap", "0.3", "--job-poll", "0.2", "--mail-from", "Creatord Test <noreply@example.com>"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

Server::Options with_tokens(std::vector<std::string> args) {
  return Server::Options{.args = std::move(args), .env = {{"CREATORD_API_TOKENS", kToken}}};
}

Response send(uint16_t port, const std::string& body, Headers h = kAuth) { return post_json(port, "/api/send-email", body, std::move(h)); }

json::value wait_email(uint16_t port, int64_t id, std::initializer_list<const char*> states, std::chrono::milliseconds timeout = 30s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  json::value last;
  while (std::chrono::steady_clock::now() < deadline) {
    last = get(port, "/api/emails/" + std::to_string(id), kAuth).json();
    for (const char* s : states)
      if (last.is_object() && last.at("state").as_string() == s) return last;
    std::this_thread::sleep_for(20ms);
  }
  return last;
}

std::string header_block(const std::string& data) { return data.substr(0, data.find("\r\n\r\n")); }

}  // namespace

TEST(Email, DeliversAWellFormedMessage) {
  SmtpServer smtp;
  Server s(with_tokens(mail_args(smtp)));
  auto r = send(s.port(), R"({"to":["Zoë Ünïcode <zoe@example.com>","bob@example.com"],"cc":"carol@example.com",
    "bcc":["secret@example.com"],"reply_to":"help@example.com","subject":"Grüße aus Köln — ✓",
    "text":"Hello Zoë\nline two\n.\nend","html":"<p>Hello <b>Zoë</b></p>"})");
  ASSERT_EQ(r.status, 202) << r.body;
  auto id = r.json().at("id").as_int64();
  EXPECT_EQ(r.header("location"), "/api/emails/" + std::to_string(id));
  EXPECT_EQ(r.json().at("state").as_string(), "queued");
  auto sent = wait_email(s.port(), id, {"sent", "failed"});
  ASSERT_EQ(sent.at("state").as_string(), "sent") << json::serialize(sent);
  EXPECT_NE(sent.at("smtp_reply").as_string().find("250"), std::string::npos);
  EXPECT_EQ(sent.at("attempts").as_int64(), 1);

  auto msgs = smtp.wait_for(1);
  ASSERT_EQ(msgs.size(), 1u);
  const auto& m = msgs[0];
  EXPECT_EQ(m.at("mail_from").as_string(), "noreply@example.com");
  std::set<std::string> rcpts;
  for (const auto& x : m.at("rcpt_tos").as_array()) rcpts.insert(std::string(x.as_string()));
  EXPECT_EQ(rcpts, (std::set<std::string>{"zoe@example.com", "bob@example.com", "carol@example.com", "secret@example.com"}));
  std::string data(m.at("data").as_string());
  std::string head = header_block(data);
  EXPECT_EQ(head.find("secret@example.com"), std::string::npos) << "bcc leaked into the headers";
  EXPECT_EQ(head.find("Bcc:"), std::string::npos);
  EXPECT_NE(head.find("Subject: =?UTF-8?B?"), std::string::npos);
  EXPECT_NE(head.find("To: =?UTF-8?B?"), std::string::npos);  // the display name is encoded
  EXPECT_NE(head.find("Cc: carol@example.com"), std::string::npos);
  EXPECT_NE(head.find("Reply-To: help@example.com"), std::string::npos);
  EXPECT_NE(head.find("From: \"Creatord Test\" <noreply@example.com>"), std::string::npos);
  EXPECT_NE(head.find("Date: "), std::string::npos);
  EXPECT_NE(head.find("Message-ID: " + std::string(sent.at("message_id").as_string())), std::string::npos);
  EXPECT_NE(head.find("multipart/alternative"), std::string::npos);
  EXPECT_NE(data.find("Content-Type: text/plain; charset=UTF-8"), std::string::npos);
  EXPECT_NE(data.find("Content-Type: text/html; charset=UTF-8"), std::string::npos);
  EXPECT_NE(data.find("Hello Zo=C3=AB"), std::string::npos);  // quoted-printable UTF-8
  EXPECT_NE(data.find("\r\n=2E\r\n"), std::string::npos);   // a lone dot cannot end DATA early
  // The subject decodes back to what was sent.
  auto list = get(s.port(), "/api/emails?state=sent", kAuth).json().at("items").as_array();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].at("subject").as_string(), "Grüße aus Köln — ✓");
}

TEST(Email, QueuedWhileTheServerIsDownAndDeliveredOnceWhenItIsBack) {
  uint16_t port = free_port();  // nothing listens here yet
  Server s(with_tokens({"--smtp-url", "smtp://127.0.0.1:" + std::to_string(port), "--job-retry-base", "0.05",
                        "--job-retry-cap", "0.5", "--job-poll", "0.2", "--smtp-connect-timeout", "1",
                        "--mail-max-attempts", "100"}));
  std::vector<int64_t> ids;
  for (int i = 0; i < 5; ++i) {
    auto r = send(s.port(), R"({"to":"user)" + std::to_string(i) + R"(@example.com","subject":"n)" + std::to_string(i) +
                                R"(","text":"hi"})");
    ASSERT_EQ(r.status, 202);
    ids.push_back(r.json().at("id").as_int64());
  }
  // Retrying: still queued, with the connection error kept.
  auto waiting = wait_email(s.port(), ids[0], {"__never__"}, 1500ms);
  EXPECT_TRUE(waiting.at("state").as_string() == "queued" || waiting.at("state").as_string() == "sending");
  EXPECT_GE(waiting.at("attempts").as_int64(), 1);
  EXPECT_FALSE(waiting.at("last_error").is_null());
  SmtpServer smtp({}, port);
  for (auto id : ids) EXPECT_EQ(wait_email(s.port(), id, {"sent"}, 30s).at("state").as_string(), "sent");
  std::this_thread::sleep_for(500ms);
  auto msgs = smtp.messages();
  EXPECT_EQ(msgs.size(), 5u);  // each once
  std::set<std::string> subjects;
  for (const auto& m : msgs) subjects.insert(header_block(std::string(m.at("data").as_string())));
  EXPECT_EQ(subjects.size(), 5u);
}

TEST(Email, A5xxFailsAtOnceAndA4xxRetries) {
  std::string tempfail = temp_dir("tempfail") + "/on";
  { std::ofstream(tempfail) << "1"; }
  SmtpServer smtp({"--reject", "nobody", "--tempfail", tempfail});
  Server s(with_tokens(mail_args(smtp)));
  auto bad = send(s.port(), R"({"to":"nobody@example.com","subject":"x","text":"y"})").json().at("id").as_int64();
  auto failed = wait_email(s.port(), bad, {"failed", "sent"});
  EXPECT_EQ(failed.at("state").as_string(), "failed");
  // The server's own reply to the refused RCPT, not the "221 Bye" that followed it.
  EXPECT_EQ(failed.at("smtp_reply").as_string().find("550 5.1.1 <nobody@example.com>: Recipient address rejected"), 0u)
      << json::serialize(failed);
  EXPECT_EQ(failed.at("attempts").as_int64(), 1);

  auto later = send(s.port(), R"({"to":"somebody@example.com","subject":"x","text":"y"})").json().at("id").as_int64();
  auto retrying = wait_email(s.port(), later, {"__never__"}, 1s);
  EXPECT_NE(retrying.at("state").as_string(), "sent");
  EXPECT_NE(retrying.at("last_error").as_string().find("451"), std::string::npos) << json::serialize(retrying);
  std::filesystem::remove(tempfail);
  auto sent = wait_email(s.port(), later, {"sent"});
  EXPECT_EQ(sent.at("state").as_string(), "sent");
  EXPECT_GE(sent.at("attempts").as_int64(), 2);
  EXPECT_EQ(smtp.messages().size(), 1u);
}

TEST(Email, BadRequestsAreRefusedAndNothingIsSent) {
  SmtpServer smtp;
  Server s(with_tokens(mail_args(smtp, {"--mail-max-body-bytes", "100", "--mail-max-recipients", "3"})));
  auto p = s.port();
  auto field = [&](const std::string& body) {
    auto r = send(p, body);
    EXPECT_EQ(r.status, 422) << body << " -> " << r.body;
    return std::string(r.json().at("error").at("field").is_string() ? r.json().at("error").at("field").as_string() : "");
  };
  EXPECT_EQ(field(R"({"to":"a@example.com","subject":"hi\r\nBcc: victim@example.com","text":"x"})"), "subject");
  EXPECT_EQ(field(R"({"to":"a@example.com\r\nBcc: victim@example.com","subject":"hi","text":"x"})"), "to");
  EXPECT_EQ(field(R"({"to":"Evil\nName <a@example.com>","subject":"hi","text":"x"})"), "to");
  EXPECT_EQ(field(R"({"to":"a@example.com","reply_to":"x@y.z\nBcc: q@r.s","subject":"hi","text":"x"})"), "reply_to");
  EXPECT_EQ(field(R"({"to":"not-an-address","subject":"hi","text":"x"})"), "to");
  EXPECT_EQ(field(R"({"to":["a@example.com","bad@"],"subject":"hi","text":"x"})"), "to[1]");
  EXPECT_EQ(field(R"({"to":[],"subject":"hi","text":"x"})"), "to");
  EXPECT_EQ(field(R"({"subject":"hi","text":"x"})"), "to");
  EXPECT_EQ(field(R"({"to":"a@example.com","text":"x"})"), "subject");
  EXPECT_EQ(field(R"({"to":"a@example.com","subject":"hi"})"), "text");
  EXPECT_EQ(field(R"({"to":"a@example.com","subject":"hi","text":")" + std::string(200, 'x') + "\"}"), "text");
  EXPECT_EQ(field(R"({"to":["a@e.co","b@e.co"],"cc":"c@e.co","bcc":"d@e.co","subject":"hi","text":"x"})"), "to");
  EXPECT_EQ(field(R"({"to":"a@example.com","subject":"hi","text":"x","priority":"high"})"), "priority");
  // Issue 10, defect 11: one whole mailbox per entry; text after '>' and control bytes refused.
  EXPECT_EQ(field(R"({"to":"a@example.com","reply_to":"Help <help@example.com>, x@evil.example","subject":"hi","text":"x"})"),
            "reply_to");
  EXPECT_EQ(field(R"({"to":"A <a@example.com> b@evil.example","subject":"hi","text":"x"})"), "to");
  EXPECT_EQ(field(R"({"to":"a@example.com","cc":["c@example.com","C <c@example.com>>"],"subject":"hi","text":"x"})"), "cc[1]");
  EXPECT_EQ(field(R"({"to":"a@example.com","bcc":"B\u0001 <b@example.com>","subject":"hi","text":"x"})"), "bcc");
  EXPECT_EQ(send(p, "{not json").status, 400);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(smtp.messages().size(), 0u);
  EXPECT_EQ(get(p, "/api/emails", kAuth).json().at("items").as_array().size(), 0u);
}

TEST(Email, NeverAnOpenRelay) {
  SmtpServer smtp;
  {
    Server open(Server::Options{.args = mail_args(smtp)});  // no tokens configured at all
    auto r = send(open.port(), R"({"to":"a@example.com","subject":"x","text":"y"})", {});
    EXPECT_EQ(r.status, 403);
    EXPECT_EQ(get(open.port(), "/api/emails").status, 403);
  }
  Server s(with_tokens(mail_args(smtp, {"--mail-rate", "1", "--mail-burst", "2"})));
  EXPECT_EQ(send(s.port(), R"({"to":"a@example.com","subject":"x","text":"y"})", {}).status, 401);
  EXPECT_EQ(send(s.port(), R"({"to":"a@example.com","subject":"x","text":"y"})", {{"Authorization", "Bearer nope"}}).status, 401);
  EXPECT_EQ(get(s.port(), "/api/emails/1").status, 401);
  EXPECT_EQ(send(s.port(), R"({"to":"a@example.com","subject":"1","text":"y"})").status, 202);
  EXPECT_EQ(send(s.port(), R"({"to":"a@example.com","subject":"2","text":"y"})").status, 202);
  auto limited = send(s.port(), R"({"to":"a@example.com","subject":"3","text":"y"})");
  EXPECT_EQ(limited.status, 429);
  EXPECT_GE(std::stoi(limited.header("retry-after")), 1);
  EXPECT_EQ(limited.json().at("error").at("code").as_string(), "too_many_requests");
}

TEST(Email, IdempotencyKeyAcceptsOnce) {
  SmtpServer smtp;
  Server s(with_tokens(mail_args(smtp)));
  Headers h = kAuth;
  h.emplace_back("Idempotency-Key", "welcome-42");
  auto a = send(s.port(), R"({"to":"a@example.com","subject":"x","text":"y"})", h);
  auto b = send(s.port(), R"({"to":"a@example.com","subject":"x","text":"y"})", h);
  EXPECT_EQ(a.json().at("id"), b.json().at("id"));
  EXPECT_EQ(b.header("idempotent-replayed"), "true");
  wait_email(s.port(), a.json().at("id").as_int64(), {"sent"});
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(smtp.messages().size(), 1u);
  // The same key with another email: 422, nothing sent.
  auto changed = send(s.port(), R"({"to":"a@example.com","subject":"other","text":"y"})", h);
  EXPECT_EQ(changed.status, 422) << changed.body;
  EXPECT_EQ(changed.json().at("error").at("code").as_string(), "idempotency_key_reused");
}

TEST(Email, ReplaysDoNotCountAgainstTheRateLimit) {
  SmtpServer smtp;
  Server s(with_tokens(mail_args(smtp, {"--mail-rate", "1", "--mail-burst", "1"})));
  Headers h = kAuth;
  h.emplace_back("Idempotency-Key", "once");
  auto first = send(s.port(), R"({"to":"a@example.com","subject":"x","text":"y"})", h);
  ASSERT_EQ(first.status, 202) << first.body;
  for (int i = 0; i < 5; ++i) {  // the burst of one is used up, yet every replay answers
    auto again = send(s.port(), R"({"to":"a@example.com","subject":"x","text":"y"})", h);
    EXPECT_EQ(again.status, 202) << again.body;
    EXPECT_EQ(again.header("idempotent-replayed"), "true");
  }
  EXPECT_EQ(send(s.port(), R"({"to":"b@example.com","subject":"new","text":"y"})").status, 429);
}

TEST(Email, StartTlsAndAuthAgainstTheRealServer) {
  std::string dir = temp_dir("tls");
  std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -keyout " + dir + "/key.pem -out " + dir +
                    "/cert.pem -days 2 -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost 2>/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  SmtpServer smtp({"--cert", dir + "/cert.pem", "--key", dir + "/key.pem", "--require-tls", "--auth", "mailer:s3cret"});
  {
    Server s(with_tokens(mail_args(smtp, {"--smtp-starttls", "required", "--smtp-ca-file", dir + "/cert.pem",
                                          "--smtp-user", "mailer", "--smtp-password", "s3cret"})));
    auto id = send(s.port(), R"({"to":"a@example.com","subject":"secure","text":"y"})").json().at("id").as_int64();
    EXPECT_EQ(wait_email(s.port(), id, {"sent", "failed"}).at("state").as_string(), "sent");
    auto msgs = smtp.wait_for(1);
    ASSERT_EQ(msgs.size(), 1u);
    EXPECT_TRUE(msgs[0].at("tls").as_bool());
    EXPECT_TRUE(msgs[0].at("auth").as_bool());
  }
  {
    // A wrong password is the server's final word (5xx): failed, not retried forever.
    Server s(with_tokens(mail_args(smtp, {"--smtp-starttls", "required", "--smtp-ca-file", dir + "/cert.pem",
                                          "--smtp-user", "mailer", "--smtp-password", "wrong"})));
    auto id = send(s.port(), R"({"to":"a@example.com","subject":"nope","text":"y"})").json().at("id").as_int64();
    auto failed = wait_email(s.port(), id, {"failed", "sent"});
    EXPECT_EQ(failed.at("state").as_string(), "failed");
    EXPECT_EQ(failed.at("smtp_reply").as_string().find("535"), 0u) << json::serialize(failed);
  }
  {
    // Without the CA, the certificate is not trusted: nothing is sent in the clear.
    Server s(with_tokens(mail_args(smtp, {"--smtp-starttls", "required", "--smtp-user", "mailer", "--smtp-password",
                                          "s3cret", "--mail-max-attempts", "1"})));
    auto id = send(s.port(), R"({"to":"a@example.com","subject":"untrusted","text":"y"})").json().at("id").as_int64();
    EXPECT_EQ(wait_email(s.port(), id, {"failed", "sent"}).at("state").as_string(), "failed");
  }
  EXPECT_EQ(smtp.messages().size(), 1u);
  // smtps://: TLS from the first byte.
  SmtpServer smtps({"--cert", dir + "/cert.pem", "--key", dir + "/key.pem", "--implicit-tls", "--auth", "mailer:s3cret"});
  Server s(with_tokens({"--smtp-url", "smtps://127.0.0.1:" + std::to_string(smtps.port()), "--smtp-ca-file",
                        dir + "/cert.pem", "--smtp-user", "mailer", "--smtp-password", "s3cret"}));
  auto id = send(s.port(), R"({"to":"a@example.com","subject":"implicit","text":"y"})").json().at("id").as_int64();
  EXPECT_EQ(wait_email(s.port(), id, {"sent", "failed"}).at("state").as_string(), "sent");
  EXPECT_EQ(smtps.wait_for(1).size(), 1u);
  std::filesystem::remove_all(dir);
}

TEST(Email, ThousandAcceptedWhileTheServerIsSlow) {
  SmtpServer smtp({"--delay", "0.2"});
  Server s(with_tokens(mail_args(smtp, {"--mail-rate", "100000", "--mail-burst", "100000"})));
  std::atomic<int> accepted{0}, health_ok{0};
  std::vector<std::thread> senders;
  for (int t = 0; t < 10; ++t)
    senders.emplace_back([&, t] {
      Conn c(s.port());
      for (int i = 0; i < 100; ++i) {
        Headers h = kAuth;
        h.emplace_back("Content-Type", "application/json");
        auto r = c.request("POST", "/api/send-email",
                           R"({"to":"bulk)" + std::to_string(t * 100 + i) + R"(@example.com","subject":"bulk","text":"y"})", h);
        accepted += r.status == 202;
      }
    });
  std::thread prober([&] {
    for (int i = 0; i < 50; ++i) health_ok += get(s.port(), "/api/creators").status == 200;
  });
  for (auto& t : senders) t.join();
  prober.join();
  EXPECT_EQ(accepted.load(), 1000);
  EXPECT_EQ(health_ok.load(), 50);
  auto queued = get(s.port(), "/api/emails?state=queued&limit=200", kAuth).json().at("items").as_array().size();
  EXPECT_GT(queued, 0u);  // the slow server is still working through them
}

TEST(Email, GenerateNotifiesTheCreatorThroughTheOutbox) {
  SmtpServer smtp;
  Server s(with_tokens(mail_args(smtp)));
  auto c = post_json(s.port(), "/api/creators", R"({"name":"Mail Me","handle":"mailme","email":"mailme@example.com"})", kAuth);
  ASSERT_EQ(c.status, 201);
  auto job = post_json(s.port(), "/api/creators/" + std::to_string(c.json().at("id").as_int64()) + "/generate?wait=60",
                       R"({"params":{"variants":1,"avatar_size":32,"banner_width":64,"banner_height":32,"detail":10,"thumb_size":16}})",
                       kAuth);
  ASSERT_EQ(job.status, 200) << job.body;
  auto msgs = smtp.wait_for(1);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].at("rcpt_tos").at(0).as_string(), "mailme@example.com");
  EXPECT_NE(std::string(msgs[0].at("data").as_string()).find("Subject: 4 new images are ready, Mail Me"), std::string::npos);
  EXPECT_EQ(job.json().at("attempt").as_int64(), 1);  // no step failed along the way
}
