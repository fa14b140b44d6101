// The store on PostgreSQL, for several creatord instances sharing one database (Supabase is
// PostgreSQL). Same interfaces, same guarantees as SQLite: jobs are claimed with
// FOR UPDATE SKIP LOCKED, every worker write is fenced by (id, attempt, owner) under the job's
// row lock, and commits notify the other instances (LISTEN/NOTIFY) so their dispatchers and SSE
// clients wake at once. Image bytes live in PostgreSQL, where every instance reads them.
#pragma once
#include <atomic>
#include <future>
#include <memory>
#include <thread>

#include <boost/asio/cancellation_signal.hpp>

#include "jobs/event_hub.hpp"
#include "auth/api_keys.hpp"
#include "mail/mail_store.hpp"
#include "queue/driver.hpp"
#include "store/blob_store.hpp"
#include "store/pg/pg.hpp"
#include "store/store.hpp"

namespace creatord {

struct PgOptions {
  std::string url;
  size_t max_connections = 10;  // the pool; the listener is one more
  std::chrono::milliseconds acquire_timeout{5000};
  std::chrono::milliseconds statement_timeout{30000};
  std::chrono::milliseconds poll_interval{1000};  // without LISTEN
  // LISTEN needs a session: a direct or session-mode pooler URL. Empty: url. When the one used
  // leads to a transaction-mode pooler, other instances' changes are polled for instead.
  std::string listen_url;
};

// Split by aggregate: pg_store.cpp (connections, creators and images), pg_queue.cpp (the queue
// driver), pg_mail.cpp (the outbox), pg_blobs.cpp (image bytes).
class PgStore final : public Store, public queue::Driver, public MailStore, public auth::KeyStore {
 public:
  // Starts its own event loop thread for the connections; migrates the schema.
  static Result<std::unique_ptr<PgStore>> open(PgOptions options);
  ~PgStore() override;

  // Wakes the hub's topics when other instances commit job changes (LISTEN).
  void listen(EventHub& hub);

  Async<Creator> create_creator(CreatorFields fields) override;
  Async<Creator> get_creator(int64_t id) override;
  Async<Creator> update_creator(int64_t id, CreatorFields fields) override;
  Async<Unit> delete_creator(int64_t id) override;
  Async<Page<Creator>> list_creators(PageQuery query) override;
  Async<int64_t> count_creators() override;
  Async<std::vector<int64_t>> creator_ids_after(int64_t after_id, int limit) override;
  Async<Image> add_image(NewImage image) override;
  Async<Image> get_image(int64_t id) override;
  Async<Unit> delete_image(int64_t id) override;
  Async<Page<Image>> list_images(int64_t creator_id, PageQuery query) override;
  Async<std::vector<std::string>> unreferenced_blobs(std::vector<std::string> candidates) override;
  // Bumped by our own writes after COMMIT and by other instances' (NOTIFY creatord_data). While
  // the notification connection is down nothing may be cached: nullopt.
  std::optional<uint64_t> creators_version() const override {
    if (!listening_.load()) return std::nullopt;
    return data_version_.load();
  }
  Async<Unit> ping() override;
  std::optional<PoolUse> pool_use() const override;
  std::optional<Latency> latency() const override;
  void close() override;

  Async<std::vector<queue::Inserted>> insert(std::vector<NewJob> jobs, int64_t now) override;
  Async<Job> get_job(int64_t id) override;
  Async<Page<Job>> list_jobs(JobFilter filter, PageQuery page) override;
  Async<std::vector<Job>> claim(std::string queue, std::string owner, int n, int64_t lease_ms,
                                const Clock& clock) override;
  Async<std::vector<int64_t>> heartbeat(std::string owner, int64_t lease_ms, const Clock& clock) override;
  Async<bool> update_step(std::string owner, StepUpdate update, int64_t now) override;
  Async<std::vector<bool>> apply(std::vector<queue::JobWrite> writes) override;
  Async<std::vector<Job>> running_jobs(int64_t now, bool all_running, int limit) override;
  Async<int64_t> prune(int64_t finished_before_ms) override;
  Async<int64_t> next_run_at(std::string queue, int64_t after_ms) override;
  Async<std::vector<JobEvent>> job_events(int64_t job_id, int64_t after_seq, int limit) override;
  Async<std::vector<QueueInfo>> queue_counts(int64_t since_ms) override;
  Async<Unit> set_paused(std::string queue, bool paused, int64_t now) override;
  Async<std::vector<queue::ScheduleMark>> schedule_marks() override;
  Async<Unit> set_schedule_mark(std::string name, int64_t slot_ms) override;

  Async<EmailAccepted> create_email(Email email, DeliveryJob delivery, int64_t now, int64_t key_since_ms) override;
  Async<std::optional<Email>> find_email_by_key(std::string key, int64_t key_since_ms) override;
  Async<Email> get_email(int64_t id) override;
  Async<Page<Email>> list_emails(std::optional<std::string> state, PageQuery page) override;
  Async<Email> update_email(EmailUpdate update) override;
  Async<std::vector<std::pair<std::string, int64_t>>> email_counts() override;

  // auth::KeyStore (pg_keys.cpp)
  Async<auth::ApiKey> create_key(auth::NewApiKey key, int64_t now_ms) override;
  Async<std::vector<auth::ApiKey>> list_keys() override;
  Async<auth::ApiKey> revoke_key(int64_t id, int64_t now_ms) override;
  Async<Unit> touch_keys(std::vector<std::pair<int64_t, int64_t>> used) override;

 private:
  friend class PgBlobStore;
  explicit PgStore(PgOptions options);
  template <class T, class F>
  Async<T> with_conn(F fn);
  template <class T, class F>
  Async<T> in_tx(F fn);
  // A transaction that changes creators (what a creators list shows): tells every instance, then
  // bumps our version.
  template <class T, class F>
  Async<T> data_tx(F fn);
  boost::asio::awaitable<void> listen_loop(EventHub& hub);
  boost::asio::awaitable<void> poll_loop(EventHub& hub);
  boost::asio::awaitable<Result<Unit>> poll_once(EventHub& hub, int64_t since_ms);
  // At start-up: whether the URLs lead to a transaction-mode pooler; logs what it finds.
  void detect_pooling();

  PgOptions options_;
  boost::asio::io_context ioc_{1};
  std::thread thread_;
  std::unique_ptr<pg::Pool> pool_;
  std::atomic<bool> stopping_{false};
  // The notification loop (listen_loop or poll_loop): close() cancels it and waits for its end
  // before the pool goes. notify_running_ is touched on the loop's thread only.
  boost::asio::cancellation_signal notify_stop_;
  bool notify_running_ = false;
  std::promise<void> notify_ended_;
  std::future<void> notify_done_;
  std::atomic<bool> listening_{false};
  bool transaction_pooled_ = false;
  bool polling_ = false;  // no session for LISTEN: poll for other instances' changes
  std::atomic<uint64_t> data_version_{1};
};

// Image bytes in PostgreSQL (table creatord.blobs), on the store's connection pool. Blocking,
// like every BlobStore: callers run it on a BlockingPool thread.
class PgBlobStore final : public BlobStore {
 public:
  explicit PgBlobStore(PgStore& store) : store_(store) {}
  Status put(const std::string& sha256, std::string_view bytes) override;
  Result<std::string> get(const std::string& sha256) override;
  Status remove(const std::string& sha256) override;
  std::vector<std::string> older_than(std::chrono::seconds age) override;

 private:
  template <class T, class F>
  Result<T> run(F fn);
  PgStore& store_;
};

}  // namespace creatord
