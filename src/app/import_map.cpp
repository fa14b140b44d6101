#include "app/import_map.hpp"

#define TOML_EXCEPTIONS 0
#include <toml++/toml.h>

#include <fmt/format.h>

#include "core/clock.hpp"
#include "core/sha256.hpp"

namespace creatord {

namespace json = boost::json;

namespace {

Status read_table(const toml::table& root, const std::string& path, const char* name,
                  std::map<std::string, std::string>& fields, std::set<std::string>& ignore) {
  const toml::node* node = root.get(name);
  if (!node) return ok_status();
  const toml::table* t = node->as_table();
  if (!t) return Error::make(ErrorCode::bad_request, fmt::format("{}: [{}] must be a table", path, name));
  for (const auto& [key, value] : *t) {
    std::string k(key.str());
    if (k == "ignore") {
      const toml::array* a = value.as_array();
      if (!a) return Error::make(ErrorCode::bad_request, fmt::format("{}: {}.ignore must be a list of column names", path, name));
      for (const auto& item : *a)
        if (auto s = item.value<std::string>()) ignore.insert(*s);
      continue;
    }
    if (!fields.count(k)) {
      std::string known;
      for (const auto& [f, _] : fields) known += (known.empty() ? "" : ", ") + f;
      return Error::make(ErrorCode::bad_request,
                         fmt::format("{}: [{}] has no field '{}' (fields: {}, ignore)", path, name, k, known));
    }
    auto column = value.value<std::string>();
    if (!column) return Error::make(ErrorCode::bad_request, fmt::format("{}: {}.{} must be a column name", path, name, k));
    fields[k] = *column;
  }
  return ok_status();
}

}  // namespace

Result<ImportMap> load_import_map(const std::string& path) {
  toml::parse_result parsed = toml::parse_file(path);
  if (!parsed)
    return Error::make(ErrorCode::bad_request, fmt::format("{}:{}: {}", path, parsed.error().source().begin.line,
                                                           parsed.error().description()));
  ImportMap map;
  const toml::table& root = parsed.table();
  for (const auto& [key, _] : root)
    if (key.str() != "creators" && key.str() != "images")
      return Error::make(ErrorCode::bad_request, fmt::format("{}: unknown table [{}] (creators, images)", path, key.str()));
  if (auto s = read_table(root, path, "creators", map.creators, map.creators_ignore); !s) return s.take_error();
  if (auto s = read_table(root, path, "images", map.images, map.images_ignore); !s) return s.take_error();
  return map;
}

std::string cell_text(const json::object& row, const std::string& column) {
  const json::value* v = row.if_contains(column);
  if (!v || v->is_null()) return "";
  if (v->is_string()) return std::string(v->get_string());
  return json::serialize(*v);
}

std::string derive_handle(const std::string& handle, const std::string& name, const std::string& email) {
  const std::string local = email.substr(0, email.find('@'));
  for (const std::string* source : {&handle, &name, &local}) {
    std::string out;
    for (unsigned char c : *source) {
      bool keep = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.';
      if (c >= 'A' && c <= 'Z') out.push_back(static_cast<char>(c - 'A' + 'a'));
      else if (keep) out.push_back(static_cast<char>(c));
      else if (!out.empty() && out.back() != '-') out.push_back('-');
      if (out.size() >= 40) break;
    }
    while (!out.empty() && (out.back() == '-' || out.back() == '.' || out.back() == '_')) out.pop_back();
    while (!out.empty() && !((out[0] >= 'a' && out[0] <= 'z') || (out[0] >= '0' && out[0] <= '9'))) out.erase(0, 1);
    if (!out.empty()) return out;
  }
  return "creator";
}

std::string disambiguated_handle(const std::string& base, const std::string& external_id) {
  return base + "-" + sha256_hex(external_id).substr(0, 8);
}

Result<ImportedCreator> creator_from_row(const json::object& row, const ImportMap& map) {
  auto col = [&](const char* field) { return cell_text(row, map.creators.at(field)); };
  ImportedCreator out;
  out.external_id = col("id");
  if (out.external_id.empty()) return Error::make(ErrorCode::validation, "the row has no id", map.creators.at("id"));
  std::string name = col("name"), email = col("email");
  std::string local = email.substr(0, email.find('@'));
  if (name.empty()) name = !local.empty() ? local : !col("handle").empty() ? col("handle") : "creator " + out.external_id;
  out.body["name"] = name;
  out.body["handle"] = derive_handle(col("handle"), name, email);
  out.body["external_id"] = out.external_id;
  if (!email.empty()) out.body["email"] = email;
  if (std::string bio = col("bio"); !bio.empty()) out.body["bio"] = bio;
  if (const json::value* tags = row.if_contains(map.creators.at("tags")); tags && tags->is_array())
    out.body["tags"] = *tags;
  if (std::string created = col("created_at"); !created.empty()) {
    auto ms = parse_rfc3339(created);
    if (!ms) return Error::make(ErrorCode::validation, "created_at is not a time: " + created, "created_at");
    out.body["created_at"] = format_rfc3339(*ms);
  }
  return out;
}

std::vector<std::string> unknown_columns(const json::object& row, const std::map<std::string, std::string>& used,
                                         const std::set<std::string>& ignored) {
  std::vector<std::string> out;
  for (const auto& kv : row) {
    std::string column(kv.key());
    bool mapped = std::any_of(used.begin(), used.end(), [&](const auto& f) { return f.second == column; });
    if (!mapped && !ignored.count(column)) out.push_back(column);
  }
  return out;
}

}  // namespace creatord
