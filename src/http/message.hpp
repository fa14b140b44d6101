// The HTTP request and response as the API handlers see them. Deliberately free of Beast so
// handlers compile fast and can be unit-tested without a socket.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <functional>

#include <boost/asio/awaitable.hpp>
#include <boost/json/fwd.hpp>

#include "auth/principal.hpp"
#include "core/result.hpp"

namespace creatord::http {

enum class Method { get, head, post, put, patch, del, options, other };
Method parse_method(std::string_view m);
std::string_view method_name(Method m);
bool is_write(Method m);

struct Header {
  std::string_view name;
  std::string_view value;
};

// The client end of a request's connection, for a handler that waits long (`?wait=`): it
// learns when to stop waiting, because the client went away (nobody to answer) or the server is
// shutting down (answer now), instead of waiting for nobody or holding up the shutdown.
class ClientLink {
 public:
  virtual ~ClientLink() = default;
  virtual bool gone() const = 0;
  // The client went away or the server is shutting down.
  virtual bool stop_waiting() const = 0;
  // Runs fn once, on the connection's thread, when stop_waiting() becomes true (at once when it
  // is); starts watching the socket. Only while the handler runs.
  virtual void on_stop_waiting(std::function<void()> fn) = 0;
};

struct Request {
  Method method = Method::get;
  std::string_view method_text;  // as received ("PROPFIND" when method is other)
  std::string_view target;  // raw request target, as received
  std::string path;         // the path as received (escapes intact, routed per segment), no query
  std::string_view query;   // raw query string (after '?')
  std::vector<Header> headers;
  std::string body;
  std::vector<std::string> params;  // path parameters, in pattern order (set by the router)
  std::string request_id;
  std::string remote;
  int route = -1;  // the matched route's index (Admission::route), for metrics
  auth::Principal principal;  // who is calling (set by the app); the access log names it
  ClientLink* client = nullptr;  // set by the server while the handler runs; null in unit tests

  // Case-insensitive; empty when absent.
  std::string_view header(std::string_view name) const;
  bool has_header(std::string_view name) const;
  // Percent-decoded query parameter (first occurrence); nullopt when absent.
  std::optional<std::string> query_param(std::string_view name) const;
};

// The first query parameter (decoded) that is not in allowed; nullopt when all are known.
// Empty components ("a=1&&b=2", a trailing "&") are ignored.
std::optional<std::string> unknown_query_param(std::string_view query, const std::vector<std::string>& allowed);

// The server's side of a streamed response (Server-Sent Events). One write at a time, each
// awaited: a slow reader slows the writer, nothing piles up in memory.
class StreamWriter {
 public:
  virtual ~StreamWriter() = default;
  // False when the client went away or the write timed out.
  virtual boost::asio::awaitable<bool> write(std::string data) = 0;
  virtual bool closed() const = 0;
  // Called once, on the connection's thread, when the client goes away.
  virtual void on_close(std::function<void()> fn) = 0;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  bool close = false;  // close the connection after this response
  // What went wrong inside (a 500's or 507's cause): logged with the request id, never sent.
  std::string log_cause;
  // When set, the server sends the status and headers (no length), then runs this; the
  // connection closes when it returns.
  std::function<boost::asio::awaitable<void>(StreamWriter&)> stream;

  static Response json(int status, const boost::json::value& v);
  static Response empty(int status);
  void set_header(std::string name, std::string value);
};

// Splits "path?query". The path stays as received: decoding it before routing would turn "%2F"
// into a separator. Errors for bad escapes or invalid UTF-8 in either part.
Result<std::pair<std::string, std::string_view>> split_target(std::string_view target);
// Decodes %XX and '+' (as space). nullopt on a bad escape or invalid UTF-8.
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space);
bool is_valid_utf8(std::string_view s);
bool iequals(std::string_view a, std::string_view b);

}  // namespace creatord::http
