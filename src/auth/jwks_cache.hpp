// The public keys of a JWKS URL (e.g. Supabase's /auth/v1/.well-known/jwks.json), fetched in
// the background and kept: fetched at start, then every `refresh`; a token naming a key that is
// not there (the provider rotated its keys) fetches again at once, but at most once per
// `min_interval`, so tokens with made-up key ids cannot hammer the provider. When a fetch fails
// the keys already fetched stay in force.
#pragma once
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "auth/jwt.hpp"

namespace creatord {
class BlockingPool;
}

namespace creatord::auth {

struct JwksOptions {
  std::string url;
  std::chrono::milliseconds refresh{600'000};
  std::chrono::milliseconds min_interval{30'000};  // between fetches for an unknown key
  std::chrono::milliseconds timeout{10'000};
};

class JwksCache {
 public:
  // pool: where the blocking HTTP call runs.
  JwksCache(JwksOptions options, BlockingPool& pool) : options_(std::move(options)), pool_(pool) {}

  std::shared_ptr<const std::vector<Jwk>> keys() const;
  // Fetches at once, then every refresh (sooner after a failure), until the executor stops.
  boost::asio::awaitable<void> run();
  // A token named an unknown key: fetches now unless one was fetched for that reason within
  // min_interval; waits for a fetch already under way. Returns when the keys are as fresh as
  // they will get.
  boost::asio::awaitable<void> refresh_for_unknown_key();
  uint64_t fetches() const { return fetches_.load(); }

 private:
  boost::asio::awaitable<bool> fetch();

  JwksOptions options_;
  BlockingPool& pool_;
  mutable std::mutex mutex_;
  std::shared_ptr<const std::vector<Jwk>> keys_ = std::make_shared<std::vector<Jwk>>();
  std::chrono::steady_clock::time_point last_forced_{};
  bool forced_once_ = false;
  bool fetching_ = false;
  std::atomic<uint64_t> fetches_{0};
};

}  // namespace creatord::auth
