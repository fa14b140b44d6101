// What a credential check costs on the request path: an API key (SHA-256 + a map lookup in the
// Keyring's snapshot is measured as SHA-256 alone), HS256, RS256 (2048-bit) and ES256 (P-256) JWT
// verification, each on one core. Tokens and keys come from tests/auth/jwt_tool.py.
//   build/auth_bench [--rounds 20000]
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "auth/api_keys.hpp"
#include "auth/jwt.hpp"

using namespace creatord;

namespace {
std::string shell(const std::string& command) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  char buf[4096];
  size_t n;
  while (p && (n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  if (p) ::pclose(p);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

template <class F>
void measure(const char* what, int rounds, F fn) {
  auto start = std::chrono::steady_clock::now();
  int ok = 0;
  for (int i = 0; i < rounds; ++i) ok += fn() ? 1 : 0;
  double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() / rounds;
  std::cout << fmt::format("{:<8} {:>8.2f} us per check  {:>9.0f} per second  ({} of {} valid)\n", what, us, 1e6 / us, ok, rounds);
}
}  // namespace

int main(int argc, char** argv) {
  int rounds = 20000;
  CLI::App app{"auth_bench"};
  app.add_option("--rounds", rounds);
  CLI11_PARSE(app, argc, argv);
  std::string tool = std::string(CREATORD_SOURCE_DIR) + "/tests/auth/jwt_tool.py";
  std::string dir = (std::filesystem::temp_directory_path() / "creatord-auth-bench").string();
  shell("/usr/bin/python3 " + tool + " keys " + dir);
  std::ifstream in(dir + "/jwks-all.json");
  auto keys = auth::parse_jwks(std::string(std::istreambuf_iterator<char>(in), {})).value();
  auth::JwtOptions o;
  o.hs256_secret = "a-bench-secret-of-at-least-32-characters";
  auto sign = [&](const std::string& args) {
    return shell("/usr/bin/python3 " + tool + " sign --exp-in 3600 --claims '{\"sub\":\"u\"}' " + args);
  };
  std::string hs = sign("--alg HS256 --key " + o.hs256_secret);
  std::string rs = sign("--alg RS256 --kid rsa1 --key " + dir + "/rsa1.pem");
  std::string es = sign("--alg ES256 --kid ec1 --key " + dir + "/ec1.pem");
  std::string key = auth::generate_key_secret();
  std::string want = auth::key_hash(key);
  int64_t now = std::time(nullptr);
  measure("api key", rounds, [&] { return auth::key_hash(key) == want; });
  measure("HS256", rounds, [&] { return auth::verify_jwt(hs, o, keys, now).ok(); });
  measure("RS256", rounds, [&] { return auth::verify_jwt(rs, o, keys, now).ok(); });
  measure("ES256", rounds, [&] { return auth::verify_jwt(es, o, keys, now).ok(); });
  std::filesystem::remove_all(dir);
}
