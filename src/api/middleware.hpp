// The application as the server sees it: routing, 404/405, authentication of writes, CORS.
#pragma once
#include <string>
#include <vector>

#include "api/auth.hpp"
#include "http/router.hpp"
#include "http/server.hpp"

namespace creatord::api {

struct SecurityOptions {
  std::vector<std::string> api_tokens;    // empty: no authentication (loopback only)
  std::vector<std::string> cors_origins;  // exact origins, or "*"
};

class ApiApp final : public http::App {
 public:
  ApiApp(http::Router router, SecurityOptions security);
  boost::asio::awaitable<http::Response> handle(http::Request& req) override;
  size_t body_limit(http::Method method, std::string_view path) const override;

  bool origin_allowed(std::string_view origin) const;
  const Auth& auth() const { return auth_; }

 private:
  void add_cors(const http::Request& req, http::Response& resp) const;

  http::Router router_;
  SecurityOptions security_;
  Auth auth_;
};

}  // namespace creatord::api
