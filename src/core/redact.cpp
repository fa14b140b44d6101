#include "core/redact.hpp"

#include <algorithm>
#include <cctype>
#include <memory>
#include <mutex>
#include <vector>

#include <boost/json.hpp>

namespace creatord {

namespace {

using Secrets = std::vector<std::string>;

// Copy on write: readers hold the list they took (the lock only guards the pointer's copy);
// writers (start-up) replace it.
std::mutex g_mutex;
std::mutex g_write_mutex;  // one writer at a time: none loses another's secret
std::shared_ptr<const Secrets> g_secrets = std::make_shared<const Secrets>();

std::shared_ptr<const Secrets> current() {
  std::lock_guard lock(g_mutex);
  return g_secrets;
}

std::string percent_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
        c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    auto hex = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; };
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) && hex(s[i + 2])) {
      out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

bool is_authority_end(char c) {
  return c == '/' || c == '?' || c == '#' || c == ' ' || c == '"' || c == '\'' || c == '<' || c == '>' || c == '\n' ||
         c == '\r' || c == '\t';
}

// The [begin, end) of a URL's userinfo (before the last '@' of the authority) after "://" at pos.
std::pair<size_t, size_t> userinfo_at(std::string_view text, size_t pos) {
  size_t begin = pos + 3;
  size_t end = begin;
  while (end < text.size() && !is_authority_end(text[end])) ++end;
  size_t at = text.substr(begin, end - begin).rfind('@');
  if (at == std::string_view::npos || at == 0) return {begin, begin};
  return {begin, begin + at};
}

std::string replace_secrets(std::string_view text, const Secrets& secrets) {
  std::string out(text);
  for (const auto& s : secrets) {
    size_t pos = 0;
    while ((pos = out.find(s, pos)) != std::string::npos) {
      out.replace(pos, s.size(), kRedacted);
      pos += kRedacted.size();
    }
  }
  return out;
}

std::string replace_userinfo(const std::string& text) {
  std::string out;
  size_t copied = 0;
  for (size_t pos = text.find("://"); pos != std::string::npos; pos = text.find("://", pos + 3)) {
    auto [begin, end] = userinfo_at(text, pos);
    if (begin == end) continue;
    out.append(text, copied, begin - copied);
    out += kRedacted;
    copied = end;
    pos = end;
  }
  if (copied == 0) return text;
  out.append(text, copied, std::string::npos);
  return out;
}

}  // namespace

void add_secret(std::string_view secret) {
  if (secret.size() < kMinSecretLength) return;
  std::lock_guard write(g_write_mutex);
  auto next = std::make_shared<Secrets>(*current());
  for (std::string s : {std::string(secret), percent_encode(secret)})
    if (std::find(next->begin(), next->end(), s) == next->end()) next->push_back(std::move(s));
  // Longest first, so a secret that contains another is replaced whole.
  std::sort(next->begin(), next->end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  std::lock_guard lock(g_mutex);
  g_secrets = std::move(next);
}

void add_url_password_secret(std::string_view url) {
  size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return;
  auto [begin, end] = userinfo_at(url, scheme);
  std::string_view userinfo = url.substr(begin, end - begin);
  size_t colon = userinfo.find(':');
  if (colon == std::string_view::npos) return;
  add_secret(userinfo.substr(colon + 1));
  add_secret(percent_decode(userinfo.substr(colon + 1)));  // as the server and its errors see it
}

void clear_secrets() {
  std::lock_guard lock(g_mutex);
  g_secrets = std::make_shared<const Secrets>();
}

bool needs_redaction(std::string_view text) {
  for (size_t pos = text.find("://"); pos != std::string_view::npos; pos = text.find("://", pos + 3)) {
    auto [begin, end] = userinfo_at(text, pos);
    if (begin != end) return true;
  }
  auto secrets = current();
  return std::any_of(secrets->begin(), secrets->end(), [&](const std::string& s) { return text.find(s) != std::string_view::npos; });
}

std::string redact(std::string_view text) {
  if (!needs_redaction(text)) return std::string(text);
  return replace_userinfo(replace_secrets(text, *current()));
}

void redact_json(boost::json::value& value) {
  if (value.is_string()) {
    std::string_view s = value.as_string();
    if (needs_redaction(s)) value = redact(s);
  } else if (value.is_array()) {
    for (auto& v : value.as_array()) redact_json(v);
  } else if (value.is_object()) {
    for (auto& kv : value.as_object()) redact_json(kv.value());
  }
}

}  // namespace creatord
