// A small stand-in for libFuzzer's driver, for builds without clang's fuzzer runtime (the
// default g++ build, and the ASan build of `make asan`): runs every file of the given corpus
// folders through LLVMFuzzerTestOneInput, then mutated copies of them (bit flips, byte edits,
// inserted and deleted runs, splices, dictionary tokens) for -max_total_time seconds from a
// fixed -seed, so a failure reproduces. A crash or abort fails the test; the input that caused
// it is written to ./crash-replay-<n> first. Coverage-guided fuzzing is `make fuzz`.
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

namespace {

std::string g_current;  // the input being run, written out if it crashes
const char* g_dump = "crash-replay";

void on_crash(int sig) {
  FILE* f = std::fopen(g_dump, "wb");
  if (f) {
    std::fwrite(g_current.data(), 1, g_current.size(), f);
    std::fclose(f);
  }
  std::fprintf(stderr, "replay: signal %d on an input of %zu bytes, saved as %s\n", sig, g_current.size(), g_dump);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void collect(const std::string& path, std::vector<std::string>& out) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return;
  if (!S_ISDIR(st.st_mode)) {
    out.push_back(read_file(path));
    return;
  }
  DIR* d = ::opendir(path.c_str());
  if (!d) return;
  std::vector<std::string> names;
  while (auto* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    names.emplace_back(e->d_name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());  // the same order every run
  for (auto& n : names) collect(path + "/" + n, out);
}

// Tokens from the seeds' languages, inserted whole: they get a blind mutator past the checks a
// random byte rarely passes.
const char* const kTokens[] = {"\r\n", "\r\n\r\n", "\n", "\0", "%00", "%2F", "%", "{{", "}}", "{{ params.x }}", "| raw",
                               "\"", "\\", "\\u0000", "{", "}", "[", "]", ":", ",", "null", "true", "-1",
                               "9223372036854775808", "1e999", "Content-Length: ", "Transfer-Encoding: chunked",
                               "Host: x", "0\r\n\r\n", "ffffffffffffffff\r\n", "@", "<", ">", "=?utf-8?b?", "..", "/",
                               "[[pipeline]]", "[[pipeline.step]]", "${HOME}", "\xff", "\xc3\xa9", "\xf0\x9f\x98\x80",
                               "IHDR", "IDAT", "IEND", "\xff\xd8\xff", "RIFF", "WEBPVP8 "};

std::string mutate(const std::vector<std::string>& corpus, std::mt19937_64& rng) {
  auto pick = [&](size_t n) { return n == 0 ? 0 : static_cast<size_t>(rng() % n); };
  std::string s = corpus.empty() ? std::string() : corpus[pick(corpus.size())];
  int rounds = 1 + static_cast<int>(pick(4));
  for (int r = 0; r < rounds; ++r) {
    switch (pick(7)) {
      case 0:  // flip a bit
        if (!s.empty()) s[pick(s.size())] ^= static_cast<char>(1u << pick(8));
        break;
      case 1:  // set a byte
        if (!s.empty()) s[pick(s.size())] = static_cast<char>(rng());
        break;
      case 2: {  // insert random bytes
        std::string ins(1 + pick(8), '\0');
        for (auto& c : ins) c = static_cast<char>(rng());
        s.insert(pick(s.size() + 1), ins);
        break;
      }
      case 3:  // delete a run
        if (!s.empty()) {
          size_t at = pick(s.size());
          s.erase(at, 1 + pick(std::min<size_t>(s.size() - at, 64)));
        }
        break;
      case 4:  // duplicate a run
        if (!s.empty()) {
          size_t at = pick(s.size());
          size_t len = 1 + pick(std::min<size_t>(s.size() - at, 256));
          s.insert(pick(s.size() + 1), s.substr(at, len));
        }
        break;
      case 5: {  // a token
        const char* t = kTokens[pick(sizeof kTokens / sizeof kTokens[0])];
        size_t len = t[0] == '\0' ? 1 : std::strlen(t);
        s.insert(pick(s.size() + 1), std::string(t, len));
        break;
      }
      case 6:  // splice with another entry
        if (!corpus.empty()) {
          const std::string& other = corpus[pick(corpus.size())];
          s = s.substr(0, pick(s.size() + 1)) + other.substr(pick(other.size() + 1));
        }
        break;
    }
  }
  if (s.size() > (1u << 16)) s.resize(1u << 16);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 5;
  uint64_t seed = 1;
  std::vector<std::string> paths;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("-max_total_time=", 0) == 0) seconds = std::atof(a.c_str() + 16);
    else if (a.rfind("-seed=", 0) == 0) seed = std::strtoull(a.c_str() + 6, nullptr, 10);
    else if (a.rfind("-", 0) == 0) continue;  // other libFuzzer flags: ignored
    else paths.push_back(a);
  }
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  std::signal(SIGABRT, on_crash);
  std::signal(SIGSEGV, on_crash);
  std::signal(SIGBUS, on_crash);
  std::signal(SIGFPE, on_crash);

  std::vector<std::string> corpus;
  for (auto& p : paths) collect(p, corpus);
  size_t runs = 0;
  for (auto& input : corpus) {
    g_current = input;
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(g_current.data()), g_current.size());
    ++runs;
  }
  std::mt19937_64 rng(seed);
  auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    g_current = mutate(corpus, rng);
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(g_current.data()), g_current.size());
    ++runs;
  }
  std::printf("replay: %zu seeds and %zu mutated inputs, seed %llu, no failure\n", corpus.size(), runs - corpus.size(),
              static_cast<unsigned long long>(seed));
  std::fflush(stdout);
  std::_Exit(0);  // the request target's server thread is still running
}
