// Bearer tokens: who may write, and who may use the email endpoints.
#pragma once
#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace creatord::api {

class Auth {
 public:
  explicit Auth(std::vector<std::string> tokens)
      : tokens_(std::make_shared<const std::vector<std::string>>(std::move(tokens))) {}
  bool enabled() const { return !tokens_.load()->empty(); }
  // Replaces the accepted tokens (SIGHUP); requests already checked keep their answer. Safe while
  // other threads check.
  void set_tokens(std::vector<std::string> tokens) {
    tokens_.store(std::make_shared<const std::vector<std::string>>(std::move(tokens)));
  }
  // The Authorization header carries one of the tokens ("Bearer <token>"); compared in
  // constant time.
  bool check(std::string_view authorization) const;
  // Whether the caller may read private fields: job outputs, results, logs and errors, and
  // email jobs. Without tokens (the loopback demo mode) everyone may; with tokens, only a caller
  // with a valid one. The one place that decides it: scoped keys replace it later.
  bool may_read_private(std::string_view authorization) const { return !enabled() || check(authorization); }
  // A stable, non-secret name for the caller's token (for rate limits and idempotency keys).
  static std::string principal(std::string_view authorization);

 private:
  std::atomic<std::shared_ptr<const std::vector<std::string>>> tokens_;
};

}  // namespace creatord::api
