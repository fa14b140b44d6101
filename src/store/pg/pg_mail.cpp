// The email outbox on PostgreSQL. An email and its delivery job (built by the outbox) are
// written in one transaction, through the queue driver's own insert.
#include <boost/json.hpp>

#include "core/clock.hpp"
#include "store/pg/pg_store_ops.hpp"

namespace creatord {

namespace asio = boost::asio;
namespace json = boost::json;
using namespace pgx;

namespace {

#define EMAIL_COLS                                                                                 \
  "id, state, from_addr, recipients, reply_to, subject, text_body, html_body, message_id, "       \
  "idempotency_key, job_id, attempts, last_error, smtp_reply, created_at, updated_at, sent_at, request_hash"

Email email_at(const Rows& r, int i) {
  Email e;
  e.id = r.int64(i, 0);
  e.state = r.text(i, 1);
  e.from = r.text(i, 2);
  auto rc = parse_json_text(r.text(i, 3));
  auto list = [&](const char* k) {
    std::vector<std::string> out;
    if (rc.is_object() && rc.as_object().contains(k) && rc.at(k).is_array())
      for (const auto& v : rc.at(k).as_array())
        if (v.is_string()) out.emplace_back(v.as_string());
    return out;
  };
  e.to = list("to");
  e.cc = list("cc");
  e.bcc = list("bcc");
  if (!r.is_null(i, 4)) e.reply_to = std::string(r.text(i, 4));
  e.subject = r.text(i, 5);
  if (!r.is_null(i, 6)) e.text = std::string(r.text(i, 6));
  if (!r.is_null(i, 7)) e.html = std::string(r.text(i, 7));
  e.message_id = r.text(i, 8);
  if (!r.is_null(i, 9)) e.idempotency_key = std::string(r.text(i, 9));
  if (!r.is_null(i, 10)) e.job_id = r.int64(i, 10);
  e.attempts = static_cast<int>(r.int64(i, 11));
  e.last_error = r.text(i, 12);
  e.smtp_reply = r.text(i, 13);
  e.created_at_ms = r.int64(i, 14);
  e.updated_at_ms = r.int64(i, 15);
  e.sent_at_ms = r.is_null(i, 16) ? 0 : r.int64(i, 16);
  e.request_hash = r.text(i, 17);
  return e;
}

asio::awaitable<Result<Email>> load_email(Connection& c, int64_t id) {
  auto r = co_await q(c, "SELECT " EMAIL_COLS " FROM creatord.emails WHERE id = $1", id);
  if (!r) co_return r.take_error();
  if (r->size() == 0) co_return not_found(fmt::format("email {} does not exist", id));
  co_return email_at(r.value(), 0);
}

// The live holder of an idempotency key (locked); an older holder's key is released.
asio::awaitable<Result<std::optional<Email>>> key_holder(Connection& c, const std::string& key, int64_t since,
                                                          bool release) {
  Result<Rows> r = Error{};
  if (release) r = co_await q(c, "SELECT " EMAIL_COLS " FROM creatord.emails WHERE idempotency_key = $1 FOR UPDATE", key);
  else r = co_await q(c, "SELECT " EMAIL_COLS " FROM creatord.emails WHERE idempotency_key = $1", key);
  if (!r) co_return r.take_error();
  if (r->size() == 0) co_return std::optional<Email>{};
  Email e = email_at(r.value(), 0);
  if (e.created_at_ms >= since) co_return std::optional<Email>{std::move(e)};
  if (release) {
    auto clear = co_await q(c, "UPDATE creatord.emails SET idempotency_key = NULL WHERE id = $1", e.id);
    if (!clear) co_return clear.take_error();
  }
  co_return std::optional<Email>{};
}

std::string recipients_json(const Email& e) {
  auto list = [](const std::vector<std::string>& v) {
    json::array a;
    for (const auto& s : v) a.emplace_back(s);
    return a;
  };
  return json::serialize(json::object{{"to", list(e.to)}, {"cc", list(e.cc)}, {"bcc", list(e.bcc)}});
}

}  // namespace

Async<EmailAccepted> PgStore::create_email(Email e, DeliveryJob delivery, int64_t now, int64_t key_since) {
  return in_tx<EmailAccepted>([e = std::move(e), delivery = std::move(delivery), now,
                               key_since](Connection& c) mutable -> asio::awaitable<Result<EmailAccepted>> {
    if (e.idempotency_key) {
      auto held = co_await key_holder(c, *e.idempotency_key, key_since, true);
      if (!held) co_return held.take_error();
      if (held.value()) co_return EmailAccepted{std::move(*held.value()), false};
    }
    std::string recipients = recipients_json(e);
    auto r = co_await q(c,
                        "INSERT INTO creatord.emails (state, from_addr, recipients, reply_to, subject, text_body, html_body, "
                        "message_id, idempotency_key, created_at, updated_at, request_hash) "
                        "VALUES ('queued', $1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10) RETURNING id",
                        e.from, recipients, e.reply_to, e.subject, e.text, e.html, e.message_id, e.idempotency_key, now,
                        e.request_hash);
    if (!r) co_return r.take_error();
    int64_t id = r->int64(0, 0);
    NewJob job = delivery(id);
    auto inserted = co_await insert_job(c, job, now);
    if (!inserted) co_return inserted.take_error();
    auto link = co_await q(c, "UPDATE creatord.emails SET job_id = $2 WHERE id = $1", id, inserted->job.id);
    if (!link) co_return link.take_error();
    auto stored = co_await load_email(c, id);
    if (!stored) co_return stored.take_error();
    co_return EmailAccepted{std::move(stored.value()), true};
  });
}

Async<std::optional<Email>> PgStore::find_email_by_key(std::string key, int64_t key_since) {
  return with_conn<std::optional<Email>>([key = std::move(key), key_since](Connection& c)
                                             -> asio::awaitable<Result<std::optional<Email>>> {
    co_return co_await key_holder(c, key, key_since, false);
  });
}

Async<Email> PgStore::get_email(int64_t id) {
  return with_conn<Email>([id](Connection& c) -> asio::awaitable<Result<Email>> { co_return co_await load_email(c, id); });
}

Async<Page<Email>> PgStore::list_emails(std::optional<std::string> state, PageQuery pq) {
  return with_conn<Page<Email>>([state = std::move(state), pq = std::move(pq)](Connection& c)
                                    -> asio::awaitable<Result<Page<Email>>> {
    int64_t before = pq.before_id.value_or(INT64_MAX);
    int64_t limit = pq.limit + 1;
    auto r = co_await q(c,
                        "SELECT " EMAIL_COLS " FROM creatord.emails WHERE id < $1 AND ($2::text IS NULL OR state = $2) "
                        "ORDER BY id DESC LIMIT $3",
                        before, state, limit);
    if (!r) co_return r.take_error();
    Page<Email> page;
    for (int i = 0; i < r->size(); ++i) page.items.push_back(email_at(r.value(), i));
    page.trim_to(pq.limit);
    co_return page;
  });
}

Async<std::vector<std::pair<std::string, int64_t>>> PgStore::email_counts() {
  using Counts = std::vector<std::pair<std::string, int64_t>>;
  return with_conn<Counts>([](Connection& c) -> asio::awaitable<Result<Counts>> {
    auto r = co_await q(c, "SELECT state, count(*) FROM creatord.emails GROUP BY state");
    if (!r) co_return r.take_error();
    Counts counts;
    for (int i = 0; i < r->size(); ++i) counts.emplace_back(std::string(r->text(i, 0)), r->int64(i, 1));
    co_return counts;
  });
}

Async<Email> PgStore::update_email(EmailUpdate u) {
  return in_tx<Email>([u = std::move(u)](Connection& c) -> asio::awaitable<Result<Email>> {
    int64_t now = now_ms();
    int64_t add = u.count_attempt ? 1 : 0;
    auto r = co_await q(c,
                        "UPDATE creatord.emails SET state = $2, attempts = attempts + $3, last_error = COALESCE($4, last_error), "
                        "smtp_reply = COALESCE($5, smtp_reply), updated_at = $6, "
                        "sent_at = CASE WHEN $2 = 'sent' THEN $6 ELSE sent_at END WHERE id = $1",
                        u.id, u.state, add, u.last_error, u.smtp_reply, now);
    if (!r) co_return r.take_error();
    co_return co_await load_email(c, u.id);
  });
}

}  // namespace creatord
