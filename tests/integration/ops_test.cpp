// Issue 14, operations: SIGHUP reloads tokens and the log level; systemd readiness (sd_notify).
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "harness.hpp"

using namespace harness;
using namespace std::chrono_literals;

namespace {

const std::string kOldToken = "ops-old-token-0123456789abcdef";
const std::string kNewToken = "ops-new-token-0123456789abcdef";

Headers bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

int create_creator(uint16_t port, const std::string& token, const std::string& handle) {
  return post_json(port, "/api/creators", R"({"name":"Reload","handle":")" + handle + R"("})", bearer(token)).status;
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path + ".tmp");
  out << text;
  out.close();
  std::filesystem::rename(path + ".tmp", path);
}

}  // namespace

TEST(Ops, SighupReloadsTokensAndLogLevelWithoutRestart) {
  std::string dir = temp_dir("reload");
  std::string tokens = dir + "/tokens", conf = dir + "/creatord.conf";
  write_file(tokens, "# one token per line\n" + kOldToken + "\n");
  write_file(conf, "log_level = \"info\"\napi_tokens_file = \"" + tokens + "\"\n");
  Server s({.args = {"--config", conf}});
  int pid = s.pid();

  EXPECT_EQ(create_creator(s.port(), kOldToken, "reload1"), 201);
  EXPECT_EQ(create_creator(s.port(), kNewToken, "reload2"), 401);
  EXPECT_TRUE(s.wait_output("\"msg\":\"request\"", 5s)) << "info level logs access lines";

  write_file(tokens, kNewToken + "\n");
  write_file(conf, "log_level = \"warn\"\napi_tokens_file = \"" + tokens + "\"\n");
  ASSERT_EQ(::kill(pid, SIGHUP), 0);
  ASSERT_TRUE(s.wait_output("configuration reloaded", 10s)) << s.output();
  size_t reloaded_at = s.output().find("configuration reloaded");

  EXPECT_EQ(create_creator(s.port(), kNewToken, "reload3"), 201);
  EXPECT_EQ(create_creator(s.port(), kOldToken, "reload4"), 401);
  EXPECT_EQ(s.pid(), pid);

  // A broken file is reported (at error level, after the access lines the requests above would
  // have written at info) and changes nothing.
  write_file(conf, "log_level = \"loud\nno-such-setting = 1\n");
  ASSERT_EQ(::kill(pid, SIGHUP), 0);
  ASSERT_TRUE(s.wait_output("reload failed", 10s)) << s.output();
  std::string out = s.output();
  std::string between = out.substr(reloaded_at, out.find("reload failed") - reloaded_at);
  EXPECT_EQ(between.find("\"msg\":\"request\""), std::string::npos) << "warn level: no access lines\n" << between;

  // A file that would leave a server with tokens without any is refused too.
  write_file(conf, "log_level = \"info\"\napi_tokens_file = \"" + tokens + "\"\n");
  write_file(tokens, "# none\n");
  ASSERT_EQ(::kill(pid, SIGHUP), 0);
  ASSERT_TRUE(s.wait_output("reload refused", 10s)) << s.output();
  EXPECT_EQ(create_creator(s.port(), kNewToken, "reload5"), 201);
  EXPECT_EQ(create_creator(s.port(), "", "reload6"), 401);
  EXPECT_EQ(s.stop(), 0);
  std::filesystem::remove_all(dir);
}

// Type=notify: READY=1 once the listener and the job engine are up, STOPPING=1 on the way out.
TEST(Ops, TellsSystemdWhenReadyAndWhenStopping) {
  std::string dir = temp_dir("notify");
  std::string path = dir + "/notify.sock";
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(path.size(), sizeof(addr.sun_path));
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  auto receive = [fd] {
    char buf[256];
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
  };
  Server s({.env = {{"NOTIFY_SOCKET", path}}});
  EXPECT_EQ(receive(), "READY=1");
  EXPECT_EQ(get(s.port(), "/readyz").status, 200);
  EXPECT_EQ(s.stop(), 0);
  EXPECT_EQ(receive(), "STOPPING=1");
  ::close(fd);
  std::filesystem::remove_all(dir);
}

// --log-format text: lines for a person (what a terminal gets by default); JSON lines otherwise.
TEST(Ops, TextLogsForPeopleJsonLinesForMachines) {
  Server s({.args = {"--log-format", "text"}, .expect_listening = false});
  ASSERT_TRUE(s.wait_output("creatord is listening on http://127.0.0.1:", 30s)) << s.output();
  std::string out = s.output();
  size_t at = out.find("http://127.0.0.1:") + 17;
  auto port = static_cast<uint16_t>(std::stoi(out.substr(at)));
  EXPECT_EQ(get(port, "/healthz").status, 200);
  ASSERT_TRUE(s.wait_output("INFO  GET /healthz 200 ", 5s)) << s.output();
  out = s.output();
  EXPECT_NE(out.find("INFO  listening"), std::string::npos) << out;
  EXPECT_EQ(out.find("{\"ts\""), std::string::npos) << "no JSON lines: " << out;
  EXPECT_EQ(out.find('\x1b'), std::string::npos) << "no colours into a pipe";
  EXPECT_EQ(s.stop(), 0);

  Server j;  // the harness reads stdout through a pipe: JSON lines by default
  EXPECT_NE(j.output().find("{\"ts\""), std::string::npos);
}
