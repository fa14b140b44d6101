// Image bytes, content-addressed (named by their SHA-256) in files beside the database.
// The calls block: callers run them on a BlockingPool.
#pragma once
#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace creatord {

class BlobStore {
 public:
  virtual ~BlobStore() = default;
  // Stores the bytes under their hash (atomically: temp file, fsync, rename, fsync dir).
  // Storing bytes that already exist refreshes the file's time (see sweep) and writes nothing.
  virtual Status put(const std::string& sha256, std::string_view bytes) = 0;
  virtual Result<std::string> get(const std::string& sha256) = 0;
  virtual Status remove(const std::string& sha256) = 0;
  // Blobs last stored more than `age` ago: candidates for removal when no record names them.
  virtual std::vector<std::string> older_than(std::chrono::seconds age) = 0;
  // Whether a write would succeed now: /readyz asks, so a full disk or a read-only folder takes
  // the instance out of rotation instead of failing every write. Ok by default (a store whose
  // bytes live in the database is probed by Store::ping).
  virtual Status probe_write() { return ok_status(); }
};

class FileBlobStore final : public BlobStore {
 public:
  explicit FileBlobStore(std::filesystem::path root);
  Status put(const std::string& sha256, std::string_view bytes) override;
  Result<std::string> get(const std::string& sha256) override;
  Status remove(const std::string& sha256) override;
  std::vector<std::string> older_than(std::chrono::seconds age) override;
  // Writes, syncs and removes a small file in the blob folder's tmp/.
  Status probe_write() override;

 private:
  std::filesystem::path path_for(const std::string& sha256) const;
  std::filesystem::path root_;
};

}  // namespace creatord
