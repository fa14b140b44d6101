// What `creatord import` makes of the original service's rows, without I/O: the column map (a
// small TOML file), a row turned into a create request, and the handle derived when a row has
// none. Unit-tested; src/app/import.cpp does the reading, downloading and writing.
#pragma once
#include <map>
#include <set>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "core/result.hpp"

namespace creatord {

// Which source column feeds which field. Columns named nowhere (and not in `ignore`) are
// reported as not imported.
struct ImportMap {
  // creators: id (kept as external_id), name, handle, email, bio, tags, created_at
  std::map<std::string, std::string> creators{{"id", "id"},   {"name", "name"}, {"handle", "handle"},
                                              {"email", "email"}, {"bio", "bio"}, {"tags", "tags"},
                                              {"created_at", "created_at"}};
  // images: id, creator_id (the creator's original id), url
  std::map<std::string, std::string> images{{"id", "id"}, {"creator_id", "creator_id"}, {"url", "url"}};
  std::set<std::string> creators_ignore, images_ignore;
};

// [creators] and [images] tables of `field = "column"`, each with an optional ignore = [...].
// Errors name the file and what is wrong.
Result<ImportMap> load_import_map(const std::string& path);

// A source value as text: a string as is, a number or boolean written out; "" for null/missing.
std::string cell_text(const boost::json::object& row, const std::string& column);

// The creator a row describes, as the body of POST /api/creators (external_id and created_at
// included), or why the row cannot be imported (no id, a time that does not parse).
struct ImportedCreator {
  std::string external_id;
  boost::json::object body;
};
Result<ImportedCreator> creator_from_row(const boost::json::object& row, const ImportMap& map);

// A handle from the row's own, else its name, else its email's local part: lower case, runs of
// other characters made one '-', at most 40 characters; "creator" when nothing is left.
std::string derive_handle(const std::string& handle, const std::string& name, const std::string& email);
// The same handle made unique for this creator, the same way on every run: base-<8 hex of the id's hash>.
std::string disambiguated_handle(const std::string& base, const std::string& external_id);

// Columns of the row that the map neither uses nor ignores.
std::vector<std::string> unknown_columns(const boost::json::object& row, const std::map<std::string, std::string>& used,
                                         const std::set<std::string>& ignored);

}  // namespace creatord
