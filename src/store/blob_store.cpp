#include "store/blob_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include <fmt/format.h>

namespace creatord {
namespace fs = std::filesystem;
namespace {

bool is_hash(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// A full disk or quota is 507 to the client; anything else is internal. The message (with the
// path's kind and errno's text) goes to the log only.
Error io_error(std::string what) {
  int e = errno;
  auto code = e == ENOSPC || e == EDQUOT ? ErrorCode::insufficient_storage : ErrorCode::internal;
  return Error::make(code, fmt::format("{}: {}", what, std::strerror(e)));
}

bool write_all(int fd, std::string_view bytes) {
  const char* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return true;
}

void fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

FileBlobStore::FileBlobStore(fs::path root) : root_(std::move(root)) {
  fs::create_directories(root_ / "tmp");
}

fs::path FileBlobStore::path_for(const std::string& h) const {
  return root_ / h.substr(0, 2) / h;
}

Status FileBlobStore::put(const std::string& h, std::string_view bytes) {
  if (!is_hash(h)) return Error::make(ErrorCode::internal, "bad blob name");
  fs::path final_path = path_for(h);
  std::error_code ec;
  if (fs::exists(final_path, ec)) {
    // Refresh the time so the sweeper sees it as freshly referenced.
    ::utimensat(AT_FDCWD, final_path.c_str(), nullptr, 0);
    return ok_status();
  }
  fs::create_directories(final_path.parent_path(), ec);
  if (ec) {
    errno = ec.value();
    return io_error("create blob folder");
  }
  thread_local std::mt19937_64 rng{std::random_device{}()};
  fs::path tmp = root_ / "tmp" / fmt::format("{}.{:x}", h, rng());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return io_error("create blob");
  bool ok = write_all(fd, bytes) && ::fsync(fd) == 0;
  int saved = errno;
  ::close(fd);
  if (!ok) {
    ::unlink(tmp.c_str());
    errno = saved;
    return io_error("write blob");
  }
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
    saved = errno;
    ::unlink(tmp.c_str());
    errno = saved;
    return io_error("rename blob");
  }
  fsync_dir(final_path.parent_path());
  return ok_status();
}

Status FileBlobStore::probe_write() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  fs::path tmp = root_ / "tmp" / fmt::format("probe.{:x}", rng());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return io_error("blob folder write probe: create");
  // A whole page: on a full file system a smaller write may still fit in a partial block.
  std::string page(4096, 'p');
  bool ok = write_all(fd, page) && ::fsync(fd) == 0;
  int saved = errno;
  ::close(fd);
  ::unlink(tmp.c_str());
  if (!ok) {
    errno = saved;
    return io_error("blob folder write probe: write");
  }
  return ok_status();
}

Result<std::string> FileBlobStore::get(const std::string& h) {
  if (!is_hash(h)) return Error::make(ErrorCode::not_found, "no such blob");
  int fd = ::open(path_for(h).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Error::make(ErrorCode::not_found, "image bytes are missing");
    return io_error("open blob");
  }
  struct stat st {};
  ::fstat(fd, &st);
  std::string out;
  out.resize(static_cast<size_t>(st.st_size));
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::read(fd, out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  out.resize(got);
  return out;
}

Status FileBlobStore::remove(const std::string& h) {
  if (!is_hash(h)) return ok_status();
  if (::unlink(path_for(h).c_str()) != 0 && errno != ENOENT) return io_error("remove blob");
  return ok_status();
}

std::vector<std::string> FileBlobStore::older_than(std::chrono::seconds age) {
  std::vector<std::string> out;
  auto cutoff = fs::file_time_type::clock::now() - age;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root_, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    auto name = it->path().filename().string();
    bool in_tmp = it->path().parent_path().filename() == "tmp";
    auto mtime = it->last_write_time(ec);
    if (ec || mtime > cutoff) continue;
    if (in_tmp) {
      fs::remove(it->path(), ec);  // a crash mid-write left it
      continue;
    }
    if (is_hash(name)) out.push_back(std::move(name));
  }
  return out;
}

}  // namespace creatord
