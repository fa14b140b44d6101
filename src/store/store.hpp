// The store: every call is awaitable from a coroutine and never blocks the caller's thread.
// SQLite implements it now; PostgreSQL implements the same interface.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/async.hpp"
#include "domain/creator.hpp"
#include "domain/image.hpp"
#include "domain/paging.hpp"
#include "metrics/exposition.hpp"

namespace creatord {

struct NewImage {
  int64_t creator_id = 0;
  std::string sha256;
  std::string content_type;
  int width = 0;
  int height = 0;
  int64_t size_bytes = 0;
  std::string source = "upload";
  // Set by job steps: the same key stores the image once, however often the step runs.
  std::optional<std::string> origin_key;
  std::optional<int64_t> job_id;
  std::optional<std::string> source_url;
};

class Store {
 public:
  virtual ~Store() = default;

  // Errors: conflict (handle taken), validation.
  virtual Async<Creator> create_creator(CreatorFields fields) = 0;
  virtual Async<Creator> get_creator(int64_t id) = 0;
  virtual Async<Creator> update_creator(int64_t id, CreatorFields fields) = 0;
  // Deletes the creator and its images' records.
  virtual Async<Unit> delete_creator(int64_t id) = 0;
  // Newest first; q matches name or handle, case-insensitively.
  virtual Async<Page<Creator>> list_creators(PageQuery query) = 0;
  // The same page as the list answer's JSON text (creators_page_json). A store that can writes it
  // straight from its rows (no Creator values: the uncached list's largest cost was their
  // allocation on the reader threads and release on the I/O threads).
  virtual Async<std::string> list_creators_json(PageQuery query, Visibility who) {
    auto page = co_await list_creators(std::move(query));
    if (!page) co_return page.take_error();
    co_return creators_page_json(page.value(), who);
  }
  virtual Async<int64_t> count_creators() = 0;
  // Creator ids greater than after_id, ascending, at most limit (for jobs of every creator).
  virtual Async<std::vector<int64_t>> creator_ids_after(int64_t after_id, int limit) = 0;

  virtual Async<Image> add_image(NewImage image) = 0;
  virtual Async<Image> get_image(int64_t id) = 0;
  virtual Async<Unit> delete_image(int64_t id) = 0;
  virtual Async<Page<Image>> list_images(int64_t creator_id, PageQuery query) = 0;
  // Of the given blob names, those that no image refers to (for the blob sweeper).
  virtual Async<std::vector<std::string>> unreferenced_blobs(std::vector<std::string> candidates) = 0;

  // A number that changes whenever a committed write may have changed what list_creators
  // returns, before that write is acknowledged. Lets callers cache list answers. nullopt: this
  // store cannot tell (e.g. other processes write), so nothing may be cached.
  virtual std::optional<uint64_t> creators_version() const = 0;

  // Answers when the store can serve reads and writes (for /readyz).
  virtual Async<Unit> ping() = 0;
  // A store with a connection pool: how much of it is in use (for /readyz). nullopt: none.
  struct PoolUse {
    size_t max = 0, open = 0, in_use = 0, waiting = 0;
    uint64_t waited = 0, timed_out = 0;  // since start: callers that waited, that gave up
    std::string notifications;            // "listen", "reconnecting" or "polling"
  };
  virtual std::optional<PoolUse> pool_use() const { return std::nullopt; }
  // Writes waiting for the store's one writer thread (SQLite), for /metrics. nullopt: none.
  virtual std::optional<size_t> write_queue_length() const { return std::nullopt; }
  // How long operations waited for the store's scarce resource (SQLite's writer thread, a
  // PostgreSQL connection) and then held it (SQLite: a write transaction, one per batch;
  // PostgreSQL: a connection lease, one per operation), for /metrics. nullopt: not measured.
  struct Latency {
    std::string resource;  // sqlite_writer or postgresql_connection
    metrics::HistogramSnapshot wait, hold;
  };
  virtual std::optional<Latency> latency() const { return std::nullopt; }

  // Finishes queued writes, then closes. Called once, after the server stopped.
  virtual void close() = 0;
};

}  // namespace creatord
