// An email in the outbox, and how it becomes an RFC 5322 / MIME message. Pure logic: no I/O.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/fwd.hpp>

#include "core/result.hpp"

namespace creatord {

struct MailLimits {
  size_t max_recipients = 50;      // to + cc + bcc
  size_t max_subject_chars = 300;
  size_t max_body_bytes = 1 << 20;  // text and html each
};

// queued -> sending -> sent | failed (queued again between attempts)
struct Email {
  int64_t id = 0;
  std::string state = "queued";
  std::string from;  // the configured sender, fixed at acceptance
  std::vector<std::string> to, cc, bcc;
  std::optional<std::string> reply_to;
  std::string subject;
  std::optional<std::string> text;
  std::optional<std::string> html;
  std::string message_id;  // fixed at acceptance: a retry after an ambiguous failure is recognisable
  std::optional<std::string> idempotency_key;  // scoped by the caller (route and token)
  std::string request_hash;                    // of the request that created it
  std::optional<int64_t> job_id;
  int attempts = 0;
  std::string last_error;
  std::string smtp_reply;
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
  int64_t sent_at_ms = 0;
};

// Validates a send-email body: to (string or array), cc, bcc, subject, text, html, reply_to.
// No CR or LF in any header field; addresses checked; sizes limited. Errors name the field.
Result<Email> parse_email_request(const boost::json::value& body, const MailLimits& limits);

// "<random@domain>" for a From address's domain.
std::string new_message_id(const std::string& from);

// The whole message as sent: headers (Bcc never among them), then a text part, an HTML part, or
// both as multipart/alternative; UTF-8, RFC 2047 encoded headers, quoted-printable bodies.
std::string build_mime(const Email& e);

// Building blocks, exposed for tests.
std::string encode_header_word(std::string_view text);  // RFC 2047 when not plain ASCII
std::string quoted_printable(std::string_view text);
std::string format_rfc5322_date(int64_t unix_ms);
// The bare address of "Name <a@b.c>" or "a@b.c".
std::string address_of(std::string_view mailbox);

// One RFC 5322 mailbox: an addr-spec alone ("a@b.c"), or a display name (a phrase of words, or
// a quoted string with \-escapes; UTF-8 allowed, RFC 6532) then "<addr-spec>". Nothing may
// follow the ">", no control byte may appear anywhere, and exactly one address is named.
struct Mailbox {
  std::string display_name;  // unquoted and unescaped; empty when none
  std::string address;
};
// Errors are validation errors naming `field`.
Result<Mailbox> parse_mailbox(std::string_view text, const std::string& field);
// The canonical form: "a@b.c", "Name <a@b.c>", or "\"Name, with specials\" <a@b.c>" when the
// name needs quoting. parse_mailbox(format_mailbox(m)) == m.
std::string format_mailbox(const Mailbox& m);

boost::json::object to_json(const Email& e);

}  // namespace creatord
