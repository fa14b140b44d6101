// The Prometheus text exposition format (version 0.0.4), written by hand: no C++ client library
// is packaged for Debian 12, and what we need is small. Pure: unit-tested, checked by promtool.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace creatord::metrics {

using Labels = std::vector<std::pair<std::string_view, std::string_view>>;

// Histogram bucket upper bounds, in seconds, ascending; +Inf is implied.
using Bounds = std::vector<double>;

// A histogram's state as read: one count per bound plus +Inf (not cumulative), and the sum.
struct HistogramSnapshot {
  std::vector<uint64_t> counts;
  double sum = 0;
};

class Exposition {
 public:
  // `# HELP` and `# TYPE` once per family, before its samples. type: counter, gauge, histogram.
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, const Labels& labels, double value);
  void sample(std::string_view name, const Labels& labels, uint64_t value);
  // name_bucket{...,le="..."} (cumulative), name_sum, name_count.
  void histogram(std::string_view name, const Labels& labels, const Bounds& bounds, const HistogramSnapshot& h);

  // Text written by another Exposition (a family whose samples were gathered apart).
  void raw(std::string_view text) { out_ += text; }

  const std::string& text() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  void series(std::string_view name, const Labels& labels, std::string_view extra_name = {},
              std::string_view extra_value = {});
  std::string out_;
};

// A label value with `\`, `"` and newlines escaped.
std::string escape_label_value(std::string_view v);
// A number as Prometheus reads it: integers without a fraction, +Inf, NaN.
std::string format_value(double v);

}  // namespace creatord::metrics
