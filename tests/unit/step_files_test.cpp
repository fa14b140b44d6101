#include "jobs/step_files.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

using namespace creatord;
namespace fs = std::filesystem;

namespace {

struct Folders {
  fs::path top = fs::temp_directory_path() / ("step_files_" + std::to_string(::getpid()));
  fs::path step = top / "step";
  Folders() {
    fs::create_directories(step / "sub");
    std::ofstream(step / "in.png") << "inside";
    std::ofstream(step / "sub" / "deep.png") << "deeper";
    std::ofstream(top / "secret.png") << "outside";
    fs::create_symlink(top / "secret.png", step / "link.png");
    fs::create_symlink(step / "in.png", step / "alias.png");
    fs::create_symlink(top, step / "up");
  }
  ~Folders() { fs::remove_all(top); }
};

}  // namespace

TEST(StepFiles, ReadsFilesInsideTheFolderOnly) {
  Folders f;
  EXPECT_EQ(read_file_inside(f.step, "in.png", 100).value(), "inside");
  EXPECT_EQ(read_file_inside(f.step, "sub/deep.png", 100).value(), "deeper");
  EXPECT_EQ(read_file_inside(f.step, "sub/../in.png", 100).value(), "inside");
  EXPECT_EQ(read_file_inside(f.step, (f.step / "in.png").string(), 100).value(), "inside");  // absolute, inside
  EXPECT_EQ(read_file_inside(f.step, "alias.png", 100).value(), "inside");  // a link that stays inside
  EXPECT_FALSE(read_file_inside(f.step, "in.png", 3));                      // too large
}

TEST(StepFiles, EveryWayOutGetsTheSameAnswer) {
  Folders f;
  std::string why;
  const std::vector<std::string> paths = {"../secret.png", (f.top / "secret.png").string(), "link.png", "up/secret.png",
                                          "../../../../../../etc/passwd", "/etc/passwd", "no-such.png", "../no-such.png",
                                          "sub", ".", ""};
  for (const auto& path : paths) {
    auto r = read_file_inside(f.step, path, 1 << 20, &why);
    ASSERT_FALSE(r) << path;
    EXPECT_EQ(r.error().message, kNoFileInFolder) << path;
    EXPECT_FALSE(why.empty()) << path;  // the reason goes to the log
  }
}
