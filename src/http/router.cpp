#include "http/router.hpp"

namespace creatord::http {

std::optional<std::vector<std::string>> Router::split(std::string_view path) {
  std::vector<std::string> out;
  if (path.size() > 1 && path.back() == '/') path.remove_suffix(1);  // "/a/" is "/a"
  size_t i = 1;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i || i < path.size()) {
      auto seg = percent_decode(path.substr(i, j - i), false);
      if (!seg) return std::nullopt;
      out.push_back(std::move(*seg));
    }
    i = j + 1;
  }
  return out;
}

void Router::add(Method method, std::string_view pattern, Handler handler, RouteOptions options) {
  Route r{method, std::string(pattern), {}, std::move(handler), options.body_limit ? options.body_limit : default_body_limit_,
          options.token_required, std::move(options.query), std::move(options.scope), options.owner_may};
  if (r.scope.empty()) r.scope = method == Method::get ? "read" : "write";
  for (auto& s : split(pattern).value_or(std::vector<std::string>{})) r.segments.push_back(std::move(s));
  routes_.push_back(std::move(r));
}

std::vector<Router::RouteInfo> Router::routes() const {
  std::vector<RouteInfo> out;
  out.reserve(routes_.size());
  for (const auto& r : routes_) out.push_back(RouteInfo{r.method, r.pattern, r.body_limit, r.token_required, r.query, r.scope, r.owner_may});
  return out;
}

bool Router::matches(const Route& r, const std::vector<std::string>& segs, std::vector<std::string>* params) {
  if (r.segments.size() != segs.size()) return false;
  for (size_t i = 0; i < segs.size(); ++i) {
    const auto& p = r.segments[i];
    bool is_param = p.size() > 2 && p.front() == '{' && p.back() == '}';
    if (is_param) {
      if (segs[i].empty()) return false;
    } else if (p != segs[i]) {
      return false;
    }
  }
  if (params) {
    params->clear();
    for (size_t i = 0; i < segs.size(); ++i) {
      const auto& p = r.segments[i];
      if (p.size() > 2 && p.front() == '{') params->emplace_back(segs[i]);
    }
  }
  return true;
}

Router::Match Router::match(Method method, std::string_view path) const {
  Match m;
  m.body_limit = default_body_limit_;
  auto split_path = split(path);
  if (!split_path) return m;
  const auto& segs = *split_path;
  Method want = method == Method::head ? Method::get : method;
  std::vector<Method> allowed;
  for (size_t i = 0; i < routes_.size(); ++i) {
    const auto& r = routes_[i];
    if (!matches(r, segs, nullptr)) continue;
    allowed.push_back(r.method);
    if (r.method == want && m.outcome != Outcome::found) {
      m.outcome = Outcome::found;
      m.handler = &r.handler;
      m.query = &r.query;
      m.body_limit = r.body_limit;
      m.token_required = r.token_required;
      m.scope = r.scope;
      m.owner_may = r.owner_may;
      m.route = static_cast<int>(i);
      matches(r, segs, &m.params);
    }
  }
  if (allowed.empty()) return m;
  std::string allow;
  auto append = [&](std::string_view name) {
    if (!allow.empty()) allow += ", ";
    allow += name;
  };
  for (Method am : allowed) {
    append(method_name(am));
    if (am == Method::get) append("HEAD");
  }
  append("OPTIONS");
  m.allow = std::move(allow);
  if (m.outcome != Outcome::found && method != Method::options) m.outcome = Outcome::method_not_allowed;
  return m;
}

}  // namespace creatord::http
