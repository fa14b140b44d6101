// Delivering the outbox: the job handler for kind "email".
#pragma once
#include <atomic>
#include <cstdint>

#include "core/blocking_pool.hpp"
#include "jobs/engine.hpp"
#include "mail/transport.hpp"
#include "mail/mail_store.hpp"

namespace creatord {

// Delivery attempts since start, for /metrics: each attempt ends in exactly one of the three.
struct DeliveryCounters {
  std::atomic<uint64_t> sent{0};
  std::atomic<uint64_t> retried{0};  // a temporary failure (4xx, connection, timeout); tried again later
  std::atomic<uint64_t> failed{0};   // a permanent failure (5xx) or the last attempt failed
};

// Sends the email named by the job's payload through the transport, on `pool`. A 5xx reply
// fails it at once with the reply kept; connection errors, timeouts and 4xx replies retry with
// the job's backoff until its attempts are used up.
JobHandler email_job_handler(MailStore& store, MailTransport& transport, BlockingPool& pool,
                             DeliveryCounters* counters = nullptr);

}  // namespace creatord
