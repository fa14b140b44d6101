#include "core/response_cache.hpp"

namespace creatord {

ResponseCache::ResponseCache(size_t byte_budget, size_t max_entries) : budget_(byte_budget), max_entries_(max_entries) {}

void ResponseCache::erase(std::list<Entry>::iterator it) {
  bytes_.fetch_sub(it->cost, std::memory_order_relaxed);
  entries_.fetch_sub(1, std::memory_order_relaxed);
  index_.erase(std::string_view(it->key));
  lru_.erase(it);
}

std::shared_ptr<const std::string> ResponseCache::get(const std::string& key, uint64_t version) {
  if (!enabled()) return nullptr;
  std::lock_guard lock(mu_);
  auto found = index_.find(std::string_view(key));
  if (found == index_.end()) {
    misses_.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  auto it = found->second;
  if (it->version != version) {  // stale: a write came after it
    erase(it);
    misses_.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  lru_.splice(lru_.begin(), lru_, it);
  hits_.fetch_add(1, std::memory_order_relaxed);
  return it->body;
}

void ResponseCache::put(std::string key, uint64_t version, std::string body) {
  if (!enabled()) return;
  size_t c = cost(key, body);
  if (c > budget_ / 8) return;
  auto shared = std::make_shared<const std::string>(std::move(body));
  std::lock_guard lock(mu_);
  if (auto found = index_.find(std::string_view(key)); found != index_.end()) erase(found->second);
  while (!lru_.empty() && (bytes() + c > budget_ || entries() + 1 > max_entries_)) erase(std::prev(lru_.end()));
  lru_.push_front(Entry{std::move(key), version, std::move(shared), c});
  index_.emplace(std::string_view(lru_.front().key), lru_.begin());
  bytes_.fetch_add(c, std::memory_order_relaxed);
  entries_.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace creatord
