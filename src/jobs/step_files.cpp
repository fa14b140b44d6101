#include "jobs/step_files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace creatord {

namespace fs = std::filesystem;

namespace {

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Lexically inside: root is canonical, so is what the kernel says the file is.
bool inside(const fs::path& root, const fs::path& real) {
  fs::path rel = real.lexically_relative(root);
  if (rel.empty() || rel == ".") return false;
  return *rel.begin() != "..";
}

}  // namespace

Result<std::string> read_file_inside(const std::string& folder, const std::string& path, size_t max_bytes,
                                     std::string* why) {
  auto refuse = [&](std::string reason) -> Result<std::string> {
    if (why) *why = std::move(reason);
    return Error::make(ErrorCode::validation, kNoFileInFolder);
  };
  std::error_code ec;
  fs::path root = fs::canonical(folder, ec);
  if (ec) return refuse("the step's folder " + folder + ": " + ec.message());
  fs::path p(path);
  if (path.empty() || path.find('\0') != std::string::npos) return refuse("an empty path");
  if (p.is_relative()) p = root / p;
  // Open first, then ask the kernel which file this is: no window between a check and the read
  // for a symlink to be swapped in. O_NONBLOCK: a FIFO must not hang the read.
  Fd f{::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)};
  if (f.fd < 0) return refuse(p.string() + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(f.fd, &st) != 0 || !S_ISREG(st.st_mode)) return refuse(p.string() + " is not a regular file");
  fs::path real = fs::read_symlink("/proc/self/fd/" + std::to_string(f.fd), ec);
  if (ec) return refuse("cannot tell where " + p.string() + " leads: " + ec.message());
  if (!inside(root, real)) return refuse(p.string() + " leads to " + real.string() + ", outside " + root.string());
  if (static_cast<uint64_t>(st.st_size) > max_bytes)
    return Error::make(ErrorCode::validation, "is larger than " + std::to_string(max_bytes) + " bytes");
  std::string out;
  out.resize(static_cast<size_t>(st.st_size));
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::read(f.fd, out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  out.resize(got);
  return out;
}

}  // namespace creatord
