#include "domain/creator.hpp"

#include <boost/json.hpp>

#include <iterator>

#include <fmt/format.h>

#include "core/clock.hpp"
#include "core/json_text.hpp"

namespace creatord {
namespace {

Error invalid(std::string field, std::string message) {
  return Error::make(ErrorCode::validation, std::move(message), std::move(field));
}

bool has_control_chars(std::string_view s, bool allow_newlines) {
  for (unsigned char c : s) {
    if (c == 0x7f) return true;
    if (c < 0x20 && !(allow_newlines && (c == '\n' || c == '\r' || c == '\t'))) return true;
  }
  return false;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

Result<std::string> text_field(const boost::json::value& v, const std::string& field, size_t min_len,
                               size_t max_len, bool multiline) {
  if (!v.is_string()) return invalid(field, field + " must be a string");
  std::string_view s = v.get_string();
  if (!multiline) s = trim(s);
  size_t len = utf8_length(s);
  if (len < min_len) return invalid(field, field + " must not be empty");
  if (len > max_len) return invalid(field, fmt::format("{} must be at most {} characters", field, max_len));
  if (has_control_chars(s, multiline)) return invalid(field, field + " must not contain control characters");
  return std::string(s);
}

Result<std::string> handle_field(const boost::json::value& v) {
  if (!v.is_string()) return invalid("handle", "handle must be a string");
  std::string_view s = v.get_string();
  if (s.empty()) return invalid("handle", "handle must not be empty");
  if (s.size() > limits::kHandleMax)
    return invalid("handle", fmt::format("handle must be at most {} characters", limits::kHandleMax));
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && c != '_' && c != '-' && c != '.')
      return invalid("handle", "handle may contain only letters, digits, '_', '-' and '.'");
    out.push_back(static_cast<char>((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c));
  }
  if (!((out[0] >= 'a' && out[0] <= 'z') || (out[0] >= '0' && out[0] <= '9')))
    return invalid("handle", "handle must start with a letter or a digit");
  return out;
}

Result<std::vector<std::string>> tags_field(const boost::json::value& v) {
  if (!v.is_array()) return invalid("tags", "tags must be an array of strings");
  const auto& arr = v.get_array();
  if (arr.size() > limits::kTagsMax)
    return invalid("tags", fmt::format("at most {} tags are allowed", limits::kTagsMax));
  std::vector<std::string> tags;
  for (size_t i = 0; i < arr.size(); ++i) {
    std::string field = fmt::format("tags[{}]", i);
    auto t = text_field(arr[i], field, 1, limits::kTagMax, false);
    if (!t) return t.take_error();
    if (std::find(tags.begin(), tags.end(), t.value()) == tags.end()) tags.push_back(std::move(t.value()));
  }
  return tags;
}

}  // namespace

size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

bool is_valid_email(std::string_view e) {
  if (e.size() < 3 || e.size() > limits::kEmailMax) return false;
  auto at = e.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 >= e.size()) return false;
  std::string_view local = e.substr(0, at), domain = e.substr(at + 1);
  if (local.size() > 64) return false;
  for (unsigned char c : local) {
    if (c <= 0x20 || c >= 0x7f || c == '@' || c == '"' || c == '(' || c == ')' || c == ',' ||
        c == ':' || c == ';' || c == '<' || c == '>' || c == '[' || c == ']' || c == '\\')
      return false;
  }
  if (local.front() == '.' || local.back() == '.' || local.find("..") != std::string_view::npos) return false;
  if (domain.find('.') == std::string_view::npos || domain.front() == '.' || domain.back() == '.' ||
      domain.find("..") != std::string_view::npos)
    return false;
  for (unsigned char c : domain) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

Result<CreatorFields> parse_creator_fields(const boost::json::value& body, FieldsMode mode) {
  if (!body.is_object()) return Error::make(ErrorCode::validation, "the body must be a JSON object");
  CreatorFields f;
  for (const auto& kv : body.get_object()) {
    std::string key(kv.key());
    const auto& v = kv.value();
    if (key == "name") {
      auto r = text_field(v, key, 1, limits::kNameMax, false);
      if (!r) return r.take_error();
      f.name = std::move(r.value());
    } else if (key == "handle") {
      auto r = handle_field(v);
      if (!r) return r.take_error();
      f.handle = std::move(r.value());
    } else if (key == "email") {
      if (v.is_null()) {
        f.email = std::optional<std::string>{};
      } else {
        if (!v.is_string()) return invalid(key, "email must be a string or null");
        std::string_view e = trim(v.get_string());
        if (!is_valid_email(e)) return invalid(key, "email is not a valid address");
        f.email = std::optional<std::string>{std::string(e)};
      }
    } else if (key == "bio") {
      auto r = text_field(v, key, 0, limits::kBioMax, true);
      if (!r) return r.take_error();
      f.bio = std::move(r.value());
    } else if (key == "tags") {
      auto r = tags_field(v);
      if (!r) return r.take_error();
      f.tags = std::move(r.value());
    } else if (key == "external_id") {
      if (v.is_null()) {
        f.external_id = std::optional<std::string>{};
      } else {
        auto r = text_field(v, key, 1, limits::kExternalIdMax, false);
        if (!r) return r.take_error();
        f.external_id = std::optional<std::string>{std::move(r.value())};
      }
    } else if (key == "created_at" && mode == FieldsMode::create) {
      auto ms = v.is_string() ? parse_rfc3339(v.get_string()) : std::nullopt;
      if (!ms || *ms < 0) return invalid(key, "created_at must be an RFC 3339 time such as 2024-05-01T12:00:00Z");
      f.created_at_ms = *ms;
    } else if (key == "id" || key == "created_at" || key == "updated_at" || key == "owner") {
      return invalid(key, key + " is read-only");
    } else {
      return invalid(key, "unknown field " + key);
    }
  }
  if (mode == FieldsMode::create) {
    if (!f.name) return invalid("name", "name is required");
    if (!f.handle) return invalid("handle", "handle is required");
  }
  return f;
}

std::string tags_to_json_text(const std::vector<std::string>& tags) {
  boost::json::array a;
  for (const auto& t : tags) a.emplace_back(t);
  return boost::json::serialize(a);
}

namespace {
// What tags_to_json_text writes for tags that need no escape: ["a","b"], no space, no
// backslash, no control byte. Split here, read on every row of every list; anything else (an
// escape, other JSON) returns false and goes through the parser.
bool split_plain_tags(std::string_view t, std::vector<std::string>* out) {  // out null: only check
  if (t.size() < 2 || t.front() != '[' || t.back() != ']') return false;
  for (char c : t)
    if (c == '\\' || static_cast<unsigned char>(c) < 0x20) return false;
  t = t.substr(1, t.size() - 2);
  while (!t.empty()) {
    if (t.front() != '"') return false;
    size_t end = t.find('"', 1);
    if (end == std::string_view::npos) return false;
    if (out) out->emplace_back(t.substr(1, end - 1));
    t.remove_prefix(end + 1);
    if (t.empty()) break;
    if (t.front() != ',' || t.size() == 1) return false;
    t.remove_prefix(1);
  }
  return true;
}
}  // namespace

std::vector<std::string> tags_from_json_text(std::string_view text) {
  std::vector<std::string> out;
  if (split_plain_tags(text, &out)) return out;
  out.clear();
  boost::system::error_code ec;
  auto v = boost::json::parse(text, ec);
  if (ec || !v.is_array()) return out;
  for (const auto& t : v.get_array())
    if (t.is_string()) out.emplace_back(t.get_string());
  return out;
}

void apply_fields(Creator& c, const CreatorFields& f) {
  if (f.name) c.name = *f.name;
  if (f.handle) c.handle = *f.handle;
  if (f.owner) c.owner = *f.owner;
  if (f.email) c.email = *f.email;
  if (f.bio) c.bio = *f.bio;
  if (f.tags) c.tags = *f.tags;
  if (f.external_id) c.external_id = *f.external_id;
}

Error creator_conflict(const Creator& c, std::string_view database_message) {
  if (database_message.find("external_id") != std::string_view::npos)
    return Error::make(ErrorCode::conflict, "a creator with this external_id exists", "external_id");
  return Error::make(ErrorCode::conflict, fmt::format("handle '{}' is taken", c.handle), "handle");
}

boost::json::object to_json(const Creator& c) {
  boost::json::object o;
  o.reserve(10);
  o["id"] = c.id;
  o["name"] = c.name;
  o["handle"] = c.handle;
  if (c.email) o["email"] = *c.email;
  else o["email"] = nullptr;
  o["bio"] = c.bio;
  boost::json::array tags;
  tags.reserve(c.tags.size());
  for (const auto& t : c.tags) tags.emplace_back(t);
  o["tags"] = std::move(tags);
  if (c.external_id) o["external_id"] = *c.external_id;
  else o["external_id"] = nullptr;
  o["created_at"] = format_rfc3339(c.created_at_ms);
  o["updated_at"] = format_rfc3339(c.updated_at_ms);
  if (c.owner) o["owner"] = *c.owner;
  else o["owner"] = nullptr;
  return o;
}

namespace {
// append_json's one body: `tags` writes the array's elements.
template <class Tags>
void write_creator(std::string& out, int64_t id, std::string_view name, std::string_view handle,
                   std::optional<std::string_view> email, std::string_view bio, Tags tags,
                   std::optional<std::string_view> external_id, int64_t created_at_ms, int64_t updated_at_ms,
                   std::optional<std::string_view> owner, bool private_fields) {
  out += "{\"id\":";
  fmt::format_to(std::back_inserter(out), "{}", id);
  out += ",\"name\":";
  append_json_string(out, name);
  out += ",\"handle\":";
  append_json_string(out, handle);
  if (private_fields) {
    out += ",\"email\":";
    if (email) append_json_string(out, *email);
    else out += "null";
  }
  out += ",\"bio\":";
  append_json_string(out, bio);
  out += ",\"tags\":";
  tags();
  out += ",\"external_id\":";
  if (external_id) append_json_string(out, *external_id);
  else out += "null";
  out += ",\"created_at\":\"";
  append_rfc3339(out, created_at_ms);
  out += "\",\"updated_at\":\"";
  append_rfc3339(out, updated_at_ms);
  out += '"';
  if (private_fields) {
    out += ",\"owner\":";
    if (owner) append_json_string(out, *owner);
    else out += "null";
  }
  out += '}';
}

void append_tags(std::string& out, const std::vector<std::string>& tags) {
  out.push_back('[');
  for (size_t i = 0; i < tags.size(); ++i) {
    if (i) out.push_back(',');
    append_json_string(out, tags[i]);
  }
  out.push_back(']');
}

std::optional<std::string_view> view(const std::optional<std::string>& s) {
  return s ? std::optional<std::string_view>(*s) : std::nullopt;
}
}  // namespace

void append_json(std::string& out, const Creator& c, bool private_fields) {
  write_creator(out, c.id, c.name, c.handle, view(c.email), c.bio, [&] { append_tags(out, c.tags); }, view(c.external_id),
                c.created_at_ms, c.updated_at_ms, view(c.owner), private_fields);
}

void append_json(std::string& out, const CreatorView& c, bool private_fields) {
  auto tags = [&] {
    // What tags_to_json_text wrote, when it needed no escape, is already the answer's text.
    if (split_plain_tags(c.tags_json, nullptr)) out += c.tags_json;
    else append_tags(out, tags_from_json_text(c.tags_json));
  };
  write_creator(out, c.id, c.name, c.handle, c.email, c.bio, tags, c.external_id, c.created_at_ms, c.updated_at_ms,
                c.owner, private_fields);
}

void begin_creators_page(std::string& out) { out += "{\"items\":["; }

void end_creators_page(std::string& out, bool has_more, int64_t last_id) {
  out += "],\"has_more\":";
  out += has_more ? "true" : "false";
  out += ",\"next_cursor\":";
  if (has_more) append_json_string(out, encode_cursor(last_id));
  else out += "null";
  out.push_back('}');
}

std::string creators_page_json(const Page<Creator>& page, const Visibility& who) {
  std::string out;
  out.reserve(64 + page.items.size() * 320);
  begin_creators_page(out);
  for (size_t i = 0; i < page.items.size(); ++i) {
    if (i) out.push_back(',');
    append_json(out, page.items[i], who.sees_private(view(page.items[i].owner)));
  }
  end_creators_page(out, page.has_more && !page.items.empty(), page.items.empty() ? 0 : page.items.back().id);
  return out;
}

}  // namespace creatord
