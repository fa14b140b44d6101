#include "jobs/template.hpp"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <optional>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "core/redact.hpp"

namespace creatord {
namespace json = boost::json;

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

bool valid_path(std::string_view p) {
  if (p.empty()) return false;
  for (char c : p)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-')) return false;
  return p.front() != '.' && p.back() != '.' && p.find("..") == std::string_view::npos;
}

Result<json::value> lookup(std::string_view path, const json::value& ctx) {
  const json::value* cur = &ctx;
  std::string_view rest = path;
  while (!rest.empty()) {
    size_t dot = rest.find('.');
    std::string_view part = rest.substr(0, dot);
    rest = dot == std::string_view::npos ? std::string_view{} : rest.substr(dot + 1);
    if (cur->is_object()) {
      auto it = cur->as_object().find(part);
      if (it == cur->as_object().end())
        return Error::make(ErrorCode::validation, fmt::format("template path {} names nothing ({} is missing)", path, part));
      cur = &it->value();
    } else if (cur->is_array()) {
      size_t idx = 0;
      auto [p, ec] = std::from_chars(part.data(), part.data() + part.size(), idx);
      if (ec != std::errc() || p != part.data() + part.size() || idx >= cur->as_array().size())
        return Error::make(ErrorCode::validation, fmt::format("template path {}: no element {}", path, part));
      cur = &cur->as_array()[idx];
    } else {
      return Error::make(ErrorCode::validation, fmt::format("template path {}: {} is not an object", path, part));
    }
  }
  return *cur;
}

// Splits "a {{ x }} b" into literal and path pieces; errors for unclosed or empty braces.
struct Piece {
  bool is_path;
  std::string_view text;
  bool raw = false;  // {{ x | raw }}: inserted into a URL without percent-encoding
};

// "path" or "path | raw"; nullopt for anything else.
std::optional<Piece> parse_placeholder(std::string_view inner) {
  Piece p{true, trim(inner)};
  if (size_t bar = inner.find('|'); bar != std::string_view::npos) {
    if (trim(inner.substr(bar + 1)) != "raw") return std::nullopt;
    p.text = trim(inner.substr(0, bar));
    p.raw = true;
  }
  if (!valid_path(p.text)) return std::nullopt;
  return p;
}

Result<std::vector<Piece>> split(std::string_view s) {
  std::vector<Piece> out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t open = s.find("{{", pos);
    if (open == std::string_view::npos) {
      out.push_back({false, s.substr(pos)});
      break;
    }
    if (open > pos) out.push_back({false, s.substr(pos, open - pos)});
    size_t close = s.find("}}", open + 2);
    if (close == std::string_view::npos)
      return Error::make(ErrorCode::validation, fmt::format("unclosed {{{{ in \"{}\"", s));
    std::string_view inner = s.substr(open + 2, close - open - 2);
    auto piece = parse_placeholder(inner);
    if (!piece)
      return Error::make(ErrorCode::validation,
                         fmt::format("bad template \"{}\" in \"{}\" (a path, optionally `| raw`)", trim(inner), s));
    out.push_back(*piece);
    pos = close + 2;
  }
  return out;
}

std::string as_text(const json::value& v) {
  return v.is_string() ? std::string(v.as_string()) : json::serialize(v);
}

// Everything but RFC 3986's unreserved characters is escaped, so a value stays one component.
std::string percent_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace

namespace {

// Renders text and values in turn; `place` appends a value's text (and may refuse it).
template <class Place>
Result<std::string> render_pieces(std::string_view tmpl, const json::value& ctx, Place place) {
  auto pieces = split(tmpl);
  if (!pieces) return pieces.take_error();
  std::string out;
  for (const auto& p : pieces.value()) {
    if (!p.is_path) {
      out += p.text;
      continue;
    }
    auto v = lookup(p.text, ctx);
    if (!v) return v.take_error();
    if (auto s = place(out, p, as_text(v.value())); !s) return s.take_error();
  }
  return out;
}

}  // namespace

Result<std::string> render_string(std::string_view tmpl, const json::value& ctx) {
  return render_pieces(tmpl, ctx, [](std::string& out, const auto&, const std::string& text) -> Status {
    out += text;
    return ok_status();
  });
}

Result<std::string> render_url(std::string_view tmpl, const json::value& ctx) {
  return render_pieces(tmpl, ctx, [](std::string& out, const auto& p, const std::string& text) -> Status {
    bool in_path = out.find_first_of("?#") == std::string::npos;
    if (!p.raw && in_path && (text == "." || text == ".."))
      return Error::make(ErrorCode::validation, fmt::format("template path {} is \"{}\" in a URL path", p.text, text));
    out += p.raw ? text : percent_encode(text);
    return ok_status();
  });
}

Status check_url_template(std::string_view tmpl) {
  auto pieces = split(tmpl);
  if (!pieces) return pieces.take_error();
  if (pieces->empty()) return ok_status();
  const auto& first = pieces->front();
  if (first.is_path && !first.raw)
    return Error::make(ErrorCode::validation,
                       fmt::format("a url that starts with a template takes a whole URL from it: write "
                                   "{{{{ {} | raw }}}}",
                                   first.text));
  return ok_status();
}

Result<json::value> render_template(const json::value& tmpl, const json::value& ctx) {
  if (tmpl.is_string()) {
    std::string_view s = tmpl.as_string();
    auto pieces = split(s);
    if (!pieces) return pieces.take_error();
    if (pieces->size() == 1 && pieces->front().is_path) return lookup(pieces->front().text, ctx);
    auto r = render_string(s, ctx);
    if (!r) return r.take_error();
    return json::value(r.value());
  }
  if (tmpl.is_array()) {
    json::array out;
    for (const auto& v : tmpl.as_array()) {
      auto r = render_template(v, ctx);
      if (!r) return r.take_error();
      out.push_back(std::move(r.value()));
    }
    return json::value(std::move(out));
  }
  if (tmpl.is_object()) {
    json::object out;
    for (const auto& kv : tmpl.as_object()) {
      auto r = render_template(kv.value(), ctx);
      if (!r) return r.take_error();
      out[kv.key()] = std::move(r.value());
    }
    return json::value(std::move(out));
  }
  return tmpl;
}

Result<std::string> expand_env(std::string_view text) {
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t open = text.find("${", pos);
    if (open == std::string_view::npos) {
      out += text.substr(pos);
      break;
    }
    out += text.substr(pos, open - pos);
    size_t close = text.find('}', open);
    if (close == std::string_view::npos) return Error::make(ErrorCode::validation, "unclosed ${ in a header or env value");
    std::string name(text.substr(open + 2, close - open - 2));
    const char* v = std::getenv(name.c_str());
    if (!v) return Error::make(ErrorCode::validation, "environment variable " + name + " is not set");
    out += v;
    pos = close + 1;
  }
  return out;
}

void add_env_secrets(std::string_view text) {
  for (size_t open = text.find("${"); open != std::string_view::npos; open = text.find("${", open + 2)) {
    size_t close = text.find('}', open);
    if (close == std::string_view::npos) return;
    std::string name(text.substr(open + 2, close - open - 2));
    if (const char* v = std::getenv(name.c_str())) add_secret(v);
  }
}

void params_used(const json::value& tmpl, std::vector<std::string>& names) {
  if (tmpl.is_array()) {
    for (const auto& v : tmpl.as_array()) params_used(v, names);
  } else if (tmpl.is_object()) {
    for (const auto& kv : tmpl.as_object()) params_used(kv.value(), names);
  } else if (tmpl.is_string()) {
    auto pieces = split(tmpl.as_string());
    if (!pieces) return;
    for (const auto& p : pieces.value()) {
      if (!p.is_path || p.text.rfind("params.", 0) != 0) continue;
      std::string_view rest = p.text.substr(7);
      std::string name(rest.substr(0, rest.find('.')));
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(std::move(name));
    }
  }
}

Status check_template(const json::value& tmpl) {
  if (tmpl.is_string()) {
    auto p = split(tmpl.as_string());
    if (!p) return p.take_error();
  } else if (tmpl.is_array()) {
    for (const auto& v : tmpl.as_array())
      if (auto s = check_template(v); !s) return s;
  } else if (tmpl.is_object()) {
    for (const auto& kv : tmpl.as_object())
      if (auto s = check_template(kv.value()); !s) return s;
  }
  return ok_status();
}

}  // namespace creatord
