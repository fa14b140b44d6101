#include "mail/email.hpp"

#include <ctime>
#include <random>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "core/clock.hpp"
#include "domain/creator.hpp"

namespace creatord {
namespace json = boost::json;

namespace {

Error invalid(const std::string& field, std::string msg) { return Error::make(ErrorCode::validation, std::move(msg), field); }

bool has_crlf(std::string_view s) { return s.find('\r') != std::string_view::npos || s.find('\n') != std::string_view::npos; }

// A request's mailbox, checked and re-emitted canonically (see parse_mailbox).
Result<std::string> mailbox(const json::value& v, const std::string& field) {
  if (!v.is_string()) return invalid(field, field + " must be a string");
  std::string_view s = v.get_string();
  if (s.size() > 320) return invalid(field, field + " is too long");
  auto m = parse_mailbox(s, field);
  if (!m) return m.take_error();
  return format_mailbox(m.value());
}

Result<std::vector<std::string>> mailboxes(const json::object& o, const char* key, bool required) {
  std::vector<std::string> out;
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) {
    if (required) return invalid(key, std::string(key) + " is required");
    return out;
  }
  if (it->value().is_string()) {
    auto m = mailbox(it->value(), key);
    if (!m) return m.take_error();
    out.push_back(std::move(m.value()));
  } else if (it->value().is_array()) {
    const auto& arr = it->value().get_array();
    for (size_t i = 0; i < arr.size(); ++i) {
      auto m = mailbox(arr[i], fmt::format("{}[{}]", key, i));
      if (!m) return m.take_error();
      out.push_back(std::move(m.value()));
    }
  } else {
    return invalid(key, std::string(key) + " must be an address or an array of addresses");
  }
  if (required && out.empty()) return invalid(key, std::string(key) + " needs at least one address");
  return out;
}

std::string base64(std::string_view in) {
  static constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint32_t(uint8_t(in[i])) << 16) | (uint32_t(uint8_t(in[i + 1])) << 8) | uint8_t(in[i + 2]);
    out += kB64[v >> 18]; out += kB64[(v >> 12) & 63]; out += kB64[(v >> 6) & 63]; out += kB64[v & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint32_t(uint8_t(in[i])) << 16;
    out += kB64[v >> 18]; out += kB64[(v >> 12) & 63]; out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint32_t(uint8_t(in[i])) << 16) | (uint32_t(uint8_t(in[i + 1])) << 8);
    out += kB64[v >> 18]; out += kB64[(v >> 12) & 63]; out += kB64[(v >> 6) & 63]; out += '=';
  }
  return out;
}

bool is_plain_ascii(std::string_view s) {
  for (unsigned char c : s)
    if (c >= 0x7f || (c < 0x20 && c != '\t')) return false;
  return true;
}

// A quoted-string: `"` and `\` escaped.
std::string quoted(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

// A mailbox as a header holds it: the display name quoted (or RFC 2047 encoded when not ASCII),
// then <address>. Whatever does not parse as one mailbox (it cannot come from a request) is
// reduced to its address, so nothing but a mailbox reaches the header.
std::string encode_mailbox(const std::string& text) {
  auto m = parse_mailbox(text, "mailbox");
  if (!m) return "<" + address_of(text) + ">";
  if (m->display_name.empty()) return m->address;
  std::string name = is_plain_ascii(m->display_name) ? quoted(m->display_name) : encode_header_word(m->display_name);
  return name + " <" + m->address + ">";
}

std::string join_mailboxes(const std::vector<std::string>& list) {
  std::string out;
  for (size_t i = 0; i < list.size(); ++i) {
    if (i) out += ",\r\n ";
    out += encode_mailbox(list[i]);
  }
  return out;
}

std::string normalize_newlines(std::string_view s) {
  std::string out;
  out.reserve(s.size() + s.size() / 40);
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r') {
      if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
      out += "\r\n";
    } else if (s[i] == '\n') {
      out += "\r\n";
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace

std::string address_of(std::string_view m) {
  if (auto parsed = parse_mailbox(m, "mailbox")) return parsed->address;
  auto lt = m.find('<');
  auto gt = m.rfind('>');
  if (lt != std::string_view::npos && gt != std::string_view::npos && gt > lt) m = m.substr(lt + 1, gt - lt - 1);
  while (!m.empty() && m.front() == ' ') m.remove_prefix(1);
  while (!m.empty() && m.back() == ' ') m.remove_suffix(1);
  return std::string(m);
}

namespace {

bool is_atext(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-/=?^_`{|}~").find(static_cast<char>(c)) != std::string_view::npos;
}

// Well-formed UTF-8 (no overlongs, no surrogates).
bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
    for (size_t k = 1; k < len; ++k) {
      auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3f);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += len;
  }
  return true;
}

// Word characters of an unquoted display name: atext, '.', and UTF-8 (RFC 6532).
bool is_phrase_char(unsigned char c) { return is_atext(c) || c == '.' || c >= 0x80; }

}  // namespace

Result<Mailbox> parse_mailbox(std::string_view s, const std::string& field) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return invalid(field, field + " must not contain control characters or line breaks");
  if (!valid_utf8(s)) return invalid(field, field + " must be UTF-8");
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  Mailbox m;
  if (s.find_first_of("<>\"") == std::string_view::npos) {  // addr-spec alone
    if (!is_valid_email(s)) return invalid(field, field + " is not a valid email address");
    m.address = std::string(s);
    return m;
  }
  size_t i = 0;
  if (s.front() == '"') {  // quoted-string: any printable text, \ escapes the next character
    for (i = 1;; ++i) {
      if (i >= s.size()) return invalid(field, field + " has a display name whose quote is not closed");
      if (s[i] == '\\') {
        if (++i >= s.size()) return invalid(field, field + " has a display name whose quote is not closed");
        m.display_name.push_back(s[i]);
      } else if (s[i] == '"') {
        ++i;
        break;
      } else {
        m.display_name.push_back(s[i]);
      }
    }
    while (i < s.size() && s[i] == ' ') ++i;
    if (i >= s.size() || s[i] != '<') return invalid(field, field + " needs <address> after the quoted display name");
  } else {  // a phrase: words of atext, '.' or UTF-8, separated by spaces (runs collapse to one)
    for (; i < s.size() && s[i] != '<'; ++i) {
      auto c = static_cast<unsigned char>(s[i]);
      if (c == ' ') {
        if (!m.display_name.empty() && m.display_name.back() != ' ') m.display_name.push_back(' ');
      } else if (is_phrase_char(c)) {
        m.display_name.push_back(s[i]);
      } else {
        return invalid(field, fmt::format("{} has '{}' in its display name; quote the name (\"...\")", field, s[i]));
      }
    }
    while (!m.display_name.empty() && m.display_name.back() == ' ') m.display_name.pop_back();
    if (i >= s.size()) return invalid(field, field + " is not a valid email address");
  }
  size_t gt = s.find('>', i + 1);
  if (gt == std::string_view::npos) return invalid(field, field + " has '<' without a closing '>'");
  if (gt + 1 != s.size()) return invalid(field, field + " has text after '>': give one address per entry");
  std::string_view addr = s.substr(i + 1, gt - i - 1);
  if (!is_valid_email(addr)) return invalid(field, field + " is not a valid email address");
  m.address = std::string(addr);
  return m;
}

std::string format_mailbox(const Mailbox& m) {
  if (m.display_name.empty()) return m.address;
  bool phrase = m.display_name.front() != ' ' && m.display_name.back() != ' ' &&
                m.display_name.find("  ") == std::string::npos;
  for (unsigned char c : m.display_name)
    if (c != ' ' && !is_phrase_char(c)) phrase = false;
  return (phrase ? m.display_name : quoted(m.display_name)) + " <" + m.address + ">";
}

Result<Email> parse_email_request(const json::value& body, const MailLimits& limits) {
  if (!body.is_object()) return Error::make(ErrorCode::validation, "the body must be a JSON object");
  const auto& o = body.get_object();
  static constexpr std::string_view kKnown[] = {"to", "cc", "bcc", "subject", "text", "html", "reply_to"};
  for (const auto& kv : o)
    if (std::find(std::begin(kKnown), std::end(kKnown), kv.key()) == std::end(kKnown))
      return invalid(std::string(kv.key()), "unknown field " + std::string(kv.key()));
  Email e;
  auto to = mailboxes(o, "to", true);
  if (!to) return to.take_error();
  auto cc = mailboxes(o, "cc", false);
  if (!cc) return cc.take_error();
  auto bcc = mailboxes(o, "bcc", false);
  if (!bcc) return bcc.take_error();
  e.to = std::move(to.value());
  e.cc = std::move(cc.value());
  e.bcc = std::move(bcc.value());
  size_t n = e.to.size() + e.cc.size() + e.bcc.size();
  if (n > limits.max_recipients)
    return invalid("to", fmt::format("at most {} recipients (to, cc and bcc together)", limits.max_recipients));
  if (auto it = o.find("reply_to"); it != o.end() && !it->value().is_null()) {
    auto r = mailbox(it->value(), "reply_to");
    if (!r) return r.take_error();
    e.reply_to = std::move(r.value());
  }
  auto it = o.find("subject");
  if (it == o.end() || !it->value().is_string()) return invalid("subject", "subject is required and must be a string");
  std::string_view subject = it->value().get_string();
  if (has_crlf(subject)) return invalid("subject", "subject must not contain line breaks");
  if (utf8_length(subject) > limits.max_subject_chars)
    return invalid("subject", fmt::format("subject must be at most {} characters", limits.max_subject_chars));
  for (unsigned char c : subject)
    if (c < 0x20 && c != '\t') return invalid("subject", "subject must not contain control characters");
  e.subject = std::string(subject);
  for (const char* key : {"text", "html"}) {
    auto b = o.find(key);
    if (b == o.end() || b->value().is_null()) continue;
    if (!b->value().is_string()) return invalid(key, std::string(key) + " must be a string");
    if (b->value().get_string().size() > limits.max_body_bytes)
      return invalid(key, fmt::format("{} must be at most {} bytes", key, limits.max_body_bytes));
    if (b->value().get_string().find('\0') != boost::json::string::npos)  // PostgreSQL text ends at NUL
      return invalid(key, std::string(key) + " must not contain NUL characters");
    (std::string_view(key) == "text" ? e.text : e.html) = std::string(b->value().get_string());
  }
  if (!e.text && !e.html) return invalid("text", "give text, html or both");
  return e;
}

std::string new_message_id(const std::string& from) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string addr = address_of(from);
  auto at = addr.find('@');
  std::string domain = at == std::string::npos ? "creatord.localhost" : addr.substr(at + 1);
  return fmt::format("<{:016x}{:016x}.{}@{}>", rng(), rng(), now_ms(), domain);
}

std::string encode_header_word(std::string_view text) {
  if (is_plain_ascii(text)) return std::string(text);
  // Encoded words of at most 75 characters, split on UTF-8 character boundaries.
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    size_t take = 0, end = i;
    while (end < text.size()) {
      size_t len = 1;
      unsigned char c = static_cast<unsigned char>(text[end]);
      if (c >= 0xF0) len = 4;
      else if (c >= 0xE0) len = 3;
      else if (c >= 0xC0) len = 2;
      if (((take + len + 2) / 3) * 4 > 75 - 12) break;  // "=?UTF-8?B?" + "?=" = 12
      take += len;
      end += len;
    }
    if (end == i) end = std::min(text.size(), i + 1);
    if (!out.empty()) out += "\r\n ";
    out += "=?UTF-8?B?" + base64(text.substr(i, end - i)) + "?=";
    i = end;
  }
  return out;
}

std::string quoted_printable(std::string_view in) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string text = normalize_newlines(in);
  std::string out;
  size_t line = 0;
  auto put = [&](std::string_view piece) {
    if (line + piece.size() > 75) {
      out += "=\r\n";
      line = 0;
    }
    out += piece;
    line += piece.size();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      // Trailing white space before a line break must be encoded.
      if (!out.empty() && (out.back() == ' ' || out.back() == '\t')) {
        char ws = out.back();
        out.pop_back();
        --line;
        char enc[4] = {'=', kHex[uint8_t(ws) >> 4], kHex[uint8_t(ws) & 15], 0};
        put(enc);
      }
      out += "\r\n";
      line = 0;
      ++i;
      continue;
    }
    bool literal = (c >= 33 && c <= 126 && c != '=') || c == ' ' || c == '\t';
    if (literal && c == '.' && line == 0) literal = false;  // a lone "." line ends SMTP DATA
    if (literal) {
      char s[2] = {static_cast<char>(c), 0};
      put(s);
    } else {
      char enc[4] = {'=', kHex[c >> 4], kHex[c & 15], 0};
      put(enc);
    }
  }
  return out;
}

std::string format_rfc5322_date(int64_t unix_ms) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  time_t t = static_cast<time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{}, {:02} {} {:04} {:02}:{:02}:{:02} +0000", kDays[tm.tm_wday], tm.tm_mday, kMonths[tm.tm_mon],
                     tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

std::string build_mime(const Email& e) {
  std::string m;
  m += "From: " + encode_mailbox(e.from) + "\r\n";
  m += "To: " + join_mailboxes(e.to) + "\r\n";
  if (!e.cc.empty()) m += "Cc: " + join_mailboxes(e.cc) + "\r\n";
  if (e.reply_to) m += "Reply-To: " + encode_mailbox(*e.reply_to) + "\r\n";
  m += "Subject: " + encode_header_word(e.subject) + "\r\n";
  m += "Date: " + format_rfc5322_date(e.created_at_ms) + "\r\n";
  m += "Message-ID: " + e.message_id + "\r\n";
  m += "MIME-Version: 1.0\r\n";
  auto part = [](const char* type, const std::string& body) {
    return fmt::format("Content-Type: {}; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{}\r\n",
                       type, quoted_printable(body));
  };
  if (e.text && e.html) {
    std::string boundary = "=_creatord_" + std::to_string(e.id) + "_" + std::to_string(e.created_at_ms);
    m += "Content-Type: multipart/alternative; boundary=\"" + boundary + "\"\r\n\r\n";
    m += "This is a multi-part message in MIME format.\r\n";
    m += "--" + boundary + "\r\n" + part("text/plain", *e.text);
    m += "--" + boundary + "\r\n" + part("text/html", *e.html);
    m += "--" + boundary + "--\r\n";
  } else if (e.html) {
    m += part("text/html", *e.html);
  } else {
    m += part("text/plain", e.text.value_or(""));
  }
  return m;
}

json::object to_json(const Email& e) {
  auto list = [](const std::vector<std::string>& v) {
    json::array a;
    for (const auto& s : v) a.emplace_back(s);
    return a;
  };
  json::object o;
  o["id"] = e.id;
  o["state"] = e.state;
  o["from"] = e.from;
  o["to"] = list(e.to);
  o["cc"] = list(e.cc);
  o["bcc"] = list(e.bcc);
  if (e.reply_to) o["reply_to"] = *e.reply_to;
  else o["reply_to"] = nullptr;
  o["subject"] = e.subject;
  o["message_id"] = e.message_id;
  o["attempts"] = e.attempts;
  if (e.last_error.empty()) o["last_error"] = nullptr;
  else o["last_error"] = e.last_error;
  if (e.smtp_reply.empty()) o["smtp_reply"] = nullptr;
  else o["smtp_reply"] = e.smtp_reply;
  if (e.job_id) o["job_id"] = *e.job_id;
  else o["job_id"] = nullptr;
  o["created_at"] = format_rfc3339(e.created_at_ms);
  o["updated_at"] = format_rfc3339(e.updated_at_ms);
  if (e.sent_at_ms) o["sent_at"] = format_rfc3339(e.sent_at_ms);
  else o["sent_at"] = nullptr;
  o["links"] = json::object{{"self", fmt::format("/api/emails/{}", e.id)}};
  return o;
}

}  // namespace creatord
