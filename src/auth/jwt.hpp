// JSON Web Tokens (RFC 7519) as bearer credentials: HS256 with a shared secret (Supabase's
// legacy JWT secret), RS256 and ES256 against public keys from a JWKS document. OpenSSL does
// the cryptography; this file decides what is accepted. Pure: no I/O, the caller gives the time.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

struct evp_pkey_st;  // OpenSSL's EVP_PKEY, kept out of this header

namespace creatord::auth {

struct JwtOptions {
  std::string hs256_secret;            // empty: HS256 tokens are refused
  std::string issuer;                  // empty: `iss` is not checked
  std::vector<std::string> audiences;  // empty: `aud` is not checked; else one must match
  int64_t leeway_s = 30;               // clock skew allowed on `exp` and `nbf`
};

// A public key of a JWKS document.
struct Jwk {
  std::string kid;
  std::string alg;  // "RS256" or "ES256": what the key verifies (from kty/crv when alg is absent)
  std::shared_ptr<evp_pkey_st> key;
};

// The usable keys of a JWKS document ({"keys": [...]}); keys of other types, curves, uses or
// algorithms, and RSA keys under 2048 bits, are left out. Errors only when it is not a JWKS.
Result<std::vector<Jwk>> parse_jwks(std::string_view json);

enum class JwtFailure {
  none,
  malformed,       // not three base64url parts of JSON
  bad_algorithm,   // alg none, HS256 without a secret, an algorithm not accepted, or the wrong key type
  unknown_key,     // RS256/ES256 naming a key (kid) that the key set does not have
  bad_signature,
  expired,
  not_yet_valid,
  wrong_issuer,
  wrong_audience,
  no_subject,
};

struct JwtVerdict {
  JwtFailure failure = JwtFailure::none;
  std::string reason;   // for the client: what was wrong (never the token)
  std::string subject;  // `sub`, when valid
  std::string kid;      // the header's kid (for unknown_key)
  bool ok() const { return failure == JwtFailure::none; }
};

// Checks the signature first, then exp/nbf (with leeway), iss, aud and sub.
JwtVerdict verify_jwt(std::string_view token, const JwtOptions& options, const std::vector<Jwk>& keys, int64_t now_s);

// Three dot-separated parts: worth verifying as a JWT rather than looking up as a key.
bool looks_like_jwt(std::string_view credential);

}  // namespace creatord::auth
