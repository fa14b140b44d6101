#include "auth/jwt.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>

#include <algorithm>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "auth/api_keys.hpp"

namespace creatord::auth {

namespace json = boost::json;

namespace {

using Pkey = std::shared_ptr<evp_pkey_st>;

std::shared_ptr<evp_pkey_st> own(EVP_PKEY* k) { return {k, EVP_PKEY_free}; }

struct BnDeleter {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
using Bn = std::unique_ptr<BIGNUM, BnDeleter>;
Bn bignum(std::string_view bytes) {
  return Bn(BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()), nullptr));
}

// A public key from OSSL_PARAMs built by `push`; null when OpenSSL rejects it.
template <class F>
Pkey key_from_params(const char* type, F push) {
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  if (!bld) return nullptr;
  Pkey out;
  if (push(bld)) {
    OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
    EVP_PKEY* pkey = nullptr;
    if (params && ctx && EVP_PKEY_fromdata_init(ctx) == 1 &&
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) == 1)
      out = own(pkey);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
  }
  OSSL_PARAM_BLD_free(bld);
  return out;
}

std::optional<std::string> b64_member(const json::object& o, const char* name) {
  auto* v = o.if_contains(name);
  if (!v || !v->is_string()) return std::nullopt;
  return base64url_decode(v->as_string());
}

std::string string_member(const json::object& o, const char* name) {
  auto* v = o.if_contains(name);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

Pkey rsa_key(const json::object& jwk) {
  auto n = b64_member(jwk, "n"), e = b64_member(jwk, "e");
  if (!n || !e || n->size() < 256) return nullptr;  // under 2048 bits: not accepted
  Bn bn_n = bignum(*n), bn_e = bignum(*e);
  if (!bn_n || !bn_e) return nullptr;
  return key_from_params("RSA", [&](OSSL_PARAM_BLD* b) {
    return OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_N, bn_n.get()) == 1 &&
           OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_E, bn_e.get()) == 1;
  });
}

Pkey p256_key(const json::object& jwk) {
  if (string_member(jwk, "crv") != "P-256") return nullptr;
  auto x = b64_member(jwk, "x"), y = b64_member(jwk, "y");
  if (!x || !y || x->size() != 32 || y->size() != 32) return nullptr;
  std::string point = "\x04" + *x + *y;  // uncompressed
  return key_from_params("EC", [&](OSSL_PARAM_BLD* b) {
    return OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) == 1 &&
           OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) == 1;
  });
}

std::optional<Jwk> usable_key(const json::object& o) {
  std::string use = string_member(o, "use");
  if (!use.empty() && use != "sig") return std::nullopt;
  std::string kty = string_member(o, "kty"), alg = string_member(o, "alg");
  Jwk k;
  k.kid = string_member(o, "kid");
  if (kty == "RSA" && (alg.empty() || alg == "RS256")) {
    k.alg = "RS256";
    k.key = rsa_key(o);
  } else if (kty == "EC" && (alg.empty() || alg == "ES256")) {
    k.alg = "ES256";
    k.key = p256_key(o);
  }
  if (!k.key) return std::nullopt;
  return k;
}

bool verify_signature(evp_pkey_st* key, std::string_view data, std::string_view sig) {
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  if (!md) return false;
  bool ok = EVP_DigestVerifyInit(md, nullptr, EVP_sha256(), nullptr, key) == 1 &&
            EVP_DigestVerify(md, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                             reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
  EVP_MD_CTX_free(md);
  return ok;
}

// JWS carries ECDSA signatures as r || s (32 bytes each); OpenSSL verifies DER.
std::optional<std::string> es256_der(std::string_view raw) {
  if (raw.size() != 64) return std::nullopt;
  ECDSA_SIG* sig = ECDSA_SIG_new();
  if (!sig) return std::nullopt;
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), 32, nullptr);
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + 32, 32, nullptr);
  std::optional<std::string> out;
  if (r && s && ECDSA_SIG_set0(sig, r, s) == 1) {
    r = s = nullptr;  // owned by sig now
    unsigned char* der = nullptr;
    int len = i2d_ECDSA_SIG(sig, &der);
    if (len > 0) out = std::string(reinterpret_cast<char*>(der), static_cast<size_t>(len));
    OPENSSL_free(der);
  }
  BN_free(r);
  BN_free(s);
  ECDSA_SIG_free(sig);
  return out;
}

bool hs256_matches(const std::string& secret, std::string_view data, std::string_view sig) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), reinterpret_cast<const unsigned char*>(data.data()),
            data.size(), mac, &len))
    return false;
  return sig.size() == len && CRYPTO_memcmp(mac, sig.data(), len) == 0;
}

JwtVerdict fail(JwtFailure f, std::string reason) { return JwtVerdict{f, std::move(reason), {}, {}}; }

std::optional<json::object> json_part(std::string_view b64) {
  auto bytes = base64url_decode(b64);
  if (!bytes) return std::nullopt;
  boost::system::error_code ec;
  json::value v = json::parse(*bytes, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.as_object());
}

// A NumericDate claim: nullopt when absent, an error flag when present but not a number.
std::optional<double> number_claim(const json::object& claims, const char* name, bool& bad) {
  auto* v = claims.if_contains(name);
  if (!v) return std::nullopt;
  if (v->is_int64()) return static_cast<double>(v->as_int64());
  if (v->is_uint64()) return static_cast<double>(v->as_uint64());
  if (v->is_double()) return v->as_double();
  bad = true;
  return std::nullopt;
}

bool audience_matches(const json::value* aud, const std::vector<std::string>& wanted) {
  if (!aud) return false;
  auto one = [&](const json::value& v) {
    return v.is_string() && std::find(wanted.begin(), wanted.end(), std::string_view(v.as_string())) != wanted.end();
  };
  if (aud->is_array()) return std::any_of(aud->as_array().begin(), aud->as_array().end(), one);
  return one(*aud);
}

JwtVerdict check_signature(const json::object& header, std::string_view signed_part, std::string_view sig,
                           const JwtOptions& options, const std::vector<Jwk>& keys) {
  std::string alg = string_member(header, "alg");
  std::string kid = string_member(header, "kid");
  if (alg == "HS256") {
    // Only the configured secret: never a public key's bytes (the HS/RS confusion attack).
    if (options.hs256_secret.empty()) return fail(JwtFailure::bad_algorithm, "HS256 tokens are not accepted here");
    if (!hs256_matches(options.hs256_secret, signed_part, sig)) return fail(JwtFailure::bad_signature, "bad token signature");
    return {};
  }
  if (alg != "RS256" && alg != "ES256")
    return fail(JwtFailure::bad_algorithm, fmt::format("token algorithm '{:.20}' is not accepted", alg));
  std::optional<std::string> der;
  if (alg == "ES256" && !(der = es256_der(sig))) return fail(JwtFailure::bad_signature, "bad token signature");
  bool found = false;
  for (const auto& k : keys) {
    if (!kid.empty() && k.kid != kid) continue;
    if (k.alg != alg) {
      if (!kid.empty()) return fail(JwtFailure::bad_algorithm, "the token's algorithm does not match its key");
      continue;
    }
    found = true;
    if (verify_signature(k.key.get(), signed_part, der ? *der : sig)) return {};
    if (!kid.empty()) break;
  }
  if (!found) {
    auto v = fail(JwtFailure::unknown_key, "the token's signing key is unknown");
    v.kid = kid;
    return v;
  }
  return fail(JwtFailure::bad_signature, "bad token signature");
}

JwtVerdict check_claims(const json::object& claims, const JwtOptions& options, int64_t now_s) {
  bool bad = false;
  auto exp = number_claim(claims, "exp", bad);
  auto nbf = number_claim(claims, "nbf", bad);
  if (bad) return fail(JwtFailure::malformed, "exp and nbf must be numbers");
  if (!exp) return fail(JwtFailure::expired, "the token has no expiry (exp)");
  if (static_cast<double>(now_s - options.leeway_s) >= *exp) return fail(JwtFailure::expired, "the token has expired");
  if (nbf && static_cast<double>(now_s + options.leeway_s) < *nbf)
    return fail(JwtFailure::not_yet_valid, "the token is not valid yet (nbf)");
  if (!options.issuer.empty() && string_member(claims, "iss") != options.issuer)
    return fail(JwtFailure::wrong_issuer, "the token's issuer (iss) is not accepted");
  if (!options.audiences.empty() && !audience_matches(claims.if_contains("aud"), options.audiences))
    return fail(JwtFailure::wrong_audience, "the token's audience (aud) is not accepted");
  std::string sub = string_member(claims, "sub");
  if (sub.empty() || sub.size() > 255) return fail(JwtFailure::no_subject, "the token has no subject (sub)");
  JwtVerdict ok;
  ok.subject = std::move(sub);
  return ok;
}

}  // namespace

Result<std::vector<Jwk>> parse_jwks(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object() || !v.as_object().contains("keys") || !v.at("keys").is_array())
    return Error::make(ErrorCode::bad_request, "not a JWKS document: expected {\"keys\": [...]}");
  std::vector<Jwk> out;
  for (const auto& k : v.at("keys").as_array())
    if (k.is_object())
      if (auto jwk = usable_key(k.as_object())) out.push_back(std::move(*jwk));
  return out;
}

bool looks_like_jwt(std::string_view credential) { return std::count(credential.begin(), credential.end(), '.') == 2; }

JwtVerdict verify_jwt(std::string_view token, const JwtOptions& options, const std::vector<Jwk>& keys, int64_t now_s) {
  size_t d1 = token.find('.');
  size_t d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos || token.size() > 16384)
    return fail(JwtFailure::malformed, "malformed token");
  auto header = json_part(token.substr(0, d1));
  auto claims = json_part(token.substr(d1 + 1, d2 - d1 - 1));
  auto sig = base64url_decode(token.substr(d2 + 1));
  if (!header || !claims || !sig) return fail(JwtFailure::malformed, "malformed token");
  JwtVerdict signed_ok = check_signature(*header, token.substr(0, d2), *sig, options, keys);
  if (!signed_ok.ok()) return signed_ok;
  return check_claims(*claims, options, now_s);
}

}  // namespace creatord::auth
