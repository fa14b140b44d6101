// Who the caller is, from the Authorization header: a shared token (--api-tokens, full power),
// an API key (auth/keyring.hpp), or a JWT (a signed-in user); nobody (anonymous) without one.
// Handlers decide with the Principal it yields; the middleware checks route scopes with it.
#pragma once
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "auth/jwt.hpp"
#include "auth/principal.hpp"

namespace creatord::auth {
class Keyring;
class JwksCache;
}  // namespace creatord::auth

namespace creatord::api {

struct AuthOptions {
  std::vector<std::string> api_tokens;  // shared tokens: every scope
  bool public_read = true;              // anonymous callers may read public fields
  auth::JwtOptions jwt;
};

class Authenticator {
 public:
  // keys, jwks: null when there are none.
  Authenticator(AuthOptions options, auth::Keyring* keys, auth::JwksCache* jwks);
  explicit Authenticator(std::vector<std::string> api_tokens) : Authenticator(AuthOptions{std::move(api_tokens)}, nullptr, nullptr) {}

  // Whether callers must present credentials: shared tokens, JWT settings, or API keys in the
  // store. Without any (the loopback demo mode) every caller has every scope.
  bool required() const;
  bool jwt_enabled() const { return !options_.jwt.hs256_secret.empty() || jwks_ != nullptr; }
  bool has_tokens() const { return !tokens_.load()->empty(); }
  // Replaces the shared tokens (SIGHUP); requests already checked keep their answer. Safe while
  // other threads authenticate.
  void set_tokens(std::vector<std::string> tokens) {
    tokens_.store(std::make_shared<const std::vector<std::string>>(std::move(tokens)));
  }

  struct Outcome {
    enum class Kind { ok, denied, unknown_key };
    Kind kind = Kind::ok;
    auth::Principal principal;  // ok
    std::string reason;         // denied: why, for the client
  };
  // Without waiting: a JWT naming a key the JWKS cache does not have yet is unknown_key.
  Outcome authenticate(std::string_view authorization, int64_t now_ms) const;
  // As authenticate(), but an unknown key refreshes the JWKS (rate-bounded) and tries again.
  boost::asio::awaitable<Outcome> authenticate_fresh(std::string authorization, int64_t now_ms) const;

 private:
  Outcome bearer(std::string_view credential, int64_t now_ms) const;

  AuthOptions options_;  // its api_tokens as given at start; tokens_ holds the current ones
  std::atomic<std::shared_ptr<const std::vector<std::string>>> tokens_;
  auth::Keyring* keys_;
  auth::JwksCache* jwks_;
};

}  // namespace creatord::api
