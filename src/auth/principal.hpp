// Who is calling, and what they may do. A leaf: the HTTP layer carries a Principal on each
// request, the API decides with it, the access log names it.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace creatord::auth {

// What a credential may do. `admin` implies every other scope.
enum Scope : uint8_t {
  kRead = 1,      // read creators, images, jobs (with private fields), queues, metrics
  kWrite = 2,     // create, change and delete creators and images
  kGenerate = 4,  // enqueue, cancel and retry jobs
  kEmail = 8,     // send and read emails, see email jobs
  kAdmin = 16,    // queues, schedules, any creator
};
using Scopes = uint8_t;
inline constexpr Scopes kAllScopes = kRead | kWrite | kGenerate | kEmail | kAdmin;

// "read,write" -> kRead | kWrite; "all" is every scope. Errors name the unknown scope.
Result<Scopes> parse_scopes(std::string_view list);
// As stored: what parse_scopes makes of it, nothing when it is not a valid list.
Scopes stored_scopes(std::string_view list);
// kRead | kWrite -> "read,write" (admin alone when admin is set: it implies the rest).
std::string scopes_text(Scopes scopes);
// "read" -> kRead; nullopt for anything else.
std::optional<Scope> parse_scope(std::string_view name);
std::string_view scope_name(Scope scope);

struct Principal {
  enum class Kind : uint8_t { anonymous, token, key, user };
  Kind kind = Kind::anonymous;
  // token: a hash prefix of the shared token; key: the key's id; user: the JWT subject.
  std::string id;
  Scopes scopes = 0;
  // Reads see only public fields: no email addresses, no job outputs, logs or errors, no email
  // jobs (anonymous callers and signed-in users reading what is not theirs).
  bool public_only = true;

  bool has(Scope s) const { return (scopes & kAdmin) || (scopes & s); }
  bool authenticated() const { return kind != Kind::anonymous; }
  // "anonymous", "token:1a2b3c4d5e6f7a8b", "key:7", "user:<sub>": stable, never a credential.
  // What quotas and idempotency keys are counted by, and what the access log shows.
  std::string name() const;
};

}  // namespace creatord::auth
