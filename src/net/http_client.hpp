// Outgoing HTTP(S) with libcurl, for `http` steps. Blocking: run it on a BlockingPool.
#pragma once
#include <atomic>
#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "core/result.hpp"

namespace creatord {

struct HttpCall {
  std::string method = "GET";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds timeout{60'000};
  size_t max_response_bytes = 10u << 20;
  const std::atomic<bool>* cancel = nullptr;  // aborts the transfer when it becomes true
};

struct HttpReply {
  int status = 0;  // 0: no response (connection error, timeout)
  std::string body;
  std::string content_type;
  std::string retry_after;  // the Retry-After header, when present
  std::string error;        // what went wrong below HTTP
  bool too_large = false;
};

HttpReply http_call(const HttpCall& call);

}  // namespace creatord
