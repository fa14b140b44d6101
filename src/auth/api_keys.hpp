// API keys: a name, scopes, and the SHA-256 of a random secret shown once at creation. The
// store keeps only the hash, so a leaked database does not leak working keys.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "auth/principal.hpp"
#include "core/async.hpp"

namespace creatord::auth {

struct ApiKey {
  int64_t id = 0;
  std::string name;
  std::string prefix;  // the secret's first characters ("crd_AbCd"), to tell keys apart in lists
  std::string hash;    // lower-case hex SHA-256 of the whole secret
  Scopes scopes = 0;
  int64_t created_at_ms = 0;
  std::optional<int64_t> revoked_at_ms;
  std::optional<int64_t> last_used_at_ms;
};

struct NewApiKey {
  std::string name;
  std::string prefix;
  std::string hash;
  Scopes scopes = 0;
};

// What the key registry needs of a database (SQLite and PostgreSQL implement it).
class KeyStore {
 public:
  virtual ~KeyStore() = default;
  virtual Async<ApiKey> create_key(NewApiKey key, int64_t now_ms) = 0;
  // Every key, revoked ones too, oldest first.
  virtual Async<std::vector<ApiKey>> list_keys() = 0;
  // not_found when there is no such key; revoking twice keeps the first time.
  virtual Async<ApiKey> revoke_key(int64_t id, int64_t now_ms) = 0;
  // Sets last_used_at of each (id, time) pair, never moving it backwards. One write for all.
  virtual Async<Unit> touch_keys(std::vector<std::pair<int64_t, int64_t>> used) = 0;
};

// A new key's secret: "crd_" and 43 base64url characters (256 random bits).
std::string generate_key_secret();
// What the store keeps of a secret.
std::string key_hash(std::string_view secret);
std::string key_prefix(std::string_view secret);
bool looks_like_api_key(std::string_view credential);

// base64url without padding (RFC 4648 §5); decode accepts padding and fails on anything else.
std::string base64url_encode(std::string_view bytes);
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace creatord::auth
