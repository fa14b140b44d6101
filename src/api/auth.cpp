#include "api/auth.hpp"

#include <algorithm>

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
}  // namespace

bool Auth::check(std::string_view authorization) const {
  if (authorization.size() <= kBearer.size() || !http::iequals(authorization.substr(0, kBearer.size()), kBearer))
    return false;
  std::string_view token = authorization.substr(kBearer.size());
  bool ok = false;
  auto tokens = tokens_.load();
  for (const auto& t : *tokens) ok |= constant_time_equals(token, t);
  return ok;
}

std::string Auth::principal(std::string_view authorization) {
  std::string_view token = authorization.size() > kBearer.size() ? authorization.substr(kBearer.size()) : authorization;
  return sha256_hex(token).substr(0, 16);
}

}  // namespace creatord::api
