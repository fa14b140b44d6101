#include "harness.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <cstring>
#include <filesystem>
#include <random>
#include <regex>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <stdexcept>

namespace harness {

namespace fs = std::filesystem;

namespace {

// In a forked child before exec: only stdin, stdout and stderr go on. A server that outlives its
// test (a crash of the test process) must not hold what the test runner held, such as a lock
// file taken by flock(1) around the run.
void close_inherited_fds() {
  ::closefrom(3);
}

}  // namespace

std::string temp_dir(const std::string& tag) {
  static std::atomic<int> counter{0};
  static const unsigned salt = std::random_device{}();  // unique across runs, not only processes
  auto p = fs::temp_directory_path() / ("creatord-it-" + std::to_string(::getpid()) + "-" + std::to_string(salt) + "-" +
                                        tag + "-" + std::to_string(counter++));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

namespace {

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// postgresql://host:port/DB?query with another DB.
std::string with_database(const std::string& url, const std::string& db) {
  size_t query = url.find('?');
  size_t slash = url.rfind('/', query == std::string::npos ? std::string::npos : query);
  return url.substr(0, slash + 1) + db + (query == std::string::npos ? "" : url.substr(query));
}

std::string via_url() {
  std::string via = pg_via();
  if (via == "tls") return env_or_empty("CREATORD_TEST_PG_TLS_URL");
  if (via == "session") return env_or_empty("CREATORD_TEST_PGBOUNCER_SESSION_URL");
  if (via == "transaction") return env_or_empty("CREATORD_TEST_PGBOUNCER_TRANSACTION_URL");
  return env_or_empty("CREATORD_TEST_POSTGRES_URL");
}

// A pass whose URLs are missing skips every test instead of quietly testing SQLite.
class ViaEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (!pg_via().empty() && via_url().empty()) {
      std::printf("[  SKIPPED ] every test: no URLs for this pass\n");  // ctest reports them skipped
      GTEST_SKIP() << "CREATORD_TEST_STORE=postgres-" << pg_via() << " needs scripts/test-pooler.sh's URLs (make test sets them)";
    }
  }
};
[[maybe_unused]] auto* const via_environment = ::testing::AddGlobalTestEnvironment(new ViaEnvironment);

}  // namespace

std::string pg_via() {
  std::string store = env_or_empty("CREATORD_TEST_STORE");
  return store.rfind("postgres-", 0) == 0 ? store.substr(9) : "";
}

std::string pg_admin_url() {
  if (pg_via().empty()) return env_or_empty("CREATORD_TEST_POSTGRES_URL");
  return via_url().empty() ? "" : env_or_empty("CREATORD_TEST_PG_TLS_URL");
}

std::string pg_url_for_database(const std::string& db) { return with_database(via_url(), db); }

bool testing_postgres() {
  const char* store = std::getenv("CREATORD_TEST_STORE");
  return store && std::string(store).rfind("postgres", 0) == 0 && !pg_admin_url().empty();
}

// With CREATORD_TEST_STORE=postgres: one database per data folder (so a restart finds its data),
// created on first use.
std::string postgres_url_for(const std::string& data_dir) {
  if (!testing_postgres()) return "";
  std::string db = fmt::format("t_{:016x}", std::hash<std::string>{}(data_dir));
  PGconn* c = PQconnectdb(pg_admin_url().c_str());
  PQclear(PQexec(c, ("CREATE DATABASE " + db).c_str()));  // fails harmlessly when it exists
  PQfinish(c);
  return pg_url_for_database(db);
}

Server::Server(Options options) : options_(std::move(options)) {
  data_dir_ = options_.data_dir;
  if (data_dir_.empty()) {
    data_dir_ = temp_dir("data");
    owns_dir_ = true;
  }
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  std::vector<std::string> args = {CREATORD_BINARY, "serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir_,
                                   "--threads", "2"};
  bool own_url = std::find(options_.args.begin(), options_.args.end(), "--database-url") != options_.args.end();
  if (auto url = own_url ? "" : postgres_url_for(data_dir_); !url.empty()) {
    args.push_back("--database-url");
    args.push_back(url);
    // Through the session pooler (10 server connections per database): two instances fit.
    bool own_size = std::find(options_.args.begin(), options_.args.end(), "--database-connections") != options_.args.end();
    if (pg_via() == "session" && !own_size) args.insert(args.end(), {"--database-connections", "4"});
  }
  args.insert(args.end(), options_.args.begin(), options_.args.end());
  pid_ = ::fork();
  if (pid_ == 0) {
    ::dup2(pipefd[1], 1);
    ::dup2(pipefd[1], 2);
    close_inherited_fds();
    for (const auto& [k, v] : options_.env) ::setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(pipefd[1]);
  out_fd_ = pipefd[0];
  reader_ = std::thread([this] { reader(); });
  if (!options_.expect_listening) return;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::regex port_re("\"msg\":\"listening\".*\"port\":([0-9]+)");
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard lock(mutex_);
      std::smatch m;
      if (std::regex_search(output_, m, port_re)) {
        port_ = static_cast<uint16_t>(std::stoi(m[1]));
        return;
      }
    }
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("creatord exited before listening:\n" + output());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  throw std::runtime_error("creatord did not report listening:\n" + output());
}

void Server::reader() {
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(out_fd_, buf, sizeof buf);
    if (n <= 0) break;
    std::lock_guard lock(mutex_);
    output_.append(buf, static_cast<size_t>(n));
  }
}

std::string Server::output() {
  std::lock_guard lock(mutex_);
  return output_;
}

bool Server::wait_output(const std::string& needle, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (output().find(needle) != std::string::npos) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

int Server::wait_exit(std::chrono::seconds timeout) {
  if (pid_ <= 0) return exit_status_;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      // Everything it printed is read before anyone looks at output(): the reader ends at EOF.
      if (reader_.joinable()) reader_.join();
      return exit_status_;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return -1;
}

int Server::stop(int sig, std::chrono::seconds timeout) {
  if (pid_ <= 0) return exit_status_;
  ::kill(pid_, sig);
  int rc = wait_exit(timeout);
  if (rc == -1) {
    ::kill(pid_, SIGKILL);
    rc = wait_exit(std::chrono::seconds(10));
  }
  return rc;
}

Server::~Server() {
  if (pid_ > 0) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      if (WIFSIGNALED(status))
        std::fprintf(stderr, "creatord died of signal %d; its output:\n%s\n", WTERMSIG(status), output().c_str());
    } else {
      stop(SIGKILL);
    }
  }
  if (reader_.joinable()) reader_.join();
  if (out_fd_ >= 0) ::close(out_fd_);
  if (owns_dir_) {
    std::error_code ec;
    fs::remove_all(data_dir_, ec);
  }
}

boost::json::value Response::json() const {
  boost::system::error_code ec;
  auto v = boost::json::parse(body, ec);
  if (ec) return boost::json::value(nullptr);
  return v;
}

std::string Response::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

Conn::Conn(uint16_t port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd_);
    fd_ = -1;
    throw std::runtime_error(std::string("connect: ") + std::strerror(errno));
  }
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

Conn::~Conn() {
  if (fd_ >= 0) ::close(fd_);
}

bool Conn::send_raw(std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

namespace {
// Reads more into buf; false on close, error or timeout.
bool fill(int fd, std::string& buf, std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return false;
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
  char tmp[65536];
  ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
  if (n <= 0) return false;
  buf.append(tmp, static_cast<size_t>(n));
  return true;
}
}  // namespace

Response Conn::read_response(bool head, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  Response r;
  for (;;) {
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill(fd_, buf_, deadline)) return r;
    }
    std::string head_text = buf_.substr(0, end);
    buf_.erase(0, end + 4);
    size_t line_end = head_text.find("\r\n");
    std::string status_line = head_text.substr(0, line_end);
    r = Response{};
    r.status = std::stoi(status_line.substr(9, 3));
    size_t pos = line_end == std::string::npos ? head_text.size() : line_end + 2;
    while (pos < head_text.size()) {
      size_t e = head_text.find("\r\n", pos);
      if (e == std::string::npos) e = head_text.size();
      std::string line = head_text.substr(pos, e - pos);
      size_t colon = line.find(':');
      std::string name = line.substr(0, colon);
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      r.headers[name] = value;
      pos = e + 2;
    }
    if (r.status == 100) continue;  // interim response
    break;
  }
  if (head || r.status == 204 || r.status == 304) return r;
  if (r.headers.count("content-length")) {
    size_t len = std::stoul(r.headers["content-length"]);
    while (buf_.size() < len) {
      if (!fill(fd_, buf_, deadline)) break;
    }
    r.body = buf_.substr(0, len);
    buf_.erase(0, std::min(len, buf_.size()));
  } else {
    while (fill(fd_, buf_, deadline)) {
    }
    r.body = std::move(buf_);
    buf_.clear();
  }
  return r;
}

std::string Conn::read_until(const std::string& needle, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (buf_.find(needle) == std::string::npos) {
    if (!fill(fd_, buf_, deadline)) break;
  }
  return buf_;
}

boost::json::value wait_job(uint16_t port, int64_t id, const std::function<bool(const boost::json::value&)>& pred,
                            std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  boost::json::value last;
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = get(port, "/api/jobs/" + std::to_string(id));
    if (r.status == 200) {
      last = r.json();
      if (pred(last)) return last;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return last;
}

bool job_in(const boost::json::value& job, std::initializer_list<const char*> states) {
  if (!job.is_object()) return false;
  for (const char* s : states)
    if (job.at("state").as_string() == s) return true;
  return false;
}

uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

ScriptServer::ScriptServer(const std::string& script, std::vector<std::string> args, uint16_t port) {
  dir_ = temp_dir("script");
  std::string port_file = dir_ + "/port";
  std::vector<std::string> argv = {"/usr/bin/python3", script, "--port", std::to_string(port), "--port-file", port_file};
  argv.insert(argv.end(), args.begin(), args.end());
  for (auto& a : argv)  // "{dir}" in an argument names this server's folder
    if (auto pos = a.find("{dir}"); pos != std::string::npos) a.replace(pos, 5, dir_);
  pid_ = ::fork();
  if (pid_ == 0) {
    int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 1);
    close_inherited_fds();
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    ::execv(cargv[0], cargv.data());
    ::_exit(127);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(port_file);
    int p = 0;
    if (in >> p && p > 0) {
      port_ = static_cast<uint16_t>(p);
      return;
    }
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  stop();
  throw std::runtime_error("the helper server " + script + " did not start");
}

ScriptServer::~ScriptServer() {
  stop();
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

void ScriptServer::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  int status = 0;
  for (int i = 0; i < 200; ++i) {
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

SmtpServer::SmtpServer(std::vector<std::string> args, uint16_t port)
    : ScriptServer(SMTP_SERVER_SCRIPT, [&] {
        args.insert(args.begin(), {"--outdir", "{dir}/mail"});
        return args;
      }(), port) {}

std::vector<boost::json::value> SmtpServer::messages() const {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir() + "/mail", ec))
    if (e.path().extension() == ".json") names.push_back(e.path().string());
  std::sort(names.begin(), names.end());
  std::vector<boost::json::value> out;
  for (const auto& n : names) {
    std::ifstream in(n);
    std::string text((std::istreambuf_iterator<char>(in)), {});
    boost::system::error_code jec;
    auto v = boost::json::parse(text, jec);
    if (!jec) out.push_back(std::move(v));
  }
  return out;
}

std::vector<boost::json::value> SmtpServer::wait_for(size_t n, std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto m = messages();
  while (m.size() < n && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    m = messages();
  }
  return m;
}

bool Conn::wait_closed(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) > 0) {
      char tmp[4096];
      ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
      if (n <= 0) return true;
    }
  }
  return false;
}

std::string build_request(const std::string& method, const std::string& target, const std::string& body,
                          const Headers& headers, bool keep_alive) {
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  bool has_ct = false;
  for (const auto& [k, v] : headers) {
    req += k + ": " + v + "\r\n";
    if (k == "Content-Type") has_ct = true;
  }
  (void)has_ct;
  if (!body.empty() || method == "POST" || method == "PATCH" || method == "PUT")
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  if (!keep_alive) req += "Connection: close\r\n";
  req += "\r\n";
  req += body;
  return req;
}

namespace {

// The contract record: when the folder CREATORD_CONTRACT_DIR (default: build/contract) exists, every answer received through
// request()/Conn::request() is appended to a JSON-lines file of this process there, and
// tests/contract/check_responses.py (the openapi.contract test, after the suites) checks each
// against the OpenAPI document. Raw exchanges (send_raw) are left out: they test the parser.
void record_contract(const std::string& method, const std::string& target, const Response& r) {
  if (r.status == 0) return;
  static std::mutex mutex;
  static std::FILE* out = [] {
    const char* env = std::getenv("CREATORD_CONTRACT_DIR");
    std::string dir = env ? env : CONTRACT_DIR;  // ctest's contract.setup creates the folder
    if (dir.empty() || !fs::is_directory(dir)) return static_cast<std::FILE*>(nullptr);
    return std::fopen((dir + "/contract-" + std::to_string(::getpid()) + ".jsonl").c_str(), "a");
  }();
  if (!out) return;
  boost::json::object rec{{"method", method},
                          {"target", target},
                          {"status", r.status},
                          {"content_type", r.header("content-type")},
                          {"test", ::testing::UnitTest::GetInstance()->current_test_info()
                                       ? std::string(::testing::UnitTest::GetInstance()->current_test_info()->test_suite_name()) +
                                             "." + ::testing::UnitTest::GetInstance()->current_test_info()->name()
                                       : std::string()}};
  if (r.body.size() <= (1u << 20)) rec["body"] = r.body;
  std::string line = boost::json::serialize(rec) + "\n";
  std::lock_guard lock(mutex);
  std::fwrite(line.data(), 1, line.size(), out);
  std::fflush(out);
}

}  // namespace

Response Conn::request(const std::string& method, const std::string& target, const std::string& body,
                       const Headers& headers) {
  send_raw(build_request(method, target, body, headers));
  auto r = read_response(method == "HEAD");
  record_contract(method, target, r);
  return r;
}

Response request(uint16_t port, const std::string& method, const std::string& target, const std::string& body,
                 const Headers& headers) {
  Conn c(port);
  c.send_raw(build_request(method, target, body, headers, false));
  auto r = c.read_response(method == "HEAD");
  record_contract(method, target, r);
  return r;
}

Response get(uint16_t port, const std::string& target, const Headers& headers) {
  return request(port, "GET", target, "", headers);
}

Response post_json(uint16_t port, const std::string& target, const std::string& json, Headers headers) {
  headers.emplace_back("Content-Type", "application/json");
  return request(port, "POST", target, json, headers);
}

CliRun run_creatord(const std::string& args, bool with_stderr) {
  return run_command(std::string(CREATORD_BINARY) + " " + args + (with_stderr ? " 2>&1" : " 2>/dev/null"));
}

CliRun run_command(const std::string& command) {
  CliRun r;
  FILE* p = ::popen(command.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int status = ::pclose(p);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace harness
