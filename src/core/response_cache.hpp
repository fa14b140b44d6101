// Serialized answers kept for reuse, shared by every I/O thread and bounded in bytes and entries
// together: one budget for all response caches (a cache names its entries with a key prefix).
// An entry is valid while the version it was stored with is current (a store's write counter),
// so a client always reads its own writes. Least recently used entries go first.
#pragma once
#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace creatord {

class ResponseCache {
 public:
  // byte_budget or max_entries 0: nothing is cached.
  ResponseCache(size_t byte_budget, size_t max_entries);

  std::shared_ptr<const std::string> get(const std::string& key, uint64_t version);
  // An answer larger than an eighth of the budget is not kept: it would evict too much.
  void put(std::string key, uint64_t version, std::string body);

  bool enabled() const { return budget_ > 0 && max_entries_ > 0; }
  size_t bytes() const { return bytes_.load(std::memory_order_relaxed); }
  size_t entries() const { return entries_.load(std::memory_order_relaxed); }
  uint64_t hits() const { return hits_.load(std::memory_order_relaxed); }
  uint64_t misses() const { return misses_.load(std::memory_order_relaxed); }
  size_t byte_budget() const { return budget_; }

  // What one entry costs: its key, its body and the bookkeeping around them.
  static size_t cost(std::string_view key, std::string_view body) { return key.size() + body.size() + 128; }

 private:
  struct Entry {
    std::string key;
    uint64_t version;
    std::shared_ptr<const std::string> body;
    size_t cost;
  };
  void erase(std::list<Entry>::iterator it);  // mu_ held

  const size_t budget_;
  const size_t max_entries_;
  std::mutex mu_;
  std::list<Entry> lru_;  // most recently used first
  std::unordered_map<std::string_view, std::list<Entry>::iterator> index_;  // views into lru_ keys
  std::atomic<size_t> bytes_{0}, entries_{0};
  std::atomic<uint64_t> hits_{0}, misses_{0};
};

}  // namespace creatord
