// The API keys the server accepts, held in memory so that checking a key costs a hash and a
// lookup, never a database call on the request path. Reloaded from the store every `refresh`,
// so keys created or revoked with `creatord keys` (by any process on the same store) take
// effect within that time. When a key is used, the time is noted in memory and written in one
// batch on the next refresh (last_used_at).
#pragma once
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "auth/api_keys.hpp"

namespace creatord::auth {

class Keyring {
 public:
  explicit Keyring(KeyStore& store) : store_(store) {}

  // The key with this secret, when it exists and is not revoked; notes its use.
  std::optional<Principal> authenticate(std::string_view secret, int64_t now_ms);
  // Whether the store holds any key, revoked ones too: a server with keys requires credentials
  // (revoking every key does not open it up).
  bool any_keys() const;

  // Reloads the keys and writes the noted uses. Errors are returned and the old keys kept.
  boost::asio::awaitable<Status> refresh();
  // refresh() every interval until the executor stops.
  boost::asio::awaitable<void> run(std::chrono::milliseconds interval);

 private:
  struct Snapshot {
    std::unordered_map<std::string, ApiKey> active;  // by hash
    bool any = false;
  };
  KeyStore& store_;
  mutable std::mutex mutex_;
  std::shared_ptr<const Snapshot> keys_ = std::make_shared<Snapshot>();
  std::unordered_map<int64_t, int64_t> used_;  // key id -> last use (ms), not yet written
};

}  // namespace creatord::auth
