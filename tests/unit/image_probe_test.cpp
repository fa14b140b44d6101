#include "domain/image.hpp"

#include <gtest/gtest.h>

#include "test_images.hpp"

using namespace creatord;

TEST(ImageProbe, Png) {
  auto info = probe_image(test_images::png(640, 480));
  ASSERT_TRUE(info);
  EXPECT_EQ(info->content_type, "image/png");
  EXPECT_EQ(info->width, 640);
  EXPECT_EQ(info->height, 480);
}

TEST(ImageProbe, Jpeg) {
  auto info = probe_image(test_images::jpeg(1024, 768));
  ASSERT_TRUE(info);
  EXPECT_EQ(info->content_type, "image/jpeg");
  EXPECT_EQ(info->width, 1024);
  EXPECT_EQ(info->height, 768);
}

TEST(ImageProbe, WebpAllThreeKinds) {
  for (auto kind : {test_images::WebpKind::lossy, test_images::WebpKind::lossless, test_images::WebpKind::extended}) {
    auto info = probe_image(test_images::webp(300, 200, kind));
    ASSERT_TRUE(info);
    EXPECT_EQ(info->content_type, "image/webp");
    EXPECT_EQ(info->width, 300);
    EXPECT_EQ(info->height, 200);
  }
}

TEST(ImageProbe, RejectsEverythingElse) {
  EXPECT_FALSE(probe_image(""));
  EXPECT_FALSE(probe_image("GIF89a......................................"));
  EXPECT_FALSE(probe_image("<svg xmlns='http://www.w3.org/2000/svg'/>"));
  EXPECT_FALSE(probe_image(test_images::png(0, 10)));                 // zero width
  EXPECT_FALSE(probe_image(test_images::png(10, 70000)));             // implausible
  EXPECT_FALSE(probe_image(test_images::png(10, 10).substr(0, 20)));  // truncated
  EXPECT_FALSE(probe_image(std::string("\xFF\xD8\xFF\xD9", 4)));      // JPEG with no frame
}
