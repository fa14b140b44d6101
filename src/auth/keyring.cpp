#include "auth/keyring.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/log.hpp"

namespace creatord::auth {

namespace asio = boost::asio;

std::optional<Principal> Keyring::authenticate(std::string_view secret, int64_t now_ms) {
  std::string hash = key_hash(secret);
  std::lock_guard lock(mutex_);
  auto it = keys_->active.find(hash);
  if (it == keys_->active.end()) return std::nullopt;
  used_[it->second.id] = now_ms;
  Principal p;
  p.kind = Principal::Kind::key;
  p.id = std::to_string(it->second.id);
  p.scopes = it->second.scopes;
  p.public_only = !p.has(kRead);
  return p;
}

bool Keyring::any_keys() const {
  std::lock_guard lock(mutex_);
  return keys_->any;
}

asio::awaitable<Status> Keyring::refresh() {
  std::vector<std::pair<int64_t, int64_t>> used;
  {
    std::lock_guard lock(mutex_);
    used.assign(used_.begin(), used_.end());
    used_.clear();
  }
  if (!used.empty()) {
    auto touched = co_await store_.touch_keys(used);
    if (!touched) {
      std::lock_guard lock(mutex_);
      for (const auto& [id, at] : used) used_.emplace(id, at);  // try again next time (a newer use wins)
      co_return touched.take_error();
    }
  }
  auto keys = co_await store_.list_keys();
  if (!keys) co_return keys.take_error();
  auto next = std::make_shared<Snapshot>();
  next->any = !keys->empty();
  for (auto& k : keys.value())
    if (!k.revoked_at_ms) next->active.emplace(k.hash, std::move(k));
  std::lock_guard lock(mutex_);
  keys_ = std::move(next);
  co_return Unit{};
}

asio::awaitable<void> Keyring::run(std::chrono::milliseconds interval) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  bool failing = false;
  for (;;) {
    timer.expires_after(interval);
    auto waited = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (std::get<0>(waited)) co_return;
    auto r = co_await refresh();
    if (!r && !failing) log::warn("API keys not refreshed; the last ones loaded stay in force", {{"error", r.error().message}});
    else if (r && failing) log::info("API keys refreshed again");
    failing = !r;
  }
}

}  // namespace creatord::auth
