#include "auth/jwks_cache.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>

#include "core/log.hpp"
#include "core/offload.hpp"
#include "net/http_client.hpp"

namespace creatord::auth {

namespace asio = boost::asio;

std::shared_ptr<const std::vector<Jwk>> JwksCache::keys() const {
  std::lock_guard lock(mutex_);
  return keys_;
}

asio::awaitable<bool> JwksCache::fetch() {
  {
    std::lock_guard lock(mutex_);
    fetching_ = true;
  }
  HttpCall call;
  call.url = options_.url;
  call.connect_timeout = options_.timeout;
  call.timeout = options_.timeout;
  call.max_response_bytes = 1u << 20;
  call.allow_internal = AddressPolicy::parse({"*"}).value();  // the operator named this URL
  call.headers.emplace_back("Accept", "application/json");
  auto get = [call = std::move(call)](size_t) -> Result<HttpReply> { return http_call(call); };
  auto reply = co_await offload<HttpReply>(pool_, get);
  fetches_.fetch_add(1);
  std::string problem;
  std::shared_ptr<std::vector<Jwk>> parsed;
  if (!reply) problem = reply.error().message;
  else if (reply->status != 200) problem = reply->status ? fmt::format("HTTP {}", reply->status) : reply->error;
  else if (auto keys = parse_jwks(reply->body); !keys) problem = keys.error().message;
  else parsed = std::make_shared<std::vector<Jwk>>(std::move(keys.value()));
  std::lock_guard lock(mutex_);
  fetching_ = false;
  if (!parsed) {
    log::warn("JWKS not fetched; the keys fetched before stay in force", {{"url", options_.url}, {"error", problem}});
    co_return false;
  }
  log::info("JWKS fetched", {{"url", options_.url}, {"keys", static_cast<int64_t>(parsed->size())}});
  keys_ = std::move(parsed);
  co_return true;
}

asio::awaitable<void> JwksCache::run() {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    bool ok = co_await fetch();
    // After a failure, try again sooner (never in a tight loop).
    auto wait = ok ? options_.refresh
                   : std::max<std::chrono::milliseconds>(std::min(options_.refresh, options_.min_interval), std::chrono::seconds(1));
    timer.expires_after(wait);
    auto waited = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (std::get<0>(waited)) co_return;
  }
}

asio::awaitable<void> JwksCache::refresh_for_unknown_key() {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  auto deadline = std::chrono::steady_clock::now() + options_.timeout;
  for (;;) {
    bool busy = false, go = false;
    {
      std::lock_guard lock(mutex_);
      auto now = std::chrono::steady_clock::now();
      busy = fetching_;
      if (!busy && (!forced_once_ || now - last_forced_ >= options_.min_interval)) {
        forced_once_ = true;
        last_forced_ = now;
        go = true;
      }
    }
    if (go) {
      co_await fetch();
      co_return;
    }
    // A fetch under way (its answer may hold the key): wait for it; otherwise the keys are as
    // fresh as the rate allows.
    if (!busy || std::chrono::steady_clock::now() >= deadline) co_return;
    timer.expires_after(std::chrono::milliseconds(20));
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

}  // namespace creatord::auth
