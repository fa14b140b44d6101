// The MIME builder and its encoders: any subject, body and addresses that pass validation
// become a message whose header lines are short, CRLF-terminated and free of bare CR or LF.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <boost/json.hpp>

#include "mail/email.hpp"

namespace {

// Every line ends in CRLF, and no header line outside the body carries a lone CR or LF.
void check_message(const std::string& m) {
  auto end_of_headers = m.find("\r\n\r\n");
  if (end_of_headers == std::string::npos) std::abort();
  for (size_t i = 0; i < end_of_headers; ++i) {
    if (m[i] == '\n' && (i == 0 || m[i - 1] != '\r')) std::abort();
    if (m[i] == '\r' && (i + 1 >= m.size() || m[i + 1] != '\n')) std::abort();
    if (m[i] == '\0') std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  // Fields split at NUL: to, subject, text, html, reply_to.
  std::string parts[5];
  size_t at = 0;
  for (int i = 0; i < 5 && at <= in.size(); ++i) {
    auto nul = in.find('\0', at);
    parts[i] = std::string(in.substr(at, nul == std::string_view::npos ? std::string_view::npos : nul - at));
    if (nul == std::string_view::npos) break;
    at = nul + 1;
  }
  boost::json::object body{{"to", boost::json::array{boost::json::value(parts[0])}}, {"subject", parts[1]}};
  if (!parts[2].empty() || parts[3].empty()) body["text"] = parts[2];
  if (!parts[3].empty()) body["html"] = parts[3];
  if (!parts[4].empty()) body["reply_to"] = parts[4];
  creatord::MailLimits limits;
  auto e = creatord::parse_email_request(body, limits);
  if (e) {
    auto& mail = e.value();
    mail.from = "creatord <noreply@example.com>";
    mail.message_id = creatord::new_message_id(mail.from);
    check_message(creatord::build_mime(mail));
  }
  (void)creatord::encode_header_word(in);
  (void)creatord::quoted_printable(in);
  (void)creatord::address_of(in);
  return 0;
}
