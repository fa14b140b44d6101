// Integration test harness: starts the real creatord binary on port 0 with a temporary data
// folder, and speaks HTTP/1.1 to it over plain sockets.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/json.hpp>

namespace harness {

std::string temp_dir(const std::string& tag);
// CREATORD_TEST_STORE=postgres runs the servers on PostgreSQL (a database per data folder).
bool testing_postgres();
std::string postgres_url_for(const std::string& data_dir);
// CREATORD_TEST_STORE=postgres-tls|postgres-session|postgres-transaction: the same
// suites on the TLS cluster of scripts/test-pooler.sh, directly or through its PgBouncer in that
// pool mode. "" otherwise. Tests are skipped when the pass's URLs are not set.
std::string pg_via();
// The URL to create databases with (the direct one of the pass); "" without PostgreSQL.
std::string pg_admin_url();
// The URL creatord uses for database `db` in this pass (through the pooler when there is one).
std::string pg_url_for_database(const std::string& db);

class Server {
 public:
  struct Options {
    std::vector<std::string> args;
    std::vector<std::pair<std::string, std::string>> env;
    std::string data_dir;  // empty: a fresh temporary folder
    bool expect_listening = true;
  };
  explicit Server(Options options);
  Server() : Server(Options{}) {}
  ~Server();
  Server(const Server&) = delete;

  uint16_t port() const { return port_; }
  const std::string& data_dir() const { return data_dir_; }
  // Sends a signal and waits for exit; returns the exit status (or 128+signal).
  int stop(int sig = 15, std::chrono::seconds timeout = std::chrono::seconds(30));
  // Waits for the process to exit on its own.
  int wait_exit(std::chrono::seconds timeout = std::chrono::seconds(30));
  std::string output();  // everything the process printed so far
  // Waits until the output holds `needle`: lines written after "listening" may still be on
  // their way through the pipe when the constructor returns.
  bool wait_output(const std::string& needle, std::chrono::milliseconds timeout = std::chrono::seconds(5));
  bool running() const { return pid_ > 0; }
  int pid() const { return pid_; }

 private:
  void reader();

  Options options_;
  std::string data_dir_;
  bool owns_dir_ = false;
  int pid_ = -1;
  int out_fd_ = -1;
  uint16_t port_ = 0;
  std::mutex mutex_;
  std::string output_;
  std::thread reader_;
  int exit_status_ = -1;
};

struct Response {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  boost::json::value json() const;
  std::string header(const std::string& lower_name) const;
};

using Headers = std::vector<std::pair<std::string, std::string>>;

// A client connection (keep-alive capable).
class Conn {
 public:
  explicit Conn(uint16_t port);
  ~Conn();
  Conn(const Conn&) = delete;
  bool send_raw(std::string_view bytes);
  // Reads one response; status 0 when the connection closed first. head: no body expected.
  Response read_response(bool head = false, std::chrono::milliseconds timeout = std::chrono::seconds(30));
  Response request(const std::string& method, const std::string& target, const std::string& body = "",
                   const Headers& headers = {});
  // Reads raw bytes until `needle` has arrived (or the timeout/close); returns all read so far.
  std::string read_until(const std::string& needle, std::chrono::milliseconds timeout);
  // True when the server closed the connection (read returns 0 or reset) within timeout.
  bool wait_closed(std::chrono::milliseconds timeout);
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  std::string buf_;
};

std::string build_request(const std::string& method, const std::string& target, const std::string& body,
                          const Headers& headers, bool keep_alive = true);

// One request on a fresh connection.
Response request(uint16_t port, const std::string& method, const std::string& target,
                 const std::string& body = "", const Headers& headers = {});
Response get(uint16_t port, const std::string& target, const Headers& headers = {});
Response post_json(uint16_t port, const std::string& target, const std::string& json, Headers headers = {});

// A real SMTP server (tests/smtp/smtp_server.py, aiosmtpd) on a free loopback port.
uint16_t free_port();

// The creatord binary run with args (a shell command line) to its end.
struct CliRun {
  int rc = -1;       // exit status; -1 when it did not exit normally
  std::string out;   // stdout, and stderr too when asked
};
CliRun run_creatord(const std::string& args, bool with_stderr = false);
// A shell command's standard output and exit status.
CliRun run_command(const std::string& command);

// A helper server written in Python that reports its port through a file once listening.
// Stopped (SIGTERM, then SIGKILL) when destroyed.
class ScriptServer {
 public:
  ScriptServer(const std::string& script, std::vector<std::string> args, uint16_t port = 0);
  ~ScriptServer();
  ScriptServer(const ScriptServer&) = delete;
  uint16_t port() const { return port_; }
  const std::string& dir() const { return dir_; }
  void stop();

 private:
  uint16_t port_ = 0;
  std::string dir_;
  int pid_ = -1;
};

// A real SMTP server (tests/smtp/smtp_server.py, aiosmtpd); 0 picks a free port.
class SmtpServer : public ScriptServer {
 public:
  explicit SmtpServer(std::vector<std::string> args = {}, uint16_t port = 0);
  // Messages received so far (parsed JSON records), oldest first.
  std::vector<boost::json::value> messages() const;
  // Waits until at least n messages arrived.
  std::vector<boost::json::value> wait_for(size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;
};

// An OpenAI-style stand-in (tests/http/fake_ai.py).
class FakeAi : public ScriptServer {
 public:
  explicit FakeAi(std::vector<std::string> args = {}) : ScriptServer(FAKE_AI_SCRIPT, std::move(args)) {}
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port()); }
};

// Polls GET /api/jobs/{id} until pred(job) or the timeout; returns the last job seen.
boost::json::value wait_job(uint16_t port, int64_t id, const std::function<bool(const boost::json::value&)>& pred,
                            std::chrono::milliseconds timeout = std::chrono::seconds(60));
bool job_in(const boost::json::value& job, std::initializer_list<const char*> states);

}  // namespace harness
