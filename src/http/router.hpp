// Maps (method, path) to a handler. Patterns are literal segments and {name} parameters,
// e.g. "/api/creators/{id}/images". Knows nothing of sockets. Paths are matched as received:
// split on '/' first, then each segment percent-decoded, so "%2F" never makes a new segment.
#pragma once
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "http/message.hpp"

namespace creatord::http {

using Handler = std::function<boost::asio::awaitable<Response>(Request&)>;

struct RouteOptions {
  size_t body_limit = 0;        // 0: the router's default
  bool token_required = false;  // a credential even to read; 403 when none is configured
  // The scope a caller needs (auth/principal.hpp): "read", "write", "generate", "email",
  // "admin", or "public" for none. Empty: read for GET, write for every other method.
  std::string scope;
  // A signed-in user without the scope still reaches the handler, which allows what the user
  // owns (their creator) and refuses the rest.
  bool owner_may = false;
  // The query parameters the route reads; a request naming any other gets 400 (see
  // unknown_query_param).
  std::vector<std::string> query;
};

class Router {
 public:
  explicit Router(size_t default_body_limit = 1 << 20) : default_body_limit_(default_body_limit) {}

  void add(Method method, std::string_view pattern, Handler handler, RouteOptions options = {});

  // A registered route as declared: what the OpenAPI document is checked against, and what
  // metrics label requests with (by its index, Match::route).
  struct RouteInfo {
    Method method;
    std::string pattern;  // "/api/creators/{id}"
    size_t body_limit;
    bool token_required;
    std::vector<std::string> query;
    std::string scope;  // as resolved: never empty
    bool owner_may;
  };
  std::vector<RouteInfo> routes() const;
  size_t size() const { return routes_.size(); }

  enum class Outcome { found, not_found, method_not_allowed };
  struct Match {
    Outcome outcome = Outcome::not_found;
    const Handler* handler = nullptr;
    std::vector<std::string> params;
    std::string allow;  // for 405 and OPTIONS: "GET, HEAD, POST"
    const std::vector<std::string>* query = nullptr;  // found: the route's query parameters
    size_t body_limit = 0;  // the matched route's, else the router's default
    bool token_required = false;
    std::string_view scope;  // found: the route's
    bool owner_may = false;
    int route = -1;  // found: the route's index in routes()
  };
  // HEAD matches a GET route. `path` is the raw path (percent-escapes intact, no query).
  Match match(Method method, std::string_view path) const;

 private:
  struct Route {
    Method method;
    std::string pattern;
    std::vector<std::string> segments;
    Handler handler;
    size_t body_limit;
    bool token_required;
    std::vector<std::string> query;
    std::string scope;
    bool owner_may;
  };
  // The decoded segments of a raw path; nullopt when an escape is bad.
  static std::optional<std::vector<std::string>> split(std::string_view path);
  static bool matches(const Route& r, const std::vector<std::string>& segs, std::vector<std::string>* params);

  size_t default_body_limit_;
  std::vector<Route> routes_;
};

}  // namespace creatord::http
