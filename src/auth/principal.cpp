#include "auth/principal.hpp"

#include <array>

#include <fmt/format.h>

namespace creatord::auth {

namespace {
constexpr std::array<std::pair<Scope, std::string_view>, 5> kNames = {
    {{kRead, "read"}, {kWrite, "write"}, {kGenerate, "generate"}, {kEmail, "email"}, {kAdmin, "admin"}}};
}

std::optional<Scope> parse_scope(std::string_view name) {
  for (const auto& [s, n] : kNames)
    if (n == name) return s;
  return std::nullopt;
}

std::string_view scope_name(Scope scope) {
  for (const auto& [s, n] : kNames)
    if (s == scope) return n;
  return "unknown";
}

Result<Scopes> parse_scopes(std::string_view list) {
  Scopes out = 0;
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.empty()) continue;
    if (item == "all") {
      out |= kAllScopes;
      continue;
    }
    auto s = parse_scope(item);
    if (!s)
      return Error::make(ErrorCode::validation,
                         fmt::format("unknown scope '{}'; scopes are read, write, generate, email, admin (or all)", item),
                         "scopes");
    out |= *s;
  }
  if (!out) return Error::make(ErrorCode::validation, "give at least one scope: read, write, generate, email, admin", "scopes");
  return out;
}

Scopes stored_scopes(std::string_view list) {
  auto s = parse_scopes(list);
  return s ? s.value() : Scopes{0};
}

std::string scopes_text(Scopes scopes) {
  if (scopes & kAdmin) return "admin";
  std::string out;
  for (const auto& [s, n] : kNames)
    if (scopes & s) {
      if (!out.empty()) out += ',';
      out += n;
    }
  return out;
}

std::string Principal::name() const {
  switch (kind) {
    case Kind::anonymous: return "anonymous";
    case Kind::token: return "token:" + id;
    case Kind::key: return "key:" + id;
    case Kind::user: return "user:" + id;
  }
  return "anonymous";
}

}  // namespace creatord::auth
