#include "domain/image_decode.hpp"

#include <cctype>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>
#include <jpeglib.h>
#include <png.h>
#include <webp/decode.h>

namespace creatord {
namespace {

// The decoders report errors with longjmp, so the code between setjmp and a possible longjmp
// holds no object with a destructor: plain structs, C buffers freed on both paths.
struct Outcome {
  bool ok = false;
  bool over_limit = false;
  char message[200] = {};
  uint32_t width = 0, height = 0;
  size_t length = 0;
};

void set_message(Outcome& out, const char* text) { std::snprintf(out.message, sizeof out.message, "%s", text); }

// ---- PNG ----

struct PngSource {
  const unsigned char* data;
  size_t size;
  size_t pos;
  Outcome* out;
  jmp_buf jump;
};

void png_read(png_structp png, png_bytep dest, size_t n) {
  auto* src = static_cast<PngSource*>(png_get_io_ptr(png));
  if (n > src->size - src->pos) png_error(png, "the file ends early (truncated)");
  std::memcpy(dest, src->data + src->pos, n);
  src->pos += n;
}

void png_fail(png_structp png, png_const_charp msg) {
  auto* src = static_cast<PngSource*>(png_get_error_ptr(png));
  if (!src->out->over_limit) set_message(*src->out, msg);
  std::longjmp(src->jump, 1);
}

void png_warn(png_structp, png_const_charp) {}

void decode_png(const unsigned char* data, size_t size, const DecodeLimits& limits, Outcome& out) {
  PngSource src{data, size, 0, &out, {}};
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_fail, png_warn);
  if (!png) return set_message(out, "out of memory");
  png_infop info = png_create_info_struct(png);
  png_bytep volatile row = nullptr;
  if (!info || setjmp(src.jump)) {
    if (row) png_free(png, row);
    png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
    return;
  }
  png_set_read_fn(png, &src, png_read);
  png_set_user_limits(png, 65535, 65535);
  png_set_chunk_cache_max(png, 1000);  // ancillary chunks, each a possible allocation
  png_set_chunk_malloc_max(png, limits.max_memory);
  png_read_info(png, info);
  uint32_t w = png_get_image_width(png, info), h = png_get_image_height(png, info);
  if (uint64_t{w} * h > limits.max_pixels) {
    out.over_limit = true;
    std::snprintf(out.message, sizeof out.message, "the image has %u x %u pixels; at most %llu are accepted", w, h,
                  static_cast<unsigned long long>(limits.max_pixels));
    png_error(png, out.message);
  }
  int passes = png_set_interlace_handling(png);
  png_read_update_info(png, info);
  size_t rowbytes = png_get_rowbytes(png, info);
  if (rowbytes > limits.max_memory) {
    out.over_limit = true;
    set_message(out, "a row of the image needs more memory than allowed");
    png_error(png, out.message);
  }
  row = static_cast<png_bytep>(png_malloc(png, rowbytes));
  for (int pass = 0; pass < passes; ++pass)
    for (uint32_t y = 0; y < h; ++y) png_read_row(png, row, nullptr);
  png_read_end(png, nullptr);  // the chunks after the pixels, up to and including IEND
  png_free(png, row);
  row = nullptr;
  out.ok = true;
  out.width = w;
  out.height = h;
  out.length = src.pos;
  png_destroy_read_struct(&png, &info, nullptr);
}

// ---- JPEG ----

struct JpegErrors {
  jpeg_error_mgr mgr;
  jmp_buf jump;
  Outcome* out;
};

void jpeg_fail(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegErrors*>(cinfo->err);
  char text[JMSG_LENGTH_MAX];
  (*cinfo->err->format_message)(cinfo, text);
  if (!err->out->over_limit) set_message(*err->out, text);
  std::longjmp(err->jump, 1);
}

// A warning (premature end of data, corrupt data skipped) means the file is damaged: refused.
void jpeg_message(j_common_ptr cinfo, int level) {
  if (level < 0) jpeg_fail(cinfo);
}

void decode_jpeg(const unsigned char* data, size_t size, const DecodeLimits& limits, Outcome& out) {
  jpeg_decompress_struct cinfo;
  JpegErrors err;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_fail;
  err.mgr.emit_message = jpeg_message;
  err.out = &out;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    return;
  }
  jpeg_create_decompress(&cinfo);
  cinfo.mem->max_memory_to_use = static_cast<long>(limits.max_memory);
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&cinfo, TRUE);
  uint32_t w = cinfo.image_width, h = cinfo.image_height;
  if (uint64_t{w} * h > limits.max_pixels) {
    out.over_limit = true;
    std::snprintf(out.message, sizeof out.message, "the image has %u x %u pixels; at most %llu are accepted", w, h,
                  static_cast<unsigned long long>(limits.max_pixels));
    std::longjmp(err.jump, 1);
  }
  cinfo.scale_num = 1;
  cinfo.scale_denom = 8;
  cinfo.dct_method = JDCT_IFAST;
  cinfo.do_fancy_upsampling = FALSE;
  jpeg_start_decompress(&cinfo);
  JSAMPARRAY row = (*cinfo.mem->alloc_sarray)(reinterpret_cast<j_common_ptr>(&cinfo), JPOOL_IMAGE,
                                              cinfo.output_width * cinfo.output_components, 1);
  while (cinfo.output_scanline < cinfo.output_height) jpeg_read_scanlines(&cinfo, row, 1);
  jpeg_finish_decompress(&cinfo);  // reads on to EOI
  out.ok = true;
  out.width = w;
  out.height = h;
  out.length = static_cast<size_t>(cinfo.src->next_input_byte - data);
  jpeg_destroy_decompress(&cinfo);
}

// ---- WebP ----

void decode_webp(const unsigned char* data, size_t size, const DecodeLimits& limits, Outcome& out) {
  if (size < 12) return set_message(out, "the file ends early (truncated)");
  size_t riff = 8 + (size_t{data[4]} | (size_t{data[5]} << 8) | (size_t{data[6]} << 16) | (size_t{data[7]} << 24));
  if (riff > size) return set_message(out, "the file ends early (truncated)");
  WebPBitstreamFeatures features;
  if (WebPGetFeatures(data, riff, &features) != VP8_STATUS_OK) return set_message(out, "not a valid WebP image");
  if (features.has_animation) return set_message(out, "animated WebP is not accepted");
  uint64_t pixels = uint64_t(features.width) * uint64_t(features.height);
  if (pixels > limits.max_pixels || pixels * 4 > limits.max_memory) {
    out.over_limit = true;
    std::snprintf(out.message, sizeof out.message, "the image has %d x %d pixels; at most %llu are accepted",
                  features.width, features.height, static_cast<unsigned long long>(limits.max_pixels));
    return;
  }
  int w = 0, h = 0;
  uint8_t* pixels_out = WebPDecodeRGBA(data, riff, &w, &h);
  if (!pixels_out) return set_message(out, "the image data is corrupt or truncated");
  WebPFree(pixels_out);
  out.ok = true;
  out.width = static_cast<uint32_t>(w);
  out.height = static_cast<uint32_t>(h);
  out.length = riff;
}

}  // namespace

Result<DecodedImage> decode_image(std::string_view bytes, const DecodeLimits& limits) {
  auto sniffed = probe_image(bytes);
  if (!sniffed) return Error::make(ErrorCode::unsupported_media, "the body is not a PNG, JPEG or WebP image");
  auto data = reinterpret_cast<const unsigned char*>(bytes.data());
  Outcome out;
  if (sniffed->content_type == "image/png") decode_png(data, bytes.size(), limits, out);
  else if (sniffed->content_type == "image/jpeg") decode_jpeg(data, bytes.size(), limits, out);
  else decode_webp(data, bytes.size(), limits, out);
  std::string kind = sniffed->content_type.substr(6);
  for (auto& c : kind) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (out.over_limit) return Error::make(ErrorCode::validation, out.message, "body");
  if (!out.ok)
    return Error::make(ErrorCode::unsupported_media,
                       fmt::format("the body is not a valid {} image: {}", kind == "WEBP" ? "WebP" : kind,
                                   out.message[0] ? out.message : "it does not decode"));
  DecodedImage d;
  d.info = ImageInfo{sniffed->content_type, static_cast<int>(out.width), static_cast<int>(out.height)};
  d.length = out.length;
  return d;
}

}  // namespace creatord
