// Errors travel as values on the request path (no exceptions): Result<T> holds a T or an Error.
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace creatord {

enum class ErrorCode {
  bad_request,        // 400: malformed input (JSON syntax, bad query parameter)
  unauthorized,       // 401
  forbidden,          // 403
  not_found,          // 404
  method_not_allowed, // 405
  conflict,           // 409
  payload_too_large,  // 413
  unsupported_media,  // 415
  validation,         // 422: well-formed but invalid (field named)
  idempotency_key_reused,  // 422: an Idempotency-Key replayed with a different request
  too_many_requests,  // 429
  internal,           // 500
  unavailable,        // 503: overload or a dependency is down
  insufficient_storage,  // 507: the disk (or a quota) is full
};

struct Error {
  ErrorCode code = ErrorCode::internal;
  std::string message;
  std::optional<std::string> field;

  static Error make(ErrorCode c, std::string msg, std::optional<std::string> field = {}) {
    return Error{c, std::move(msg), std::move(field)};
  }
};

struct Unit {};

template <class T>
class [[nodiscard]] Result {
 public:
  // An error until assigned (asio's co_spawn needs a default value for its exception path).
  Result() : v_(std::in_place_index<1>, Error{ErrorCode::internal, "no result", std::nullopt}) {}
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const T& value() const& { return std::get<0>(v_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const Error& error() const { return std::get<1>(v_); }
  Error&& take_error() { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

using Status = Result<Unit>;
inline Status ok_status() { return Unit{}; }

}  // namespace creatord
