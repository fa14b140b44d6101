#include "metrics/http_metrics.hpp"

#include <algorithm>

#include "metrics/histogram.hpp"

namespace creatord::metrics {

namespace {

constexpr size_t kShards = 16;
constexpr size_t kMethods = 8;        // http::Method's values
constexpr size_t kStatusClasses = 5;  // 1xx .. 5xx
constexpr const char* kClassNames[kStatusClasses] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

// The shard of the calling thread: I/O threads are few and long-lived, so each gets its own.
size_t thread_shard() {
  static std::atomic<size_t> next{0};
  thread_local size_t mine = next.fetch_add(1, std::memory_order_relaxed) % kShards;
  return mine;
}

size_t status_class(int status) { return static_cast<size_t>(std::clamp(status / 100, 1, 5) - 1); }

}  // namespace

// Per (route, method) cell: a count per status class, then the latency histogram's buckets and
// its sum in nanoseconds.
struct alignas(64) HttpMetrics::Shard {
  explicit Shard(size_t cells) : values(cells * kCellSize) {}
  static size_t bucket_count() { return latency_bounds().size() + 1; }
  static inline const size_t kCellSize = kStatusClasses + latency_bounds().size() + 1 + 1;
  std::vector<std::atomic<uint64_t>> values;
  std::atomic<int64_t> in_flight{0}, connections{0}, streams{0};
  std::atomic<uint64_t> rejected{0}, unavailable{0};
};

HttpMetrics::HttpMetrics(std::vector<std::string> routes) : routes_(std::move(routes)) {
  for (size_t i = 0; i < kShards; ++i) shards_.push_back(std::make_unique<Shard>((routes_.size() + 1) * kMethods));
}

HttpMetrics::~HttpMetrics() = default;

HttpMetrics::Shard& HttpMetrics::shard() const { return *shards_[thread_shard()]; }

size_t HttpMetrics::cell(int route, http::Method method) const {
  size_t r = route >= 0 && static_cast<size_t>(route) < routes_.size() ? static_cast<size_t>(route) : routes_.size();
  return (r * kMethods + static_cast<size_t>(method)) * Shard::kCellSize;
}

void HttpMetrics::connection_opened() { shard().connections.fetch_add(1, std::memory_order_relaxed); }
void HttpMetrics::connection_closed() { shard().connections.fetch_sub(1, std::memory_order_relaxed); }
void HttpMetrics::connection_rejected() { shard().rejected.fetch_add(1, std::memory_order_relaxed); }
void HttpMetrics::request_started() { shard().in_flight.fetch_add(1, std::memory_order_relaxed); }
void HttpMetrics::request_ended() { shard().in_flight.fetch_sub(1, std::memory_order_relaxed); }
void HttpMetrics::stream_opened() { shard().streams.fetch_add(1, std::memory_order_relaxed); }
void HttpMetrics::stream_closed() { shard().streams.fetch_sub(1, std::memory_order_relaxed); }

void HttpMetrics::request_answered(int route, http::Method method, int status, std::chrono::nanoseconds took) {
  Shard& s = shard();
  size_t base = cell(route, method);
  s.values[base + status_class(status)].fetch_add(1, std::memory_order_relaxed);
  s.values[base + kStatusClasses + bucket_of(latency_bounds(), took)].fetch_add(1, std::memory_order_relaxed);
  s.values[base + kStatusClasses + Shard::bucket_count()].fetch_add(static_cast<uint64_t>(std::max<int64_t>(0, took.count())),
                                                                     std::memory_order_relaxed);
  if (status == 503) s.unavailable.fetch_add(1, std::memory_order_relaxed);
}

void HttpMetrics::write(Exposition& out) const {
  write_requests(out);
  write_gauges(out);
}

void HttpMetrics::write_requests(Exposition& out) const {
  const size_t cells = (routes_.size() + 1) * kMethods;
  std::vector<uint64_t> sum(cells * Shard::kCellSize, 0);
  for (const auto& s : shards_)
    for (size_t i = 0; i < sum.size(); ++i) sum[i] += s->values[i].load(std::memory_order_relaxed);
  out.family("creatord_http_requests_total", "counter", "HTTP requests answered, by route template, method and status class.");
  Exposition histograms;
  histograms.family("creatord_http_request_duration_seconds", "histogram",
                    "Time from the end of the request headers to the response (to the first byte of an event stream).");
  for (size_t c = 0; c < cells; ++c) {
    const uint64_t* v = &sum[c * Shard::kCellSize];
    HistogramSnapshot h{std::vector<uint64_t>(v + kStatusClasses, v + kStatusClasses + Shard::bucket_count()),
                        static_cast<double>(v[kStatusClasses + Shard::bucket_count()]) / 1e9};
    uint64_t total = 0;
    for (uint64_t n : h.counts) total += n;
    if (total == 0) continue;
    size_t r = c / kMethods;
    std::string_view route = r < routes_.size() ? std::string_view(routes_[r]) : "unmatched";
    std::string_view method = http::method_name(static_cast<http::Method>(c % kMethods));
    for (size_t k = 0; k < kStatusClasses; ++k)
      if (v[k]) out.sample("creatord_http_requests_total", {{"route", route}, {"method", method}, {"status", kClassNames[k]}}, v[k]);
    histograms.histogram("creatord_http_request_duration_seconds", {{"route", route}, {"method", method}}, latency_bounds(), h);
  }
  out.raw(histograms.text());
}

void HttpMetrics::write_gauges(Exposition& out) const {
  int64_t in_flight = 0, connections = 0, streams = 0;
  uint64_t rejected = 0, unavailable = 0;
  for (const auto& s : shards_) {
    in_flight += s->in_flight.load(std::memory_order_relaxed);
    connections += s->connections.load(std::memory_order_relaxed);
    streams += s->streams.load(std::memory_order_relaxed);
    rejected += s->rejected.load(std::memory_order_relaxed);
    unavailable += s->unavailable.load(std::memory_order_relaxed);
  }
  out.family("creatord_http_requests_in_flight", "gauge", "Requests between their headers and their response.");
  out.sample("creatord_http_requests_in_flight", {}, static_cast<double>(in_flight));
  out.family("creatord_http_connections_open", "gauge", "Open client connections.");
  out.sample("creatord_http_connections_open", {}, static_cast<double>(connections));
  out.family("creatord_http_connections_rejected_total", "counter", "Connections refused with 503 over the connection caps.");
  out.sample("creatord_http_connections_rejected_total", {}, rejected);
  out.family("creatord_http_unavailable_responses_total", "counter", "Requests answered 503 (overload or a dependency down).");
  out.sample("creatord_http_unavailable_responses_total", {}, unavailable);
  out.family("creatord_sse_streams_open", "gauge", "Server-Sent Event streams being served.");
  out.sample("creatord_sse_streams_open", {}, static_cast<double>(streams));
}

}  // namespace creatord::metrics
