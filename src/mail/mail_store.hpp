// What the outbox needs of a database. An accepted email and the job that delivers it are
// written in one transaction; the store does not know what that job looks like: the outbox
// builds it (given the new email's id).
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/async.hpp"
#include "domain/paging.hpp"
#include "mail/email.hpp"
#include "queue/job.hpp"

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

// The delivery job of the email with this id.
using DeliveryJob = std::function<NewJob(int64_t email_id)>;

class MailStore {
 public:
  virtual ~MailStore() = default;
  // Stores the email and inserts its delivery job in one transaction. An email whose
  // idempotency key names an email accepted since `key_since_ms` is not stored: that one is
  // returned with created = false (an older holder's key is released).
  virtual Async<EmailAccepted> create_email(Email email, DeliveryJob delivery, int64_t now, int64_t key_since_ms) = 0;
  // The email holding this idempotency key, accepted since `key_since_ms`.
  virtual Async<std::optional<Email>> find_email_by_key(std::string key, int64_t key_since_ms) = 0;
  virtual Async<Email> get_email(int64_t id) = 0;
  virtual Async<Page<Email>> list_emails(std::optional<std::string> state, PageQuery page) = 0;
  virtual Async<Email> update_email(EmailUpdate update) = 0;
  // How many emails are in each state (states with none are absent), for /metrics. Reads the
  // state index: linear in the number of emails, run on a reader, never on the I/O threads.
  virtual Async<std::vector<std::pair<std::string, int64_t>>> email_counts() = 0;
};

}  // namespace creatord
