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
#include "store/sqlite/sqlite_db.hpp"
#include "store/job_store.hpp"
#include "store/mail_store.hpp"
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

class SqliteStore final : public Store, public JobStore, public MailStore {
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
  Async<int64_t> count_creators() override;
  Async<Image> add_image(NewImage image) override;
  Async<Image> get_image(int64_t id) override;
  Async<Unit> delete_image(int64_t id) override;
  Async<Page<Image>> list_images(int64_t creator_id, PageQuery query) override;
  Async<std::vector<std::string>> unreferenced_blobs(std::vector<std::string> candidates) override;
  std::optional<uint64_t> creators_version() const override { return creators_version_.load(std::memory_order_acquire); }
  Async<Unit> ping() override;
  void close() override;

  // JobStore (sqlite_jobs.cpp)
  Async<EnqueueResult> enqueue(NewJob job) override;
  Async<int64_t> enqueue_many(std::vector<NewJob> jobs) override;
  Async<Job> get_job(int64_t id) override;
  Async<Page<Job>> list_jobs(JobFilter filter, PageQuery page) override;
  Async<std::vector<Job>> claim(std::string queue, std::string owner, int n, int64_t lease_ms) override;
  Async<std::vector<int64_t>> heartbeat(std::string owner, int64_t lease_ms) override;
  Async<bool> update_step(std::string owner, StepUpdate update) override;
  Async<std::vector<bool>> finish(std::string owner, std::vector<JobFinish> finishes) override;
  Async<Job> request_cancel(int64_t id) override;
  Async<Job> retry_job(int64_t id) override;
  Async<int64_t> recover_jobs(bool all_running, int64_t retry_base_ms) override;
  Async<int64_t> prune_jobs(int64_t finished_before_ms) override;
  Async<int64_t> next_run_at(std::string queue) override;
  Async<std::vector<JobEvent>> job_events(int64_t job_id, int64_t after_seq, int limit) override;

  // MailStore (sqlite_jobs.cpp)
  Async<EmailAccepted> create_email(Email email, NewJob delivery) override;
  Async<Email> get_email(int64_t id) override;
  Async<Page<Email>> list_emails(std::optional<std::string> state, PageQuery page) override;
  Async<Email> update_email(EmailUpdate update) override;

  // Exposed for the job engine (same process, same writer): runs fn in the write transaction.
  struct WriteItem {
    std::function<bool(sqlite::Db&)> run;        // false: roll this item back
    std::function<void(const Error*)> finish;    // after COMMIT (nullptr) or on failure
  };
  bool submit_write(WriteItem item);
  BlockingPool& read_pool() { return *read_pool_; }
  sqlite::Db& reader(size_t worker) { return *readers_[worker]; }

 private:
  explicit SqliteStore(SqliteOptions options) : options_(std::move(options)) {}
  template <class T, class F>
  Async<T> read(F fn);
  template <class T, class F>
  Async<T> write(F fn);
  void writer_loop();

  SqliteOptions options_;
  std::unique_ptr<sqlite::Db> writer_;
  std::vector<std::unique_ptr<sqlite::Db>> readers_;
  std::unique_ptr<BlockingPool> read_pool_;

  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<WriteItem> queue_;
  bool stopping_ = false;
  std::thread writer_thread_;
  // Bumped by the writer after every COMMIT, before acknowledging its writes.
  std::atomic<uint64_t> creators_version_{1};
};

}  // namespace creatord
