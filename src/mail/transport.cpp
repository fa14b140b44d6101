#include "mail/transport.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <mutex>

#include <fmt/format.h>

namespace creatord {
namespace fs = std::filesystem;

FileTransport::FileTransport(fs::path dir) : dir_(std::move(dir)) { fs::create_directories(dir_); }

std::string FileTransport::describe() const { return "files in " + dir_.string(); }

SendResult FileTransport::send(const Email& email, const std::string& mime) {
  fs::path final_path = dir_ / fmt::format("{:08}.eml", email.id);
  fs::path tmp = dir_ / fmt::format(".{:08}.eml.tmp", email.id);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return {SendResult::Kind::retry, std::string("cannot write the message: ") + std::strerror(errno)};
  size_t off = 0;
  bool ok = true;
  while (off < mime.size()) {
    ssize_t n = ::write(fd, mime.data() + off, mime.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = false;
      break;
    }
    off += static_cast<size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), final_path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return {SendResult::Kind::retry, std::string("cannot write the message: ") + std::strerror(errno)};
  }
  return {SendResult::Kind::sent, "written to " + final_path.string()};
}

namespace {

std::once_flag g_curl_once;

struct Upload {
  const std::string* data;
  size_t pos = 0;
};

size_t read_body(char* buf, size_t size, size_t n, void* user) {
  auto* u = static_cast<Upload*>(user);
  size_t want = std::min(size * n, u->data->size() - u->pos);
  std::memcpy(buf, u->data->data() + u->pos, want);
  u->pos += want;
  return want;
}

// The server's replies as libcurl reports them ("header in" data). Keeps the last complete reply
// and the first one that refused something (4xx/5xx), each with all its lines: after a refused
// RCPT libcurl still sends QUIT, and "221 Bye" is not what a person needs to read.
struct SmtpReplies {
  std::string current;  // lines of a multi-line reply so far ("250-..." continues it)
  std::string last;
  std::string refusal;

  void add_line(std::string_view line) {
    if (line.empty()) return;
    if (!current.empty()) current += " | ";
    current += line;
    bool continues = line.size() > 3 && line[3] == '-';
    if (continues) return;
    if (refusal.empty() && (line[0] == '4' || line[0] == '5')) refusal = current;
    last = std::move(current);
    current.clear();
  }
  // A failed send reports what refused it; a server that refused EHLO and took HELO did not fail.
  const std::string& reply(bool failed) const { return failed && !refusal.empty() ? refusal : last; }
};

int on_debug(CURL*, curl_infotype type, char* data, size_t size, void* user) {
  if (type != CURLINFO_HEADER_IN) return 0;
  std::string_view text(data, size);
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.remove_suffix(1);
    static_cast<SmtpReplies*>(user)->add_line(line);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
  }
  return 0;
}

}  // namespace

SmtpTransport::SmtpTransport(SmtpOptions options) : options_(std::move(options)) {
  std::call_once(g_curl_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string SmtpTransport::describe() const {
  // Never log credentials given in the URL's userinfo.
  std::string url = options_.url;
  auto scheme = url.find("://");
  auto at = url.find('@');
  if (scheme != std::string::npos && at != std::string::npos && at > scheme) url.erase(scheme + 3, at - scheme - 2);
  bool auth = !options_.user.empty() || at != std::string::npos;
  return fmt::format("{} (starttls {}, auth {})", url, options_.starttls, auth ? "on" : "off");
}

SendResult SmtpTransport::send(const Email& email, const std::string& mime) {
  CURL* curl = curl_easy_init();
  if (!curl) return {SendResult::Kind::retry, "cannot create a libcurl handle"};
  curl_slist* rcpts = nullptr;
  for (const auto* list : {&email.to, &email.cc, &email.bcc})
    for (const auto& m : *list) rcpts = curl_slist_append(rcpts, ("<" + address_of(m) + ">").c_str());
  std::string from = "<" + address_of(email.from) + ">";
  Upload upload{&mime};
  SmtpReplies replies;
  char errbuf[CURL_ERROR_SIZE] = {0};

  curl_easy_setopt(curl, CURLOPT_URL, options_.url.c_str());
  curl_easy_setopt(curl, CURLOPT_MAIL_FROM, from.c_str());
  curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, rcpts);
  curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_body);
  curl_easy_setopt(curl, CURLOPT_READDATA, &upload);
  curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(mime.size()));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout.count()));
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_VERBOSE, 1L);
  curl_easy_setopt(curl, CURLOPT_DEBUGFUNCTION, on_debug);
  curl_easy_setopt(curl, CURLOPT_DEBUGDATA, &replies);
  if (options_.starttls == "required") curl_easy_setopt(curl, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_ALL));
  else if (options_.starttls == "auto") curl_easy_setopt(curl, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_TRY));
  if (!options_.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, options_.ca_file.c_str());
  if (!options_.verify_tls) {
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (!options_.user.empty()) {
    curl_easy_setopt(curl, CURLOPT_USERNAME, options_.user.c_str());
    curl_easy_setopt(curl, CURLOPT_PASSWORD, options_.password.c_str());
  }

  CURLcode rc = curl_easy_perform(curl);
  long code = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  curl_slist_free_all(rcpts);
  curl_easy_cleanup(curl);

  const std::string& last_reply = replies.reply(rc != CURLE_OK);
  if (rc == CURLE_OK) return {SendResult::Kind::sent, last_reply.empty() ? "250" : last_reply};
  std::string what = errbuf[0] ? errbuf : curl_easy_strerror(rc);
  std::string reply = last_reply.empty() ? what : fmt::format("{} ({})", last_reply, what);
  // A 5xx reply is the server's final word (bad recipient, refused): retrying will not help.
  // Connection trouble, timeouts and 4xx replies are worth another try.
  if (code >= 500 && code < 600) return {SendResult::Kind::permanent, reply};
  return {SendResult::Kind::retry, reply};
}

Result<std::unique_ptr<MailTransport>> make_transport(const SmtpOptions& smtp, const fs::path& outbox) {
  if (smtp.url.empty()) {
    std::error_code ec;
    fs::create_directories(outbox, ec);
    if (ec) return Error::make(ErrorCode::internal, "cannot create " + outbox.string() + ": " + ec.message());
    return std::unique_ptr<MailTransport>(new FileTransport(outbox));
  }
  if (smtp.url.rfind("smtp://", 0) != 0 && smtp.url.rfind("smtps://", 0) != 0)
    return Error::make(ErrorCode::bad_request, "smtp-url must start with smtp:// or smtps://");
  if (smtp.starttls != "auto" && smtp.starttls != "required" && smtp.starttls != "never")
    return Error::make(ErrorCode::bad_request, "smtp-starttls must be auto, required or never");
  return std::unique_ptr<MailTransport>(new SmtpTransport(smtp));
}

}  // namespace creatord
