#include "api/errors.hpp"

#include <boost/json.hpp>

#include "api/auth.hpp"
#include "core/ids.hpp"
#include "core/sha256.hpp"
#include "domain/paging.hpp"

namespace creatord::api {

int status_for(ErrorCode code) {
  switch (code) {
    case ErrorCode::bad_request: return 400;
    case ErrorCode::unauthorized: return 401;
    case ErrorCode::forbidden: return 403;
    case ErrorCode::not_found: return 404;
    case ErrorCode::method_not_allowed: return 405;
    case ErrorCode::conflict: return 409;
    case ErrorCode::payload_too_large: return 413;
    case ErrorCode::unsupported_media: return 415;
    case ErrorCode::validation: return 422;
    case ErrorCode::idempotency_key_reused: return 422;
    case ErrorCode::too_many_requests: return 429;
    case ErrorCode::internal: return 500;
    case ErrorCode::unavailable: return 503;
  }
  return 500;
}

std::string_view code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::bad_request: return "bad_request";
    case ErrorCode::unauthorized: return "unauthorized";
    case ErrorCode::forbidden: return "forbidden";
    case ErrorCode::not_found: return "not_found";
    case ErrorCode::method_not_allowed: return "method_not_allowed";
    case ErrorCode::conflict: return "conflict";
    case ErrorCode::payload_too_large: return "payload_too_large";
    case ErrorCode::unsupported_media: return "unsupported_media_type";
    case ErrorCode::validation: return "validation_failed";
    case ErrorCode::idempotency_key_reused: return "idempotency_key_reused";
    case ErrorCode::too_many_requests: return "too_many_requests";
    case ErrorCode::internal: return "internal";
    case ErrorCode::unavailable: return "unavailable";
  }
  return "internal";
}

http::Response error_response(const Error& e) {
  boost::json::object inner;
  inner["code"] = code_name(e.code);
  // Internal details stay in the log; the client gets a stable message.
  inner["message"] = e.code == ErrorCode::internal ? "internal error" : e.message;
  if (e.field) inner["field"] = *e.field;
  else inner["field"] = nullptr;
  boost::json::object outer;
  outer["error"] = std::move(inner);
  auto r = http::Response::json(status_for(e.code), outer);
  if (e.code == ErrorCode::unavailable) r.set_header("Retry-After", "1");
  return r;
}

http::Response error_response(ErrorCode code, std::string message, std::optional<std::string> field) {
  return error_response(Error{code, std::move(message), std::move(field)});
}

Result<boost::json::value> parse_json_body(const http::Request& req) {
  std::string_view ct = req.header("Content-Type");
  std::string_view media = ct.substr(0, ct.find(';'));
  while (!media.empty() && media.back() == ' ') media.remove_suffix(1);
  if (!http::iequals(media, "application/json"))
    return Error::make(ErrorCode::unsupported_media, "Content-Type must be application/json");
  if (req.body.empty()) return Error::make(ErrorCode::bad_request, "the request body is empty; send a JSON object");
  boost::system::error_code ec;
  boost::json::parse_options opts;
  opts.max_depth = 32;
  auto v = boost::json::parse(req.body, ec, {}, opts);
  if (ec) return Error::make(ErrorCode::bad_request, "malformed JSON: " + ec.message());
  return v;
}

Result<std::optional<std::string>> idempotency_key(const http::Request& req) {
  if (!req.has_header("Idempotency-Key")) return std::optional<std::string>{};
  std::string_view k = req.header("Idempotency-Key");
  if (!is_acceptable_request_id(k))
    return Error::make(ErrorCode::bad_request, "Idempotency-Key must be 1 to 128 visible ASCII characters",
                       "Idempotency-Key");
  return std::optional<std::string>{std::string(k)};
}

std::string scoped_key(const http::Request& req, std::string_view target, std::string_view key) {
  std::string principal = req.has_header("Authorization") ? Auth::principal(req.header("Authorization")) : "";
  return sha256_hex(fmt::format("{}\n{}\n{}", target, principal, key));
}

Result<int64_t> path_id(const http::Request& req, size_t index, std::string_view name) {
  if (index >= req.params.size()) return Error::make(ErrorCode::internal, "route has no such parameter");
  auto id = parse_id(req.params[index]);
  if (!id)
    return Error::make(ErrorCode::bad_request, fmt::format("{} must be a positive integer", name), std::string(name));
  return *id;
}

}  // namespace creatord::api
