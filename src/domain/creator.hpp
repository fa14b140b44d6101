// A creator: the person whose images the service generates and serves. Validation lives here,
// free of HTTP, so it is unit-tested directly.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/fwd.hpp>

#include "core/result.hpp"
#include "domain/paging.hpp"

namespace creatord {

struct Creator {
  int64_t id = 0;
  std::string name;
  std::string handle;  // unique, lower case
  std::optional<std::string> email;
  std::string bio;
  std::vector<std::string> tags;
  // The creator's id in the system it came from (an import keeps it here): unique when set.
  std::optional<std::string> external_id;
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
  std::optional<std::string> owner;  // the signed-in user (JWT subject) it belongs to, if any
};

// The writable fields, each optional: a create needs name and handle, a patch any subset.
// email: absent = leave as is; present and empty optional = clear it (JSON null).
struct CreatorFields {
  std::optional<std::string> name;
  std::optional<std::string> handle;
  std::optional<std::optional<std::string>> email;
  std::optional<std::string> bio;
  std::optional<std::vector<std::string>> tags;
  std::optional<std::string> owner;  // set on create by the API (never from a body); kept by patches
  std::optional<std::optional<std::string>> external_id;  // as email: null clears it
  std::optional<int64_t> created_at_ms;  // on create only (imports keep the original time)
};

namespace limits {
inline constexpr size_t kNameMax = 200;
inline constexpr size_t kHandleMax = 64;
inline constexpr size_t kEmailMax = 254;
inline constexpr size_t kBioMax = 5000;
inline constexpr size_t kTagsMax = 32;
inline constexpr size_t kTagMax = 64;
inline constexpr size_t kExternalIdMax = 128;
}  // namespace limits

enum class FieldsMode { create, patch };

// Validates a parsed JSON body. Errors are 422 with the offending field named.
Result<CreatorFields> parse_creator_fields(const boost::json::value& body, FieldsMode mode);
// Applies a validated patch onto a creator (the store calls this inside its transaction).
void apply_fields(Creator& c, const CreatorFields& f);

// Tags as both stores keep them: a JSON array of strings. Text that is not one reads as no tags.
std::string tags_to_json_text(const std::vector<std::string>& tags);
std::vector<std::string> tags_from_json_text(std::string_view text);

boost::json::object to_json(const Creator& c);
// The same object as JSON text, appended to `out` with no intermediate values (list answers).
// Without private_fields, `email` and `owner` are left out (what anonymous callers see).
void append_json(std::string& out, const Creator& c, bool private_fields = true);

// A creator as views of its text, as a store's row holds it (tags: the stored JSON array text):
// written by append_json without a Creator being built. Valid while the row is.
struct CreatorView {
  int64_t id = 0;
  std::string_view name, handle;
  std::optional<std::string_view> email;
  std::string_view bio;
  std::string_view tags_json;
  std::optional<std::string_view> external_id;
  int64_t created_at_ms = 0, updated_at_ms = 0;
  std::optional<std::string_view> owner;
};
void append_json(std::string& out, const CreatorView& c, bool private_fields = true);

// Who sees the private fields (email, owner) of the creators in a list: every caller with
// private_fields; else only the signed-in user named `owner` (not empty), of the creators they own.
struct Visibility {
  bool private_fields = true;
  std::string owner;
  bool sees_private(std::optional<std::string_view> creator_owner) const {
    return private_fields || (!owner.empty() && creator_owner && *creator_owner == owner);
  }
};

// The list answer: {"items":[...],"has_more":...,"next_cursor":...}.
std::string creators_page_json(const Page<Creator>& page, const Visibility& who);
// The same, appended row by row by a store that reads rows: begin, each row of the page, end.
void begin_creators_page(std::string& out);
void end_creators_page(std::string& out, bool has_more, int64_t last_id);

// The 409 for a creator write that ran into a unique index, told apart by the database's message
// (which names the index or column): the external_id, else the handle.
Error creator_conflict(const Creator& c, std::string_view database_message);

// Shared validators.
bool is_valid_email(std::string_view email);
size_t utf8_length(std::string_view s);

}  // namespace creatord
