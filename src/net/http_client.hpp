// Outgoing HTTP(S) with libcurl, for `http` steps. Blocking: run it on a BlockingPool.
#pragma once
#include <atomic>
#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "core/result.hpp"
#include "net/address_policy.hpp"

namespace creatord {

struct HttpCall {
  std::string method = "GET";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds timeout{60'000};  // the whole call; 0: no overall limit
  // A stalled or crawling transfer is abandoned: fewer than min_rate bytes per second over
  // stall_timeout (libcurl's low-speed limit). stall_timeout 0: not checked.
  size_t min_rate = 0;
  std::chrono::milliseconds stall_timeout{0};
  size_t max_response_bytes = 10u << 20;  // larger: too_large, and no body at all
  // Internal addresses this call may connect to (public ones always); every connection is
  // checked on the address it is about to use. Redirects are not followed.
  AddressPolicy allow_internal;
  const std::atomic<bool>* cancel = nullptr;  // aborts the transfer when it becomes true
};

struct HttpReply {
  int status = 0;  // 0: no response (connection error, timeout)
  std::string body;
  std::string content_type;
  std::string retry_after;  // the Retry-After header, when present
  std::string error;        // what went wrong below HTTP
  bool too_large = false;   // the answer was larger than max_response_bytes; body is empty
  bool timed_out = false;   // the overall timeout, or the transfer stalled
  bool refused = false;     // the target address is internal and not allowed: nothing was sent
  std::string refused_address;  // which one, for the log (never for clients)
};

// The limits of steps' outgoing calls that are the server's to set (options --step-*).
struct OutgoingLimits {
  std::chrono::milliseconds connect_timeout{10'000};
  // Image downloads (`url` entries of a step's images): no fixed time for the whole, which would
  // cut off a large image on a slow link, but a minimum rate and a generous overall cap.
  std::chrono::milliseconds download_timeout{900'000};
  std::chrono::milliseconds download_stall_timeout{30'000};
  size_t download_min_rate = 1024;  // bytes per second, averaged over download_stall_timeout
  AddressPolicy allow_internal;      // internal addresses every step may reach (--step-allow-internal)
};

HttpReply http_call(const HttpCall& call);

}  // namespace creatord
