#include "mail/delivery.hpp"

#include <boost/json.hpp>

#include "core/log.hpp"
#include "core/offload.hpp"

namespace creatord {

namespace asio = boost::asio;

JobHandler email_job_handler(MailStore& store, MailTransport& transport, BlockingPool& pool,
                             DeliveryCounters* counters) {
  return [&store, &transport, &pool, counters](JobRun& run) -> asio::awaitable<JobOutcome> {
    const auto& payload = run.job.payload;
    if (!payload.is_object() || !payload.as_object().contains("email_id") || !payload.at("email_id").is_int64())
      co_return JobOutcome{JobOutcome::Kind::failed, nullptr, "the job names no email", false};
    int64_t id = payload.at("email_id").as_int64();
    auto email = co_await store.get_email(id);
    if (!email) co_return JobOutcome{JobOutcome::Kind::failed, nullptr, email.error().message, email.error().code != ErrorCode::not_found};
    if (email->state == "sent")  // delivered by an earlier run whose end was not recorded
      co_return JobOutcome{JobOutcome::Kind::succeeded, boost::json::object{{"email_id", id}}, "", false};
    // Named first: GCC 12 miscompiles braced temporaries inside a co_await expression.
    EmailUpdate begin{id, "sending", true, std::nullopt, std::nullopt};
    auto sending = co_await store.update_email(std::move(begin));
    if (!sending) co_return JobOutcome{JobOutcome::Kind::failed, nullptr, sending.error().message, true};

    auto mime = std::make_shared<std::string>(build_mime(email.value()));
    auto message = std::make_shared<Email>(std::move(email.value()));
    auto send = [&transport, mime, message](size_t) -> Result<SendResult> { return transport.send(*message, *mime); };
    auto sent = co_await offload<SendResult>(pool, send);
    SendResult r = sent ? sent.value() : SendResult{SendResult::Kind::retry, sent.error().message};

    bool last_attempt = run.job.attempt >= run.job.max_attempts;
    EmailUpdate u{id};
    JobOutcome outcome;
    if (r.kind == SendResult::Kind::sent) {
      u.state = "sent";
      u.smtp_reply = r.reply;
      outcome = JobOutcome{JobOutcome::Kind::succeeded, boost::json::object{{"email_id", id}, {"reply", r.reply}}, "", false};
    } else if (r.kind == SendResult::Kind::permanent) {
      u.state = "failed";
      u.smtp_reply = r.reply;
      u.last_error = r.reply;
      outcome = JobOutcome{JobOutcome::Kind::failed, nullptr, r.reply, false};
    } else {
      u.state = last_attempt ? "failed" : "queued";
      u.last_error = r.reply;
      outcome = JobOutcome{JobOutcome::Kind::failed, nullptr, r.reply, true};
    }
    if (counters) {
      auto& n = r.kind == SendResult::Kind::sent ? counters->sent
                : u.state == "failed"            ? counters->failed
                                                 : counters->retried;
      n.fetch_add(1, std::memory_order_relaxed);
    }
    auto stored = co_await store.update_email(std::move(u));
    if (!stored) log::error("could not record an email's state", {{"email_id", id}, {"error", stored.error().message}});
    log::info("email delivery", {{"email_id", id}, {"attempt", run.job.attempt}, {"state", stored ? stored->state : "?"},
                                 {"reply", r.reply}});
    co_return outcome;
  };
}

}  // namespace creatord
