// The email outbox: the one way an email is accepted, from the API or a pipeline step. It records
// the email and its delivery job in one transaction (the store enqueues inside it, River's
// InsertTx) and the queue wakes its workers. The delivery job is defined here, once.
#pragma once
#include <optional>
#include <string>

#include "mail/mail_store.hpp"
#include "queue/job_queue.hpp"

namespace creatord {

struct OutboxOptions {
  std::string from = "creatord <noreply@creatord.localhost>";
  int max_attempts = 10;
  int64_t timeout_ms = 5 * 60 * 1000;            // one delivery attempt
  int64_t key_ttl_ms = 24LL * 3600 * 1000;        // how long an Idempotency-Key names its email
};

class Outbox {
 public:
  Outbox(MailStore& store, queue::JobQueue& queue, OutboxOptions options);

  // Errors: idempotency_key_reused when the key names an email another request made.
  Async<EmailAccepted> accept(Email email);
  // The live email holding this (scoped) key, if any: a replay answers before rate limits.
  Async<std::optional<Email>> replay(std::string key);
  NewJob delivery_job(int64_t email_id) const;
  const OutboxOptions& options() const { return options_; }
  MailStore& store() { return store_; }

 private:
  MailStore& store_;
  queue::JobQueue& queue_;
  OutboxOptions options_;
};

}  // namespace creatord
