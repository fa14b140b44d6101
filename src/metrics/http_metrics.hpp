// The HTTP server's figures, recorded as it works: requests by route template, method and
// status class, their latency, requests in flight, connections, 503s and open event streams.
// Recording touches only the calling thread's shard (relaxed atomics, no lock); a scrape adds
// the shards up.
#pragma once
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "http/server.hpp"
#include "metrics/exposition.hpp"

namespace creatord::metrics {

class HttpMetrics final : public http::ServerObserver {
 public:
  // routes: each route's template, by its index in the router (http::Router::routes()).
  explicit HttpMetrics(std::vector<std::string> routes);
  ~HttpMetrics() override;

  void connection_opened() override;
  void connection_closed() override;
  void connection_rejected() override;
  void request_started() override;
  void request_ended() override;
  void request_answered(int route, http::Method method, int status, std::chrono::nanoseconds took) override;
  void stream_opened() override;
  void stream_closed() override;

  void write(Exposition& out) const;

 private:
  struct Shard;
  Shard& shard() const;
  size_t cell(int route, http::Method method) const;
  void write_requests(Exposition& out) const;
  void write_gauges(Exposition& out) const;

  std::vector<std::string> routes_;  // index routes_.size(): requests no route matched
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace creatord::metrics
