// The embedded store: SQLite in WAL mode. One writer thread owns the only write connection;
// queued writes are batched into one transaction (each in its own savepoint, so one failing
// write does not undo the others) and acknowledged only after COMMIT. Reads run on a small pool
// of read-only connections. No caller's thread ever blocks on SQLite.
#pragma once
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/blocking_pool.hpp"
#include "auth/api_keys.hpp"
#include "mail/mail_store.hpp"
#include "metrics/histogram.hpp"
#include "queue/driver.hpp"
#include "store/sqlite/sqlite_db.hpp"
#include "store/store.hpp"

namespace creatord {

struct SqliteOptions {
  std::string path;                    // database file
  size_t readers = 2;                  // read-only connections (and threads)
  size_t queue_limit = 10000;          // queued reads or writes before answering 503
  size_t max_batch = 256;              // writes per transaction
  int busy_timeout_ms = 5000;
  std::string synchronous = "FULL";    // FULL: a COMMIT survives power loss; NORMAL: a crash
};

class SqliteStore final : public Store, public queue::Driver, public MailStore, public auth::KeyStore {
 public:
  // Opens the database and applies migrations. Errors at start-up are fatal to the caller.
  static Result<std::unique_ptr<SqliteStore>> open(SqliteOptions options);
  // Applies migrations and closes (for `creatord migrate`).
  static Result<int> migrate_only(const SqliteOptions& options);
  ~SqliteStore() override;

  Async<Creator> create_creator(CreatorFields fields) override;
  Async<Creator> get_creator(int64_t id) override;
  Async<Creator> update_creator(int64_t id, CreatorFields fields) override;
  Async<Unit> delete_creator(int64_t id) override;
  Async<Page<Creator>> list_creators(PageQuery query) override;
  Async<std::string> list_creators_json(PageQuery query, Visibility who) override;
  Async<int64_t> count_creators() override;
  Async<std::vector<int64_t>> creator_ids_after(int64_t after_id, int limit) override;
  Async<Image> add_image(NewImage image) override;
  Async<Image> get_image(int64_t id) override;
  Async<Unit> delete_image(int64_t id) override;
  Async<Page<Image>> list_images(int64_t creator_id, PageQuery query) override;
  Async<std::vector<std::string>> unreferenced_blobs(std::vector<std::string> candidates) override;
  std::optional<uint64_t> creators_version() const override { return creators_version_.load(std::memory_order_acquire); }
  std::optional<size_t> write_queue_length() const override {
    std::lock_guard lock(mutex_);
    return queue_.size();
  }
  std::optional<Latency> latency() const override {
    return Latency{"sqlite_writer", write_wait_.snapshot(), write_hold_.snapshot()};
  }
  Async<Unit> ping() override;
  void close() override;

  // queue::Driver (sqlite_queue.cpp)
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

  // MailStore (sqlite_mail.cpp)
  Async<EmailAccepted> create_email(Email email, DeliveryJob delivery, int64_t now, int64_t key_since_ms) override;
  Async<std::optional<Email>> find_email_by_key(std::string key, int64_t key_since_ms) override;
  Async<Email> get_email(int64_t id) override;
  Async<Page<Email>> list_emails(std::optional<std::string> state, PageQuery page) override;
  Async<Email> update_email(EmailUpdate update) override;
  Async<std::vector<std::pair<std::string, int64_t>>> email_counts() override;

  // auth::KeyStore (sqlite_keys.cpp)
  Async<auth::ApiKey> create_key(auth::NewApiKey key, int64_t now_ms) override;
  Async<std::vector<auth::ApiKey>> list_keys() override;
  Async<auth::ApiKey> revoke_key(int64_t id, int64_t now_ms) override;
  Async<Unit> touch_keys(std::vector<std::pair<int64_t, int64_t>> used) override;

  // Exposed for the job engine (same process, same writer): runs fn in the write transaction.
  struct WriteItem {
    std::function<bool(sqlite::Db&)> run;        // false: roll this item back
    std::function<void(const Error*)> finish;    // after COMMIT (nullptr) or on failure
    bool changes_creators = true;                // may change what list_creators returns
    std::chrono::steady_clock::time_point submitted{};  // set by submit_write
  };
  bool submit_write(WriteItem item);
  BlockingPool& read_pool() { return *read_pool_; }
  sqlite::Db& reader(size_t worker) { return *readers_[worker]; }

 private:
  explicit SqliteStore(SqliteOptions options) : options_(std::move(options)) {}
  template <class T, class F>
  Async<T> read(F fn);
  // changes_creators = false for writes that cannot change a creators list (jobs, emails, images), so
  // the list cache survives a busy queue.
  template <class T, class F>
  Async<T> write(F fn, bool changes_creators = true);
  void writer_loop();

  SqliteOptions options_;
  std::unique_ptr<sqlite::Db> writer_;
  std::vector<std::unique_ptr<sqlite::Db>> readers_;
  std::unique_ptr<BlockingPool> read_pool_;

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<WriteItem> queue_;
  bool stopping_ = false;
  std::thread writer_thread_;
  // Bumped by the writer after a COMMIT that may have changed creators, before acknowledging.
  std::atomic<uint64_t> creators_version_{1};
  metrics::Histogram write_wait_{metrics::latency_bounds()};  // submit_write to its batch starting
  metrics::Histogram write_hold_{metrics::latency_bounds()};  // BEGIN to COMMIT of a batch
};

}  // namespace creatord
