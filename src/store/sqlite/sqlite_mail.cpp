// The email outbox on SQLite. An email and its delivery job (built by the outbox) are written in
// one transaction, through the queue driver's own insert.
#include <sqlite3.h>

#include <boost/json.hpp>

#include "core/clock.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "store/sqlite/sqlite_store_ops.hpp"

namespace creatord {

using sqlite::Db;
using sqlite::Stmt;

namespace {

#define EMAIL_COLUMNS                                                                              \
  "id, state, from_addr, recipients, reply_to, subject, text_body, html_body, message_id, "       \
  "idempotency_key, job_id, attempts, last_error, smtp_reply, created_at, updated_at, sent_at, request_hash"

Email email_from_row(const Stmt& st) {
  Email e;
  e.id = st.int64(0);
  e.state = st.text(1);
  e.from = st.text(2);
  boost::system::error_code ec;
  auto r = boost::json::parse(st.text(3), ec);
  auto list = [&](const char* k) {
    std::vector<std::string> out;
    if (!ec && r.is_object() && r.as_object().contains(k) && r.at(k).is_array())
      for (const auto& v : r.at(k).as_array())
        if (v.is_string()) out.emplace_back(v.as_string());
    return out;
  };
  e.to = list("to");
  e.cc = list("cc");
  e.bcc = list("bcc");
  if (!st.is_null(4)) e.reply_to = st.text(4);
  e.subject = st.text(5);
  if (!st.is_null(6)) e.text = st.text(6);
  if (!st.is_null(7)) e.html = st.text(7);
  e.message_id = st.text(8);
  if (!st.is_null(9)) e.idempotency_key = st.text(9);
  if (!st.is_null(10)) e.job_id = st.int64(10);
  e.attempts = static_cast<int>(st.int64(11));
  e.last_error = st.text(12);
  e.smtp_reply = st.text(13);
  e.created_at_ms = st.int64(14);
  e.updated_at_ms = st.int64(15);
  e.sent_at_ms = st.is_null(16) ? 0 : st.int64(16);
  e.request_hash = st.text(17);
  return e;
}

Result<Email> load_email(Db& db, int64_t id) {
  auto st = db.prepare("SELECT " EMAIL_COLUMNS " FROM emails WHERE id = ?1");
  st.bind(1, id);
  if (st.step()) return email_from_row(st);
  if (st.rc() != SQLITE_DONE) return sqlite::to_error(st.rc(), db.errmsg());
  return Error::make(ErrorCode::not_found, fmt::format("email {} does not exist", id));
}

// The live holder of an idempotency key; an older holder's key is released.
Result<std::optional<Email>> key_holder(Db& db, const std::string& key, int64_t since, bool release) {
  auto st = db.prepare("SELECT " EMAIL_COLUMNS " FROM emails WHERE idempotency_key = ?1");
  st.bind(1, key);
  if (!st.step()) {
    if (st.rc() != SQLITE_DONE) return sqlite::to_error(st.rc(), db.errmsg());
    return std::optional<Email>{};
  }
  Email e = email_from_row(st);
  if (e.created_at_ms >= since) return std::optional<Email>{std::move(e)};
  if (release) {
    auto clear = db.prepare("UPDATE emails SET idempotency_key = NULL WHERE id = ?1");
    clear.bind(1, e.id);
    if (int rc = clear.run(); rc != SQLITE_DONE) return sqlite::to_error(rc, db.errmsg());
  }
  return std::optional<Email>{};
}

std::string recipients_json(const Email& e) {
  auto list = [](const std::vector<std::string>& v) {
    boost::json::array a;
    for (const auto& s : v) a.emplace_back(s);
    return a;
  };
  return boost::json::serialize(boost::json::object{{"to", list(e.to)}, {"cc", list(e.cc)}, {"bcc", list(e.bcc)}});
}

Result<int64_t> insert_email(Db& db, const Email& e, int64_t now) {
  auto st = db.prepare(
      "INSERT INTO emails (state, from_addr, recipients, reply_to, subject, text_body, html_body, message_id, "
      "idempotency_key, created_at, updated_at, request_hash) "
      "VALUES ('queued', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10)");
  st.bind(1, e.from).bind(2, recipients_json(e)).bind(3, e.reply_to).bind(4, e.subject);
  st.bind(5, e.text).bind(6, e.html).bind(7, e.message_id).bind(8, e.idempotency_key).bind(9, now);
  st.bind(10, e.request_hash);
  if (int rc = st.run(); rc != SQLITE_DONE) return sqlite::to_error(rc, db.errmsg());
  return db.last_insert_rowid();
}

}  // namespace

Async<EmailAccepted> SqliteStore::create_email(Email e, DeliveryJob delivery, int64_t now, int64_t key_since) {
  return write<EmailAccepted>([e = std::move(e), delivery = std::move(delivery), now,
                               key_since](Db& db) mutable -> Result<EmailAccepted> {
    if (e.idempotency_key) {
      auto held = key_holder(db, *e.idempotency_key, key_since, true);
      if (!held) return held.take_error();
      if (held.value()) return EmailAccepted{std::move(*held.value()), false};
    }
    auto id = insert_email(db, e, now);
    if (!id) return id.take_error();
    auto job = sqlite_insert_job(db, delivery(id.value()), now);
    if (!job) return job.take_error();
    auto link = db.prepare("UPDATE emails SET job_id = ?2 WHERE id = ?1");
    link.bind(1, id.value()).bind(2, job->job.id);
    if (int rc = link.run(); rc != SQLITE_DONE) return sqlite::to_error(rc, db.errmsg());
    auto stored = load_email(db, id.value());
    if (!stored) return stored.take_error();
    return EmailAccepted{std::move(stored.value()), true};
  }, false);
}

Async<std::optional<Email>> SqliteStore::find_email_by_key(std::string key, int64_t key_since) {
  return read<std::optional<Email>>([key = std::move(key), key_since](Db& db) {
    return key_holder(db, key, key_since, false);
  });
}

Async<Email> SqliteStore::get_email(int64_t id) {
  return read<Email>([id](Db& db) { return load_email(db, id); });
}

Async<Page<Email>> SqliteStore::list_emails(std::optional<std::string> state, PageQuery q) {
  return read<Page<Email>>([state = std::move(state), q = std::move(q)](Db& db) -> Result<Page<Email>> {
    auto st = db.prepare("SELECT " EMAIL_COLUMNS " FROM emails WHERE id < ?1 AND (?2 IS NULL OR state = ?2) "
                         "ORDER BY id DESC LIMIT ?3");
    st.bind(1, q.before_id.value_or(INT64_MAX)).bind(2, state).bind(3, int64_t{q.limit} + 1);
    Page<Email> page;
    while (st.step()) page.items.push_back(email_from_row(st));
    if (st.rc() != SQLITE_DONE) return sqlite::to_error(st.rc(), db.errmsg());
    page.trim_to(q.limit);
    return page;
  });
}

Async<std::vector<std::pair<std::string, int64_t>>> SqliteStore::email_counts() {
  using Counts = std::vector<std::pair<std::string, int64_t>>;
  return read<Counts>([](Db& db) -> Result<Counts> {
    auto st = db.prepare("SELECT state, count(*) FROM emails GROUP BY state");
    Counts counts;
    while (st.step()) counts.emplace_back(std::string(st.text(0)), st.int64(1));
    if (st.rc() != SQLITE_DONE) return sqlite::to_error(st.rc(), db.errmsg());
    return counts;
  });
}

Async<Email> SqliteStore::update_email(EmailUpdate u) {
  return write<Email>([u = std::move(u)](Db& db) -> Result<Email> {
    int64_t now = now_ms();
    auto st = db.prepare(
        "UPDATE emails SET state = ?2, attempts = attempts + ?3, last_error = COALESCE(?4, last_error), "
        "smtp_reply = COALESCE(?5, smtp_reply), updated_at = ?6, "
        "sent_at = CASE WHEN ?2 = 'sent' THEN ?6 ELSE sent_at END WHERE id = ?1");
    st.bind(1, u.id).bind(2, u.state).bind(3, int64_t{u.count_attempt ? 1 : 0}).bind(4, u.last_error);
    st.bind(5, u.smtp_reply).bind(6, now);
    if (int rc = st.run(); rc != SQLITE_DONE) return sqlite::to_error(rc, db.errmsg());
    return load_email(db, u.id);
  }, false);
}

}  // namespace creatord
