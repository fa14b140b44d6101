// One error shape for the whole API: {"error": {"code": "...", "message": "...", "field": ...}}
#pragma once
#include <cstdint>
#include <string_view>

#include <boost/json/value.hpp>

#include "core/result.hpp"
#include "http/message.hpp"

namespace creatord::api {

int status_for(ErrorCode code);
std::string_view code_name(ErrorCode code);
http::Response error_response(const Error& e);
http::Response error_response(ErrorCode code, std::string message, std::optional<std::string> field = {});

// The body as JSON: 415 unless Content-Type is application/json, 400 for malformed JSON or
// invalid UTF-8.
Result<boost::json::value> parse_json_body(const http::Request& req);
// The Idempotency-Key header: nullopt when absent, 400 when it is not 1..128 visible ASCII.
Result<std::optional<std::string>> idempotency_key(const http::Request& req);
// An Idempotency-Key as stored: scoped to what the request acts on (`target`, e.g.
// "generate:creator:7") and to the caller (its principal), so the same key on another route,
// target or caller is another key (Stripe's semantics).
std::string scoped_key(const http::Request& req, std::string_view target, std::string_view key);
// The path parameter at index as a resource id: 400 naming the parameter otherwise.
Result<int64_t> path_id(const http::Request& req, size_t index, std::string_view name);

}  // namespace creatord::api
