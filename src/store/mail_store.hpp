// The email outbox. An accepted email and the job that delivers it are written together.
#pragma once
#include <optional>
#include <string>

#include "jobs/job.hpp"
#include "mail/email.hpp"
#include "store/store.hpp"

namespace creatord {

struct EmailAccepted {
  Email email;
  bool created = true;  // false: the idempotency key named an earlier email
};

struct EmailUpdate {
  int64_t id = 0;
  std::string state;  // queued, sending, sent, failed
  bool count_attempt = false;
  std::optional<std::string> last_error;
  std::optional<std::string> smtp_reply;
};

class MailStore {
 public:
  virtual ~MailStore() = default;
  // Stores the email and enqueues `delivery` (its payload gets {"email_id": id}) in one
  // transaction.
  virtual Async<EmailAccepted> create_email(Email email, NewJob delivery) = 0;
  virtual Async<Email> get_email(int64_t id) = 0;
  virtual Async<Page<Email>> list_emails(std::optional<std::string> state, PageQuery page) = 0;
  virtual Async<Email> update_email(EmailUpdate update) = 0;
};

}  // namespace creatord
