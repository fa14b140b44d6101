// The step template renderer: a template (text, URL, or a JSON document of templates) and a
// context (the job's params and earlier outputs), split at the first NUL byte.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "jobs/template.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto nul = in.find('\0');
  std::string_view tmpl = in.substr(0, nul);
  boost::json::value context = boost::json::object{{"params", boost::json::object{{"name", "Ada"}, {"n", 3}}}};
  if (nul != std::string_view::npos) {
    boost::system::error_code ec;
    boost::json::parse_options opts;
    opts.max_depth = 32;
    auto parsed = boost::json::parse(in.substr(nul + 1), ec, {}, opts);
    if (!ec) context = std::move(parsed);
  }
  (void)creatord::render_string(tmpl, context);
  if (creatord::check_url_template(tmpl)) (void)creatord::render_url(tmpl, context);
  // The same text as a JSON template document, when it is one.
  boost::system::error_code ec;
  boost::json::parse_options opts;
  opts.max_depth = 32;
  auto doc = boost::json::parse(tmpl, ec, {}, opts);
  if (!ec && creatord::check_template(doc)) {
    (void)creatord::render_template(doc, context);
    std::vector<std::string> names;
    creatord::params_used(doc, names);
  }
  return 0;
}
