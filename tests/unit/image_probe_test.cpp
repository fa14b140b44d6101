#include "domain/image.hpp"
#include "domain/image_decode.hpp"

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

// Issue 10, defect 14: images are decoded in full before they are accepted.

namespace {

// A PNG claiming `w` x `h` pixels over the real zlib stream of a 1024 x 1024 image: a
// decompression bomb when the claim is large (inflating it for 65535 x 65535 rows would take
// 16 GiB of output), a plain image at its real size.
std::string png_bomb(uint32_t w, uint32_t h) { return test_images::with_ihdr_size(test_images::real_png(1024, 1024), w, h); }

}  // namespace

TEST(ImageDecode, AcceptsRealImagesOfEveryFormat) {
  DecodeLimits limits;
  struct Case {
    std::string bytes;
    const char* type;
    int w, h;
  } cases[] = {{test_images::real_png(64, 32), "image/png", 64, 32},
               {test_images::real_jpeg(40, 30), "image/jpeg", 40, 30},
               {test_images::real_jpeg(300, 200, true), "image/jpeg", 300, 200},
               {test_images::real_webp(5, 6), "image/webp", 5, 6}};
  for (const auto& c : cases) {
    auto d = decode_image(c.bytes, limits);
    ASSERT_TRUE(d) << c.type << ": " << d.error().message;
    EXPECT_EQ(d->info.content_type, c.type);
    EXPECT_EQ(d->info.width, c.w);
    EXPECT_EQ(d->info.height, c.h);
    EXPECT_EQ(d->length, c.bytes.size()) << c.type;
  }
  // A skipped ancillary chunk is part of the image.
  auto padded = test_images::real_png(8, 8, 5000);
  auto d = decode_image(padded, limits);
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->length, padded.size());
}

TEST(ImageDecode, RefusesHeaderOnlyAndTruncatedImages) {
  DecodeLimits limits;
  auto header_only = test_images::png(64, 64).substr(0, 33);
  ASSERT_EQ(header_only.size(), 33u);
  ASSERT_TRUE(probe_image(header_only));  // what a header check accepted
  auto r = decode_image(header_only, limits);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::unsupported_media);
  EXPECT_FALSE(decode_image(test_images::png(64, 64), limits)) << "a fake IDAT is not an image";
  for (std::string full : {test_images::real_png(200, 100), test_images::real_jpeg(200, 100),
                           test_images::real_jpeg(200, 100, true), test_images::real_webp(200, 100)}) {
    auto cut = full.substr(0, full.size() * 2 / 3);
    auto t = decode_image(cut, limits);
    EXPECT_FALSE(t) << "a truncated " << (probe_image(full) ? probe_image(full)->content_type : "?") << " was accepted";
    if (!t) EXPECT_EQ(t.error().code, ErrorCode::unsupported_media);
  }
  EXPECT_FALSE(decode_image(test_images::jpeg(20, 10), limits));
  EXPECT_FALSE(decode_image(test_images::webp(5, 6, test_images::WebpKind::lossless), limits));
}

TEST(ImageDecode, TrailingDataIsNotPartOfTheImage) {
  DecodeLimits limits;
  std::string html = "<html><script>alert(document.cookie)</script></html>";
  for (std::string image : {test_images::real_png(16, 16), test_images::real_jpeg(16, 16), test_images::real_webp(16, 16)}) {
    auto d = decode_image(image + html, limits);
    ASSERT_TRUE(d) << d.error().message;
    EXPECT_EQ(d->length, image.size());
  }
}

TEST(ImageDecode, PixelAndMemoryLimitsComeBeforeDecoding) {
  DecodeLimits limits;
  auto bomb = png_bomb(65535, 65535);
  ASSERT_TRUE(probe_image(bomb));  // what a header check accepted
  auto r = decode_image(bomb, limits);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::validation);
  EXPECT_EQ(r.error().field.value_or(""), "body");
  // Within the default limits, the same stream claiming its real size decodes.
  EXPECT_TRUE(decode_image(png_bomb(1024, 1024), limits));
  DecodeLimits small{.max_pixels = 1000, .max_memory = 1 << 20};
  for (std::string image : {test_images::real_png(40, 40), test_images::real_jpeg(40, 40), test_images::real_webp(40, 40)}) {
    auto over = decode_image(image, small);
    ASSERT_FALSE(over);
    EXPECT_EQ(over.error().code, ErrorCode::validation);
  }
  DecodeLimits little_memory{.max_pixels = 40'000'000, .max_memory = 64 * 1024};
  EXPECT_FALSE(decode_image(test_images::real_webp(200, 200), little_memory));           // 160 kB of pixels
  EXPECT_FALSE(decode_image(test_images::real_jpeg(1000, 1000, true), little_memory));  // coefficients
}
