#include "api/errors.hpp"

#include <unordered_set>

#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>

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
    case ErrorCode::insufficient_storage: return 507;
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
    case ErrorCode::insufficient_storage: return "insufficient_storage";
  }
  return "internal";
}

http::Response error_response(const Error& e) {
  boost::json::object inner;
  inner["code"] = code_name(e.code);
  // Internal details stay in the log; the client gets a stable message.
  bool inside = e.code == ErrorCode::internal || e.code == ErrorCode::insufficient_storage;
  if (e.code == ErrorCode::internal) inner["message"] = "internal error";
  else if (e.code == ErrorCode::insufficient_storage) inner["message"] = "insufficient storage: the server cannot store this now";
  else inner["message"] = e.message;
  if (e.field) inner["field"] = *e.field;
  else inner["field"] = nullptr;
  boost::json::object outer;
  outer["error"] = std::move(inner);
  auto r = http::Response::json(status_for(e.code), outer);
  if (e.code == ErrorCode::unavailable) r.set_header("Retry-After", "1");
  if (inside) r.log_cause = e.message.empty() ? std::string(code_name(e.code)) : e.message;
  return r;
}

http::Response error_response(ErrorCode code, std::string message, std::optional<std::string> field) {
  return error_response(Error{code, std::move(message), std::move(field)});
}

namespace {

// Finds a key that appears twice in one object: boost::json keeps one of them silently, so what
// a proxy or another parser sees could differ from what we act on.
class DuplicateKeyFinder {
 public:
  using string_view = boost::json::string_view;
  using error_code = boost::system::error_code;
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);

  std::optional<std::string> duplicate;

  bool on_object_begin(error_code&) {
    keys_.emplace_back();
    return true;
  }
  bool on_object_end(std::size_t, error_code&) {
    keys_.pop_back();
    return true;
  }
  bool on_key_part(string_view s, std::size_t, error_code&) {
    key_.append(s.data(), s.size());
    return true;
  }
  bool on_key(string_view s, std::size_t, error_code& ec) {
    key_.append(s.data(), s.size());
    if (!keys_.back().insert(key_).second) {
      duplicate = std::move(key_);
      ec = boost::json::error::syntax;  // stop here
      return false;
    }
    key_.clear();
    return true;
  }
  bool on_document_begin(error_code&) { return true; }
  bool on_document_end(error_code&) { return true; }
  bool on_array_begin(error_code&) { return true; }
  bool on_array_end(std::size_t, error_code&) { return true; }
  bool on_string_part(string_view, std::size_t, error_code&) { return true; }
  bool on_string(string_view, std::size_t, error_code&) { return true; }
  bool on_number_part(string_view, error_code&) { return true; }
  bool on_int64(std::int64_t, string_view, error_code&) { return true; }
  bool on_uint64(std::uint64_t, string_view, error_code&) { return true; }
  bool on_double(double, string_view, error_code&) { return true; }
  bool on_bool(bool, error_code&) { return true; }
  bool on_null(error_code&) { return true; }
  bool on_comment_part(string_view, error_code&) { return true; }
  bool on_comment(string_view, error_code&) { return true; }

 private:
  std::vector<std::unordered_set<std::string>> keys_;  // one set per open object
  std::string key_;
};

std::optional<std::string> duplicate_key(std::string_view text, const boost::json::parse_options& opts) {
  boost::json::basic_parser<DuplicateKeyFinder> parser(opts);
  boost::system::error_code ec;
  parser.write_some(false, text.data(), text.size(), ec);
  return parser.handler().duplicate;
}

}  // namespace

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
  if (auto key = duplicate_key(req.body, opts))
    return Error::make(ErrorCode::bad_request, fmt::format("the JSON body has the key \"{:.100}\" twice in one object", *key));
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
  return sha256_hex(fmt::format("{}\n{}\n{}", target, req.principal.name(), key));
}

Result<int64_t> path_id(const http::Request& req, size_t index, std::string_view name) {
  if (index >= req.params.size()) return Error::make(ErrorCode::internal, "route has no such parameter");
  auto id = parse_id(req.params[index]);
  if (!id)
    return Error::make(ErrorCode::bad_request, fmt::format("{} must be a positive integer", name), std::string(name));
  return *id;
}

}  // namespace creatord::api
