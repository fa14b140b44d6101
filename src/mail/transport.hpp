// How a message leaves: SMTP (libcurl) or .eml files in a folder. Blocking: callers run send()
// on a BlockingPool, never on an I/O thread.
#pragma once
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "core/result.hpp"
#include "mail/email.hpp"

namespace creatord {

struct SendResult {
  enum class Kind { sent, retry, permanent } kind = Kind::sent;
  std::string reply;  // the server's last reply, or what went wrong
};

class MailTransport {
 public:
  virtual ~MailTransport() = default;
  virtual SendResult send(const Email& email, const std::string& mime) = 0;
  virtual std::string describe() const = 0;  // for logs: never includes a password
};

// The embedded default: each message written atomically as <id>.eml into a folder.
class FileTransport final : public MailTransport {
 public:
  explicit FileTransport(std::filesystem::path dir);
  SendResult send(const Email& email, const std::string& mime) override;
  std::string describe() const override;

 private:
  std::filesystem::path dir_;
};

struct SmtpOptions {
  std::string url;       // smtp://host:port (STARTTLS when offered) or smtps://host:port (implicit TLS)
  std::string user;      // AUTH, when set
  std::string password;
  std::string starttls = "auto";  // auto (when offered), required, never
  std::string ca_file;            // extra CA bundle, e.g. a self-signed test certificate
  bool verify_tls = true;
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds timeout{60'000};
};

class SmtpTransport final : public MailTransport {
 public:
  explicit SmtpTransport(SmtpOptions options);
  SendResult send(const Email& email, const std::string& mime) override;
  std::string describe() const override;

 private:
  SmtpOptions options_;
};

// From --smtp-url and friends; "" gives the file transport under data_dir/outbox.
Result<std::unique_ptr<MailTransport>> make_transport(const SmtpOptions& smtp, const std::filesystem::path& outbox);

}  // namespace creatord
