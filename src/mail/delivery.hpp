// Delivering the outbox: the job handler for kind "email".
#pragma once
#include "core/blocking_pool.hpp"
#include "jobs/engine.hpp"
#include "mail/transport.hpp"
#include "mail/mail_store.hpp"

namespace creatord {

// Sends the email named by the job's payload through the transport, on `pool`. A 5xx reply
// fails it at once with the reply kept; connection errors, timeouts and 4xx replies retry with
// the job's backoff until its attempts are used up.
JobHandler email_job_handler(MailStore& store, MailTransport& transport, BlockingPool& pool);

}  // namespace creatord
