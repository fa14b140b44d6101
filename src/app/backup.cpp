#include "app/backup.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include <boost/json.hpp>
#include <fmt/format.h>
#include <sqlite3.h>

#include "app/progress.hpp"
#include "core/clock.hpp"
#include "core/sha256.hpp"
#include "store/pg/pg_migrations.hpp"
#include "store/sqlite/sqlite_db.hpp"

namespace creatord {

namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

constexpr const char* kFormat = "creatord-backup";
constexpr int kFormatVersion = 1;

std::string db_path(const Config& cfg) {
  if (cfg.database_url.rfind("sqlite://", 0) == 0) return cfg.database_url.substr(9);
  return (fs::path(cfg.data_dir) / "creatord.db").string();
}

std::string blob_rel(const std::string& sha) { return "blobs/" + sha.substr(0, 2) + "/" + sha; }

Result<std::string> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error::make(ErrorCode::not_found, path.string() + ": cannot be read");
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad()) return Error::make(ErrorCode::internal, path.string() + ": read error");
  return std::move(out).str();
}

void fsync_path(const fs::path& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// Written whole, synced, then renamed into place: a crash leaves the old file or the new one.
Status write_file_synced(const fs::path& path, std::string_view bytes) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  fs::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) return Error::make(ErrorCode::internal, tmp.string() + ": cannot be written");
  }
  fsync_path(tmp, O_RDONLY);
  fs::rename(tmp, path, ec);
  if (ec) return Error::make(ErrorCode::internal, path.string() + ": " + ec.message());
  fsync_path(path.parent_path(), O_RDONLY | O_DIRECTORY);
  return ok_status();
}

// "backup: 12/40 images' files, 3.1 MB" and the like.
void show_files(Progress& p, const char* what, size_t done, size_t total, uint64_t bytes) {
  p.show(fmt::format("{}: {}/{} images' files, {:.1f} MB", what, done, total, static_cast<double>(bytes) / 1e6),
         done == total);
}

// The distinct hashes the images of a database name.
Result<std::vector<std::string>> image_hashes(sqlite::Db& db) {
  std::vector<std::string> out;
  auto st = db.prepare("SELECT DISTINCT sha256 FROM images ORDER BY sha256");
  while (st.step()) out.push_back(st.text(0));
  if (st.rc() != SQLITE_DONE) return sqlite::to_error(st.rc(), db.errmsg());
  return out;
}

Result<int64_t> schema_version(sqlite::Db& db) {
  auto st = db.prepare("PRAGMA user_version");
  if (!st.step()) return sqlite::to_error(st.rc(), db.errmsg());
  return st.int64(0);
}

int failed(const std::string& what) {
  std::cerr << "creatord: " << what << "\n";
  return 1;
}

// Every hash the snapshot names, copied into dest/blobs unless there already (same name, same
// size: the name is the content's hash, and restore checks every byte). The source's bytes are
// checked before they are copied, so a backup never carries corruption silently.
Result<json::array> copy_blobs(const fs::path& data_dir, const fs::path& dest, const std::vector<std::string>& hashes,
                               size_t& copied) {
  json::array blobs;
  Progress progress;
  uint64_t bytes_seen = 0;
  for (size_t i = 0; i < hashes.size(); ++i) {
    const std::string& h = hashes[i];
    fs::path target = dest / blob_rel(h);
    std::error_code ec;
    auto source = read_file(data_dir / blob_rel(h));
    if (!source) return Error::make(ErrorCode::internal, "image file missing from the data folder: " + source.error().message);
    if (sha256_hex(source.value()) != h)
      return Error::make(ErrorCode::internal, (data_dir / blob_rel(h)).string() + ": content does not match its hash");
    auto size = source->size();
    if (!fs::exists(target, ec) || fs::file_size(target, ec) != size) {
      if (auto w = write_file_synced(target, source.value()); !w) return w.take_error();
      ++copied;
    }
    bytes_seen += size;
    blobs.push_back(json::object{{"sha256", h}, {"bytes", size}, {"file", blob_rel(h)}});
    show_files(progress, "backup", i + 1, hashes.size(), bytes_seen);
  }
  return blobs;
}

// What the manifest no longer names: older snapshots and image files of deleted images.
void prune(const fs::path& dest, const std::string& db_file, const std::set<std::string>& keep) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dest, ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind("creatord-", 0) == 0 && name != db_file) fs::remove(e.path(), ec);
  }
  for (const auto& e : fs::recursive_directory_iterator(dest / "blobs", ec))
    if (e.is_regular_file() && !keep.count(e.path().filename().string())) fs::remove(e.path(), ec);
}

}  // namespace

int run_backup(const Config& cfg, const std::string& dest_arg) {
  if (pg::is_postgres_url(cfg.database_url)) {
    std::cerr << "creatord: on PostgreSQL the database holds everything, images included: back it up with "
                 "pg_dump or point-in-time recovery (see README, Backup and restore)\n";
    return 2;
  }
  fs::path dest(dest_arg), data_dir(cfg.data_dir);
  std::error_code ec;
  fs::create_directories(dest / "blobs", ec);
  if (ec) return failed(dest.string() + ": " + ec.message());
  auto src = sqlite::Db::open(db_path(cfg), true, 10000, "FULL");
  if (!src) return failed("cannot open the database: " + src.error().message);

  // The snapshot: one read transaction, so every write committed before it is in it.
  int64_t taken_at = now_ms();
  std::string db_file = fmt::format("creatord-{}.db", taken_at);
  fs::path snapshot = dest / (db_file + ".tmp");
  fs::remove(snapshot, ec);
  {
    auto st = src.value()->prepare("VACUUM INTO ?1");
    st.bind(1, snapshot.string());
    if (st.run() != SQLITE_DONE) return failed("snapshot failed: " + src.value()->errmsg());
  }
  src.value().reset();
  auto snap = sqlite::Db::open(snapshot.string(), true, 10000, "FULL");
  if (!snap) return failed("cannot open the snapshot: " + snap.error().message);
  auto hashes = image_hashes(*snap.value());
  auto version = schema_version(*snap.value());
  snap.value().reset();
  if (!hashes || !version) return failed("cannot read the snapshot");

  size_t copied = 0;
  auto blobs = copy_blobs(data_dir, dest, hashes.value(), copied);
  if (!blobs) return failed(blobs.error().message);
  auto db_bytes = read_file(snapshot);
  if (!db_bytes) return failed(db_bytes.error().message);
  fsync_path(snapshot, O_RDONLY);
  fs::rename(snapshot, dest / db_file, ec);
  if (ec) return failed(ec.message());

  json::object manifest{{"format", kFormat},
                        {"format_version", kFormatVersion},
                        {"created_at", format_rfc3339(taken_at)},
                        {"schema_version", version.value()},
                        {"database", json::object{{"file", db_file},
                                                  {"bytes", db_bytes->size()},
                                                  {"sha256", sha256_hex(db_bytes.value())}}},
                        {"blobs", blobs.value()}};
  if (auto w = write_file_synced(dest / "manifest.json", json::serialize(manifest) + "\n"); !w)
    return failed(w.error().message);
  prune(dest, db_file, std::set<std::string>(hashes->begin(), hashes->end()));
  std::cout << fmt::format("backup {}: database {} bytes, {} image files ({} copied, {} already there)\n",
                           dest.string(), db_bytes->size(), hashes->size(), copied, hashes->size() - copied);
  return 0;
}

namespace {

struct ManifestFile {
  std::string file;  // relative to the backup folder
  std::string sha256;
  uint64_t bytes = 0;
};

struct Manifest {
  ManifestFile database;
  std::vector<ManifestFile> blobs;
};

// A file name from the manifest stays inside the backup folder.
bool safe_relative(const std::string& f) {
  fs::path p(f);
  if (p.empty() || p.is_absolute()) return false;
  for (const auto& part : p)
    if (part == "..") return false;
  return true;
}

Result<Manifest> read_manifest(const fs::path& src) {
  auto text = read_file(src / "manifest.json");
  if (!text) return text.take_error();
  auto bad = [&](const std::string& why) {
    return Error::make(ErrorCode::bad_request, (src / "manifest.json").string() + ": " + why);
  };
  boost::system::error_code ec;
  json::value doc = json::parse(text.value(), ec);
  if (ec || !doc.is_object()) return bad("not JSON");
  const auto& o = doc.as_object();
  auto* format = o.if_contains("format");
  if (!format || !format->is_string() || format->as_string() != kFormat) return bad("not a creatord backup");
  auto entry = [](const json::value& v) -> std::optional<ManifestFile> {
    if (!v.is_object()) return std::nullopt;
    const auto& e = v.as_object();
    auto* f = e.if_contains("file");
    auto* h = e.if_contains("sha256");
    auto* b = e.if_contains("bytes");
    if (!f || !f->is_string() || !h || !h->is_string() || !b || !b->is_number()) return std::nullopt;
    boost::system::error_code bad_number;
    auto bytes = b->to_number<uint64_t>(bad_number);
    if (bad_number) return std::nullopt;
    ManifestFile m{std::string(f->as_string()), std::string(h->as_string()), bytes};
    if (!safe_relative(m.file)) return std::nullopt;
    return m;
  };
  Manifest m;
  auto db = o.contains("database") ? entry(o.at("database")) : std::nullopt;
  if (!db) return bad("no database entry");
  m.database = *db;
  if (!o.contains("blobs") || !o.at("blobs").is_array()) return bad("no blobs list");
  for (const auto& v : o.at("blobs").as_array()) {
    auto b = entry(v);
    if (!b || b->file != blob_rel(b->sha256)) return bad("a bad blobs entry");
    m.blobs.push_back(std::move(*b));
  }
  return m;
}

// Every file of the manifest read and hashed; each one that is missing or differs is printed.
bool check_backup(const fs::path& src, const Manifest& m) {
  std::vector<const ManifestFile*> all{&m.database};
  for (const auto& b : m.blobs) all.push_back(&b);
  bool ok = true;
  Progress progress;
  uint64_t bytes = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    const ManifestFile& f = *all[i];
    auto data = read_file(src / f.file);
    if (!data) {
      std::cerr << "creatord: " << (src / f.file).string() << ": missing\n";
      ok = false;
    } else if (data->size() != f.bytes || sha256_hex(data.value()) != f.sha256) {
      std::cerr << "creatord: " << (src / f.file).string() << ": checksum mismatch (corrupted)\n";
      ok = false;
    }
    bytes += f.bytes;
    show_files(progress, "checking the backup", i + 1, all.size(), bytes);
  }
  return ok;
}

bool empty_or_absent(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return true;
  return fs::is_directory(dir, ec) && fs::is_empty(dir, ec);
}

}  // namespace

int run_restore(const Config& cfg, const std::string& src_arg) {
  if (pg::is_postgres_url(cfg.database_url)) {
    std::cerr << "creatord: on PostgreSQL restore with pg_restore or point-in-time recovery (see README)\n";
    return 2;
  }
  fs::path src(src_arg), data_dir(cfg.data_dir), db(db_path(cfg));
  if (!empty_or_absent(data_dir) || fs::exists(db))
    return failed("restore needs an empty data folder; " + data_dir.string() + " is not empty");
  auto manifest = read_manifest(src);
  if (!manifest) return failed(manifest.error().message);
  if (!check_backup(src, manifest.value()))
    return failed("the backup in " + src.string() + " is damaged (see above); nothing was restored");
  Progress progress;
  uint64_t bytes = 0;
  for (size_t i = 0; i < manifest->blobs.size(); ++i) {
    const auto& b = manifest->blobs[i];
    auto data = read_file(src / b.file);
    if (!data) return failed(data.error().message);
    if (auto w = write_file_synced(data_dir / b.file, data.value()); !w) return failed(w.error().message);
    bytes += b.bytes;
    show_files(progress, "restore", i + 1, manifest->blobs.size(), bytes);
  }
  auto data = read_file(src / manifest->database.file);
  if (!data) return failed(data.error().message);
  // The database last: a folder with a database is a restored one.
  if (auto w = write_file_synced(db, data.value()); !w) return failed(w.error().message);
  std::cout << fmt::format("restored {} into {}: database {} bytes, {} image files\n", src.string(), data_dir.string(),
                           data->size(), manifest->blobs.size());
  return run_verify(cfg);
}

}  // namespace creatord
