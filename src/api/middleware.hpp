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
  http::Admission admit(const http::Request& req) const override;
  boost::asio::awaitable<http::Response> handle(http::Request& req) override;

  bool origin_allowed(std::string_view origin) const;
  const Auth& auth() const { return auth_; }
  void set_tokens(std::vector<std::string> tokens) { auth_.set_tokens(std::move(tokens)); }

 private:
  void add_cors(const http::Request& req, http::Response& resp) const;
  // 404, 405, 403 or 401 when the request will not reach its handler (OPTIONS aside).
  std::optional<http::Response> refusal(const http::Request& req, const http::Router::Match& match) const;
  http::Response options_response(const http::Request& req, const http::Router::Match& match) const;

  http::Router router_;
  SecurityOptions security_;
  Auth auth_;
};

}  // namespace creatord::api
