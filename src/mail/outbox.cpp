#include "mail/outbox.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>

namespace creatord {

Outbox::Outbox(MailStore& store, queue::JobQueue& queue, OutboxOptions options)
    : store_(store), queue_(queue), options_(std::move(options)) {}

NewJob Outbox::delivery_job(int64_t email_id) const {
  NewJob job;
  job.kind = "email";
  job.queue = "email";
  job.payload = boost::json::object{{"email_id", email_id}};
  job.max_attempts = options_.max_attempts;
  job.timeout_ms = options_.timeout_ms;
  return job;
}

Async<EmailAccepted> Outbox::accept(Email email) {
  int64_t now = queue_.clock().now_ms();
  std::string hash = email.request_hash;
  auto make_job = [this](int64_t id) { return delivery_job(id); };
  auto r = co_await store_.create_email(std::move(email), make_job, now, now - options_.key_ttl_ms);
  if (!r) co_return r;
  if (!r->created && !hash.empty() && !r->email.request_hash.empty() && r->email.request_hash != hash)
    co_return Error::make(ErrorCode::idempotency_key_reused,
                          fmt::format("this Idempotency-Key was used for a different email ({}); use a new key for a "
                                      "new email", r->email.id),
                          "Idempotency-Key");
  if (r->created) queue_.enqueued_elsewhere("email");
  co_return r;
}

Async<std::optional<Email>> Outbox::replay(std::string key) {
  return store_.find_email_by_key(std::move(key), queue_.clock().now_ms() - options_.key_ttl_ms);
}

}  // namespace creatord
