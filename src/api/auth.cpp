#include "api/auth.hpp"

#include <algorithm>

#include "auth/api_keys.hpp"
#include "auth/jwks_cache.hpp"
#include "auth/keyring.hpp"
#include "core/sha256.hpp"
#include "http/message.hpp"

namespace creatord::api {

namespace {
// Compares without an early exit, so timing does not reveal how much of a token matched.
bool constant_time_equals(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}
constexpr std::string_view kBearer = "Bearer ";

using Outcome = Authenticator::Outcome;
Outcome denied(std::string reason) { return Outcome{Outcome::Kind::denied, {}, std::move(reason)}; }
Outcome allowed(auth::Principal p) { return Outcome{Outcome::Kind::ok, std::move(p), {}}; }
}  // namespace

Authenticator::Authenticator(AuthOptions options, auth::Keyring* keys, auth::JwksCache* jwks)
    : options_(std::move(options)),
      tokens_(std::make_shared<const std::vector<std::string>>(options_.api_tokens)),
      keys_(keys),
      jwks_(jwks) {}

bool Authenticator::required() const {
  return has_tokens() || jwt_enabled() || (keys_ && keys_->any_keys());
}

Outcome Authenticator::authenticate(std::string_view authorization, int64_t now_ms) const {
  if (!required()) {
    auth::Principal everyone;
    everyone.scopes = auth::kAllScopes;
    everyone.public_only = false;
    return allowed(everyone);
  }
  if (authorization.empty()) {
    auth::Principal anonymous;
    anonymous.scopes = options_.public_read ? auth::kRead : 0;
    return allowed(anonymous);
  }
  if (authorization.size() <= kBearer.size() || !http::iequals(authorization.substr(0, kBearer.size()), kBearer))
    return denied("the Authorization header must be \"Bearer <credential>\"");
  std::string_view credential = authorization.substr(kBearer.size());
  while (!credential.empty() && credential.front() == ' ') credential.remove_prefix(1);
  return bearer(credential, now_ms);
}

Outcome Authenticator::bearer(std::string_view credential, int64_t now_ms) const {
  bool token = false;
  auto tokens = tokens_.load();
  for (const auto& t : *tokens) token |= constant_time_equals(credential, t);
  if (token) {
    auth::Principal p;
    p.kind = auth::Principal::Kind::token;
    p.id = sha256_hex(credential).substr(0, 16);
    p.scopes = auth::kAllScopes;
    p.public_only = false;
    return allowed(std::move(p));
  }
  if (keys_ && auth::looks_like_api_key(credential)) {
    if (auto p = keys_->authenticate(credential, now_ms)) return allowed(std::move(*p));
    return denied("unknown or revoked API key");
  }
  if (jwt_enabled() && auth::looks_like_jwt(credential)) {
    static const std::vector<auth::Jwk> kNoKeys;
    auto keys = jwks_ ? jwks_->keys() : nullptr;
    auto verdict = auth::verify_jwt(credential, options_.jwt, keys ? *keys : kNoKeys, now_ms / 1000);
    if (verdict.failure == auth::JwtFailure::unknown_key && jwks_)
      return Outcome{Outcome::Kind::unknown_key, {}, verdict.reason};
    if (!verdict.ok()) return denied(verdict.reason);
    auth::Principal p;
    p.kind = auth::Principal::Kind::user;
    p.id = std::move(verdict.subject);
    p.scopes = auth::kRead;
    return allowed(std::move(p));
  }
  return denied("unknown credential");
}

boost::asio::awaitable<Outcome> Authenticator::authenticate_fresh(std::string authorization, int64_t now_ms) const {
  Outcome first = authenticate(authorization, now_ms);
  if (first.kind != Outcome::Kind::unknown_key) co_return first;
  co_await jwks_->refresh_for_unknown_key();
  Outcome again = authenticate(authorization, now_ms);
  if (again.kind == Outcome::Kind::unknown_key) again.kind = Outcome::Kind::denied;
  co_return again;
}

}  // namespace creatord::api
