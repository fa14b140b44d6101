#include "render/art.hpp"

#include <cairo.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace creatord::render {
namespace {

// splitmix64: a small, good, deterministic generator.
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  double unit() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }
  double range(double a, double b) { return a + (b - a) * unit(); }
};

uint64_t fnv1a(std::string_view s, uint64_t h = 1469598103934665603ULL) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

struct Rgb {
  double r, g, b;
};

Rgb hsv(double h, double s, double v) {
  h = std::fmod(h, 1.0) * 6.0;
  int i = static_cast<int>(h);
  double f = h - i, p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
  switch (i % 6) {
    case 0: return {v, t, p};
    case 1: return {q, v, p};
    case 2: return {p, v, t};
    case 3: return {p, q, v};
    case 4: return {t, p, v};
    default: return {v, p, q};
  }
}

cairo_status_t append_png(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

struct PngReader {
  std::string_view data;
  size_t pos = 0;
};

cairo_status_t read_png(void* closure, unsigned char* out, unsigned int length) {
  auto* r = static_cast<PngReader*>(closure);
  if (r->pos + length > r->data.size()) return CAIRO_STATUS_READ_ERROR;
  std::memcpy(out, r->data.data() + r->pos, length);
  r->pos += length;
  return CAIRO_STATUS_SUCCESS;
}

Result<std::string> encode(cairo_surface_t* surface) {
  std::string png;
  cairo_status_t st = cairo_surface_write_to_png_stream(surface, append_png, &png);
  if (st != CAIRO_STATUS_SUCCESS)
    return Error::make(ErrorCode::internal, std::string("PNG encoding failed: ") + cairo_status_to_string(st));
  return png;
}

std::string initials(const std::string& name) {
  std::string out;
  bool start = true;
  for (char c : name) {
    if (c == ' ' || c == '-' || c == '_') {
      start = true;
    } else if (start) {
      if (static_cast<unsigned char>(c) < 0x80) out.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
      start = false;
      if (out.size() == 2) break;
    }
  }
  return out.empty() ? "?" : out;
}

}  // namespace

Result<std::string> render_png(const ArtSpec& spec, const std::atomic<bool>* cancel,
                               const std::function<void(double)>& progress) {
  if (spec.width < 1 || spec.height < 1 || spec.width > 8192 || spec.height > 8192)
    return Error::make(ErrorCode::validation, "image size must be 1..8192 pixels a side");
  uint64_t h = fnv1a(spec.name);
  for (const auto& t : spec.tags) h = fnv1a(t, h ^ 0x2f);
  Rng rng{h ^ (spec.seed * 0x9e3779b97f4a7c15ULL) ^ (static_cast<uint64_t>(spec.variant) << 32) ^
          (spec.kind == ArtKind::banner ? 0xba11ULL : 0xa7a7ULL)};
  double base_hue = rng.unit();
  Rgb palette[5];
  for (int i = 0; i < 5; ++i) palette[i] = hsv(base_hue + 0.12 * i + rng.range(-0.03, 0.03), rng.range(0.45, 0.9), rng.range(0.55, 1.0));

  cairo_surface_t* surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, spec.width, spec.height);
  cairo_t* cr = cairo_create(surface);
  struct Cleanup {
    cairo_surface_t* s;
    cairo_t* c;
    ~Cleanup() {
      cairo_destroy(c);
      cairo_surface_destroy(s);
    }
  } cleanup{surface, cr};

  const double w = spec.width, ht = spec.height, m = std::min(w, ht);
  cairo_pattern_t* bg = spec.kind == ArtKind::avatar
                            ? cairo_pattern_create_radial(w / 2, ht / 2, 0, w / 2, ht / 2, m * 0.75)
                            : cairo_pattern_create_linear(0, 0, w, ht);
  Rgb a = hsv(base_hue, 0.35, 0.22), b = palette[0];
  cairo_pattern_add_color_stop_rgb(bg, 0, b.r * 0.5, b.g * 0.5, b.b * 0.5);
  cairo_pattern_add_color_stop_rgb(bg, 1, a.r, a.g, a.b);
  cairo_set_source(cr, bg);
  cairo_paint(cr);
  cairo_pattern_destroy(bg);

  const int shapes = std::max(0, spec.detail);
  for (int i = 0; i < shapes; ++i) {
    if ((i & 63) == 0) {
      if (cancel && cancel->load(std::memory_order_relaxed)) return Error::make(ErrorCode::unavailable, "cancelled");
      if (progress && (i & 1023) == 0) progress(static_cast<double>(i) / shapes);
    }
    const Rgb& c = palette[rng.next() % 5];
    cairo_set_source_rgba(cr, c.r, c.g, c.b, rng.range(0.04, 0.22));
    if (spec.kind == ArtKind::avatar) {
      double ang = rng.range(0, 2 * M_PI), dist = std::pow(rng.unit(), 0.7) * m * 0.48;
      double x = w / 2 + std::cos(ang) * dist, y = ht / 2 + std::sin(ang) * dist;
      double r = rng.range(0.01, 0.09) * m;
      if (rng.unit() < 0.6) {
        cairo_arc(cr, x, y, r, 0, 2 * M_PI);
      } else {
        int sides = 3 + static_cast<int>(rng.next() % 4);
        double rot = rng.range(0, 2 * M_PI);
        for (int k = 0; k < sides; ++k) {
          double t = rot + 2 * M_PI * k / sides;
          if (k == 0) cairo_move_to(cr, x + r * std::cos(t), y + r * std::sin(t));
          else cairo_line_to(cr, x + r * std::cos(t), y + r * std::sin(t));
        }
        cairo_close_path(cr);
      }
      cairo_fill(cr);
    } else {
      double y0 = rng.range(0, ht), amp = rng.range(0.02, 0.2) * ht, freq = rng.range(0.5, 4.0), phase = rng.range(0, 6.3);
      cairo_set_line_width(cr, rng.range(1.0, 0.02 * ht + 1));
      cairo_move_to(cr, 0, y0);
      for (int k = 1; k <= 24; ++k) {
        double x = w * k / 24.0;
        cairo_line_to(cr, x, y0 + amp * std::sin(phase + freq * 2 * M_PI * k / 24.0));
      }
      cairo_stroke(cr);
    }
  }

  // The creator's initials (avatar) or name (banner) over the artwork.
  std::string text = spec.kind == ArtKind::avatar ? initials(spec.name) : spec.name;
  cairo_select_font_face(cr, "Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
  cairo_set_font_size(cr, spec.kind == ArtKind::avatar ? m * 0.36 : ht * 0.18);
  cairo_text_extents_t ext;
  cairo_text_extents(cr, text.c_str(), &ext);
  double tx = spec.kind == ArtKind::avatar ? (w - ext.width) / 2 - ext.x_bearing : w * 0.05;
  double ty = spec.kind == ArtKind::avatar ? (ht - ext.height) / 2 - ext.y_bearing : ht * 0.85;
  cairo_set_source_rgba(cr, 0, 0, 0, 0.35);
  cairo_move_to(cr, tx + m * 0.008, ty + m * 0.008);
  cairo_show_text(cr, text.c_str());
  cairo_set_source_rgba(cr, 1, 1, 1, 0.92);
  cairo_move_to(cr, tx, ty);
  cairo_show_text(cr, text.c_str());
  if (progress) progress(1.0);
  cairo_surface_flush(surface);
  return encode(surface);
}

Result<std::string> thumbnail_png(std::string_view png, int max_side) {
  PngReader reader{png, 0};
  cairo_surface_t* src = cairo_image_surface_create_from_png_stream(read_png, &reader);
  if (cairo_surface_status(src) != CAIRO_STATUS_SUCCESS) {
    cairo_surface_destroy(src);
    return Error::make(ErrorCode::unsupported_media, "not a PNG that can be decoded");
  }
  int w = cairo_image_surface_get_width(src), h = cairo_image_surface_get_height(src);
  double scale = std::min(1.0, static_cast<double>(max_side) / std::max(w, h));
  int tw = std::max(1, static_cast<int>(std::lround(w * scale))), th = std::max(1, static_cast<int>(std::lround(h * scale)));
  cairo_surface_t* dst = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, tw, th);
  cairo_t* cr = cairo_create(dst);
  cairo_scale(cr, scale, scale);
  cairo_set_source_surface(cr, src, 0, 0);
  cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_GOOD);
  cairo_paint(cr);
  cairo_destroy(cr);
  cairo_surface_flush(dst);
  auto out = encode(dst);
  cairo_surface_destroy(dst);
  cairo_surface_destroy(src);
  return out;
}

}  // namespace creatord::render
