#include "app/import.hpp"

#include <atomic>
#include <functional>
#include <map>
#include <set>
#include <fstream>
#include <iostream>
#include <mutex>
#include <regex>
#include <sstream>
#include <thread>

#include <boost/json.hpp>
#include <fmt/format.h>
#include <libpq-fe.h>

#include "app/import_map.hpp"
#include "app/progress.hpp"
#include "net/http_client.hpp"

namespace creatord {

namespace json = boost::json;

namespace {

struct Source {
  std::vector<json::object> creators, images;
};

Error bad(std::string message) { return Error::make(ErrorCode::bad_request, std::move(message)); }

// A file: {"creators": [...], "images": [...]}, or an array of creators, each of which may embed
// its images (PostgREST's `select=*,images(*)`).
Result<Source> read_json_source(const std::string& path, const ImportMap& map) {
  std::ifstream in(path);
  if (!in) return bad("cannot read " + path);
  std::stringstream text;
  text << in.rdbuf();
  boost::system::error_code ec;
  json::value doc = json::parse(text.str(), ec);
  if (ec) return bad(path + ": not JSON: " + ec.message());
  Source out;
  const json::array* creators = doc.is_array() ? &doc.as_array() : nullptr;
  const json::array* images = nullptr;
  if (doc.is_object()) {
    if (auto* c = doc.as_object().if_contains("creators"); c && c->is_array()) creators = &c->as_array();
    if (auto* i = doc.as_object().if_contains("images"); i && i->is_array()) images = &i->as_array();
  }
  if (!creators) return bad(path + ": expected an array of creators or {\"creators\": [...], \"images\": [...]}");
  for (const auto& v : *creators) {
    if (!v.is_object()) return bad(path + ": every creator must be a JSON object");
    json::object row = v.as_object();
    if (auto* embedded = row.if_contains("images"); embedded && embedded->is_array()) {
      for (const auto& img : embedded->as_array()) {
        if (!img.is_object()) continue;
        json::object irow = img.as_object();
        irow[map.images.at("creator_id")] = row[map.creators.at("id")];
        out.images.push_back(std::move(irow));
      }
      row.erase("images");
    }
    out.creators.push_back(std::move(row));
  }
  if (images)
    for (const auto& v : *images)
      if (v.is_object()) out.images.push_back(v.as_object());
  return out;
}

// schema.table or table: plain identifiers only, quoted into the query.
Result<std::string> table_sql(const std::string& name) {
  static const std::regex ident("^([A-Za-z_][A-Za-z0-9_]*)(\\.([A-Za-z_][A-Za-z0-9_]*))?$");
  std::smatch m;
  if (!std::regex_match(name, m, ident)) return bad("not a table name: " + name);
  return m[3].matched ? fmt::format("\"{}\".\"{}\"", m[1].str(), m[3].str()) : fmt::format("\"{}\"", m[1].str());
}

Result<std::vector<json::object>> read_table(PGconn* c, const std::string& table) {
  auto sql_name = table_sql(table);
  if (!sql_name) return sql_name.take_error();
  std::string sql = "SELECT row_to_json(t)::text FROM " + sql_name.value() + " t";
  std::unique_ptr<PGresult, decltype(&PQclear)> r(PQexec(c, sql.c_str()), &PQclear);
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) return bad(table + ": " + PQerrorMessage(c));
  std::vector<json::object> rows;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    boost::system::error_code ec;
    json::value v = json::parse(PQgetvalue(r.get(), i, 0), ec);
    if (!ec && v.is_object()) rows.push_back(std::move(v.as_object()));
  }
  return rows;
}

Result<Source> read_pg_source(const ImportCommand& cmd) {
  std::unique_ptr<PGconn, decltype(&PQfinish)> c(PQconnectdb(cmd.from.c_str()), &PQfinish);
  if (PQstatus(c.get()) != CONNECTION_OK) return bad(std::string("cannot connect to the source: ") + PQerrorMessage(c.get()));
  // Times as RFC 3339 in UTC, whatever the server's default.
  PQclear(PQexec(c.get(), "SET TimeZone = 'UTC'"));
  Source out;
  auto creators = read_table(c.get(), cmd.creators_table);
  if (!creators) return creators.take_error();
  out.creators = std::move(creators.value());
  if (!cmd.images_table.empty()) {
    auto images = read_table(c.get(), cmd.images_table);
    if (!images) return images.take_error();
    out.images = std::move(images.value());
  }
  return out;
}

std::string url_encode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                 c == '.' || c == '~';
    if (plain) out.push_back(static_cast<char>(c));
    else out += fmt::format("%{:02X}", c);
  }
  return out;
}

bool retryable(const HttpReply& r) { return (r.status == 0 && !r.refused) || r.status == 429 || r.status >= 500; }

// A call repeated, with a growing pause, while the answer says a later try may succeed.
HttpReply call_with_retries(const HttpCall& call, int retries) {
  HttpReply r = http_call(call);
  for (int attempt = 1; attempt <= retries && retryable(r); ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200 << attempt));
    r = http_call(call);
  }
  return r;
}

// The creatord written to.
struct Target {
  std::string base;
  std::string token;
  int retries = 3;
  AddressPolicy any = AddressPolicy::parse({"*"}).value();  // the configured server may be internal

  HttpReply call(const std::string& method, const std::string& path, std::string body = "",
                 const std::string& content_type = "application/json") const {
    HttpCall c;
    c.method = method;
    c.url = base + path;
    c.body = std::move(body);
    if (!c.body.empty()) c.headers.emplace_back("Content-Type", content_type);
    if (!token.empty()) c.headers.emplace_back("Authorization", "Bearer " + token);
    c.allow_internal = any;
    c.max_response_bytes = 64u << 20;
    return call_with_retries(c, retries);
  }
};

std::string reason(const HttpReply& r) {
  if (r.status == 0) return r.refused ? "its address is internal and not allowed (--allow-internal)" : r.error;
  boost::system::error_code ec;
  json::value v = json::parse(r.body, ec);
  if (!ec && v.is_object())
    if (auto* e = v.as_object().if_contains("error"); e && e->is_object()) {
      std::string msg(e->as_object().at("message").as_string());
      if (auto* f = e->as_object().if_contains("field"); f && f->is_string()) msg += " (" + std::string(f->as_string()) + ")";
      return fmt::format("{} {}", r.status, msg);
    }
  return fmt::format("HTTP {}", r.status);
}

std::string conflict_field(const HttpReply& r) {
  boost::system::error_code ec;
  json::value v = json::parse(r.body, ec);
  if (ec || !v.is_object()) return "";
  auto* f = v.as_object().if_contains("error");
  if (!f || !f->is_object()) return "";
  auto* field = f->as_object().if_contains("field");
  return field && field->is_string() ? std::string(field->as_string()) : "";
}

// The creator this target holds under external_id (q= matches it exactly); 0: none.
int64_t find_by_external_id(const Target& t, const std::string& external_id) {
  auto r = t.call("GET", "/api/creators?limit=10&q=" + url_encode(external_id));
  boost::system::error_code ec;
  json::value v = json::parse(r.body, ec);
  if (r.status != 200 || ec) return 0;
  for (const auto& item : v.at("items").as_array())
    if (auto* e = item.as_object().if_contains("external_id"); e && e->is_string() && e->as_string() == external_id)
      return item.at("id").as_int64();
  return 0;
}

// What an import run did, shared by its threads.
struct Tally {
  std::mutex mutex;
  std::vector<std::string> failures;
  std::map<std::string, int64_t> creator_ids;  // external id -> id here
  std::map<int64_t, std::set<std::string>> source_urls;  // creator id -> its images' source_url
  std::atomic<size_t> created{0}, creators_there{0}, uploaded{0}, images_there{0}, done{0};

  void fail(std::string what) {
    std::lock_guard lock(mutex);
    failures.push_back(std::move(what));
  }
};

void import_creator(const Target& t, Result<ImportedCreator> c, const std::string& label, Tally& tally) {
  if (!c) return tally.fail(fmt::format("creators row {}: {}", label.empty() ? "(no id)" : label, c.error().message));
  auto r = t.call("POST", "/api/creators", json::serialize(c->body));
  if (r.status == 409 && conflict_field(r) == "handle") {
    std::string base(c->body.at("handle").as_string());
    c->body["handle"] = disambiguated_handle(base, c->external_id);
    r = t.call("POST", "/api/creators", json::serialize(c->body));
  }
  int64_t id = 0;
  if (r.status == 201) {
    id = json::parse(r.body).at("id").as_int64();
    ++tally.created;
  } else if (r.status == 409 && conflict_field(r) == "external_id") {
    id = find_by_external_id(t, c->external_id);
    ++tally.creators_there;
  }
  if (!id) return tally.fail(fmt::format("creators row {}: {}", label, reason(r)));
  std::lock_guard lock(tally.mutex);
  tally.creator_ids[c->external_id] = id;
}

// Every row made a create request, in the source's order: a handle that an earlier row of the
// source has too gets this creator's own suffix, so which one keeps it does not depend on timing.
std::vector<Result<ImportedCreator>> prepare_creators(const std::vector<json::object>& rows, const ImportMap& map) {
  std::vector<Result<ImportedCreator>> out;
  std::set<std::string> handles;
  for (const auto& row : rows) {
    auto c = creator_from_row(row, map);
    if (c) {
      std::string handle(c->body.at("handle").as_string());
      if (!handles.insert(handle).second) c->body["handle"] = disambiguated_handle(handle, c->external_id);
    }
    out.push_back(std::move(c));
  }
  return out;
}

// The source_url of every image the creator has here (read once per creator).
std::set<std::string> existing_urls(const Target& t, int64_t creator, Tally& tally) {
  {
    std::lock_guard lock(tally.mutex);
    if (auto it = tally.source_urls.find(creator); it != tally.source_urls.end()) return it->second;
  }
  std::set<std::string> urls;
  std::string cursor;
  for (;;) {
    auto r = t.call("GET", fmt::format("/api/creators/{}/images?limit=200{}", creator, cursor));
    if (r.status != 200) break;
    json::value page = json::parse(r.body);
    for (const auto& img : page.at("items").as_array())
      if (auto* u = img.as_object().if_contains("source_url"); u && u->is_string()) urls.emplace(u->as_string());
    if (!page.at("has_more").as_bool()) break;
    cursor = "&cursor=" + url_encode(page.at("next_cursor").as_string());
  }
  std::lock_guard lock(tally.mutex);
  return tally.source_urls.emplace(creator, std::move(urls)).first->second;
}

void import_image(const Target& t, const json::object& row, const ImportMap& map, const ImportCommand& cmd,
                  const AddressPolicy& downloads, size_t max_bytes, Tally& tally) {
  std::string label = cell_text(row, map.images.at("id"));
  std::string owner = cell_text(row, map.images.at("creator_id"));
  std::string url = cell_text(row, map.images.at("url"));
  auto fail = [&](const std::string& why) { tally.fail(fmt::format("images row {}: {}", label, why)); };
  if (url.empty()) return fail("no url");
  int64_t creator = 0;
  {
    std::lock_guard lock(tally.mutex);
    if (auto it = tally.creator_ids.find(owner); it != tally.creator_ids.end()) creator = it->second;
  }
  if (!creator) return fail("its creator " + owner + " was not imported");
  if (existing_urls(t, creator, tally).count(url)) {
    ++tally.images_there;
    return;
  }
  HttpCall get;
  get.url = url;
  get.allow_internal = downloads;
  get.max_response_bytes = max_bytes;
  get.timeout = std::chrono::minutes(5);
  get.min_rate = 1024;
  get.stall_timeout = std::chrono::seconds(30);
  HttpReply image = call_with_retries(get, cmd.retries);
  if (image.status != 200) return fail("download of " + url + " failed: " + reason(image));
  std::string type = image.content_type.rfind("image/", 0) == 0 ? image.content_type : "application/octet-stream";
  auto r = t.call("POST", fmt::format("/api/creators/{}/images?source_url={}", creator, url_encode(url)),
                  std::move(image.body), type);
  if (r.status != 201) return fail("upload failed: " + reason(r));
  ++tally.uploaded;
}

// Runs fn(i) for i in [0, n) on `threads` threads; a row whose handling throws (an answer not
// shaped as expected) fails alone.
void parallel(size_t n, size_t threads, Tally& tally, const std::function<void(size_t)>& fn) {
  std::atomic<size_t> next{0};
  std::vector<std::thread> pool;
  for (size_t w = 0; w < std::max<size_t>(1, std::min(threads, n)); ++w)
    pool.emplace_back([&] {
      for (size_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) {
        try {
          fn(i);
        } catch (const std::exception& e) {
          tally.fail(fmt::format("row {}: unexpected answer: {}", i, e.what()));
        }
      }
    });
  for (auto& th : pool) th.join();
}

// Columns the map neither uses nor ignores, once each, for the report.
void report_unknown(const std::vector<json::object>& rows, const std::map<std::string, std::string>& used,
                    const std::set<std::string>& ignored, const char* table) {
  std::set<std::string> unknown;
  for (const auto& row : rows)
    for (auto& c : unknown_columns(row, used, ignored)) unknown.insert(std::move(c));
  if (unknown.empty()) return;
  std::string list;
  for (const auto& c : unknown) list += (list.empty() ? "" : ", ") + c;
  std::cerr << fmt::format("creatord: {}: columns not imported: {} (map them, or list them in ignore = [...])\n",
                           table, list);
}

int cannot(const std::string& why) {
  std::cerr << "creatord: " << why << "\n";
  return 2;
}

std::string default_server(const Config& cfg) {
  auto hp = parse_listen(cfg.listen);
  if (!hp) return "http://127.0.0.1:8000";
  std::string host = hp->first == "0.0.0.0" ? "127.0.0.1" : hp->first == "::" ? "::1" : hp->first;
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return fmt::format("http://{}:{}", host, hp->second);
}

}  // namespace

int run_import(const Config& cfg, const ImportCommand& cmd) {
  if (cmd.from.empty() == cmd.from_json.empty()) return cannot("import needs one of --from postgres://… or --from-json FILE");
  ImportMap map;
  if (!cmd.map_file.empty()) {
    auto loaded = load_import_map(cmd.map_file);
    if (!loaded) return cannot(loaded.error().message);
    map = std::move(loaded.value());
  }
  auto downloads = AddressPolicy::parse(cmd.allow_internal);
  if (!downloads) return cannot("--allow-internal: " + downloads.error().message);
  auto source = cmd.from.empty() ? read_json_source(cmd.from_json, map) : read_pg_source(cmd);
  if (!source) return cannot(source.error().message);
  report_unknown(source->creators, map.creators, map.creators_ignore, "creators");
  report_unknown(source->images, map.images, map.images_ignore, "images");

  Target target{cmd.server.empty() ? default_server(cfg) : cmd.server,
                cmd.token.empty() && !cfg.api_tokens.empty() ? cfg.api_tokens.front() : cmd.token, cmd.retries};
  Tally tally;
  Progress progress;
  size_t total = source->creators.size() + source->images.size();
  auto show = [&](bool final) {
    progress.show(fmt::format("import: {}/{} rows, {} failed", tally.done.load(), total, tally.failures.size()), final);
  };
  auto creators = prepare_creators(source->creators, map);
  parallel(creators.size(), cmd.concurrency, tally, [&](size_t i) {
    import_creator(target, std::move(creators[i]), cell_text(source->creators[i], map.creators.at("id")), tally);
    ++tally.done;
    show(false);
  });
  parallel(source->images.size(), cmd.concurrency, tally, [&](size_t i) {
    import_image(target, source->images[i], map, cmd, downloads.value(), cfg.max_upload_bytes, tally);
    ++tally.done;
    show(false);
  });
  show(true);
  for (const auto& f : tally.failures) std::cerr << "creatord: " << f << "\n";
  std::cout << fmt::format("import into {}: {} creators imported ({} already there), {} images imported ({} already "
                           "there), {} rows failed\n",
                           target.base, tally.created.load(), tally.creators_there.load(), tally.uploaded.load(),
                           tally.images_there.load(), tally.failures.size());
  return tally.failures.empty() ? 0 : 1;
}

}  // namespace creatord
