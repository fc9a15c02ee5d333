// Rasteriser and PNG encoder behind png_chart.h. A chart is drawn straight into an RGB buffer:
// each panel lays out its title, tick labels and axis labels from the text sizes, draws grid,
// data (clipped to the plot area), frame, ticks, then a legend in the corner with the least
// data under it. Text uses the embedded 5x8 font below, scaled 2x on charts of ordinary size.
// The PNG is the minimal valid one: IHDR, a single zlib IDAT of filter-0 scanlines, IEND.
#include "bench/load/png_chart.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "common/status_macros.h"

namespace troupe::load {
namespace {

// ---- font ----

// Glyphs for ASCII 32..126, one byte per row with bit 4 the leftmost of 5 columns. Rows 0-6
// hold capitals and digits (row 6 sits on the baseline); row 7 holds descenders (g j p q y , ;).
constexpr int kGlyphHeight = 8;
constexpr int kCapHeight = 7;
constexpr int kAdvance = 6;  // 5 columns + 1 column of spacing
constexpr uint8_t kFont[95][kGlyphHeight] = {
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00},  // space
    {0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x04, 0x00},  // !
    {0x0A, 0x0A, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00},  // "
    {0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A, 0x00},  // #
    {0x04, 0x0F, 0x14, 0x0E, 0x05, 0x1E, 0x04, 0x00},  // $
    {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03, 0x00},  // %
    {0x0C, 0x12, 0x14, 0x08, 0x15, 0x12, 0x0D, 0x00},  // &
    {0x04, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00},  // '
    {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02, 0x00},  // (
    {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08, 0x00},  // )
    {0x00, 0x04, 0x15, 0x0E, 0x15, 0x04, 0x00, 0x00},  // *
    {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00, 0x00},  // +
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x04, 0x08},  // ,
    {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00, 0x00},  // -
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00},  // .
    {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00, 0x00},  // /
    {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E, 0x00},  // 0
    {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E, 0x00},  // 1
    {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F, 0x00},  // 2
    {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E, 0x00},  // 3
    {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02, 0x00},  // 4
    {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E, 0x00},  // 5
    {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E, 0x00},  // 6
    {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08, 0x00},  // 7
    {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E, 0x00},  // 8
    {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C, 0x00},  // 9
    {0x00, 0x00, 0x04, 0x00, 0x00, 0x04, 0x00, 0x00},  // :
    {0x00, 0x00, 0x04, 0x00, 0x00, 0x04, 0x04, 0x08},  // ;
    {0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02, 0x00},  // <
    {0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00, 0x00},  // =
    {0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08, 0x00},  // >
    {0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04, 0x00},  // ?
    {0x0E, 0x11, 0x17, 0x15, 0x17, 0x10, 0x0E, 0x00},  // @
    {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11, 0x00},  // A
    {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E, 0x00},  // B
    {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E, 0x00},  // C
    {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C, 0x00},  // D
    {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F, 0x00},  // E
    {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10, 0x00},  // F
    {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F, 0x00},  // G
    {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11, 0x00},  // H
    {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E, 0x00},  // I
    {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C, 0x00},  // J
    {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11, 0x00},  // K
    {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F, 0x00},  // L
    {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11, 0x00},  // M
    {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11, 0x00},  // N
    {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E, 0x00},  // O
    {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10, 0x00},  // P
    {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D, 0x00},  // Q
    {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11, 0x00},  // R
    {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E, 0x00},  // S
    {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x00},  // T
    {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E, 0x00},  // U
    {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04, 0x00},  // V
    {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A, 0x00},  // W
    {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11, 0x00},  // X
    {0x11, 0x11, 0x0A, 0x04, 0x04, 0x04, 0x04, 0x00},  // Y
    {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F, 0x00},  // Z
    {0x0E, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0E, 0x00},  // [
    {0x00, 0x10, 0x08, 0x04, 0x02, 0x01, 0x00, 0x00},  // backslash
    {0x0E, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0E, 0x00},  // ]
    {0x04, 0x0A, 0x11, 0x00, 0x00, 0x00, 0x00, 0x00},  // ^
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F},  // _
    {0x08, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00},  // `
    {0x00, 0x00, 0x0E, 0x01, 0x0F, 0x11, 0x0F, 0x00},  // a
    {0x10, 0x10, 0x1E, 0x11, 0x11, 0x11, 0x1E, 0x00},  // b
    {0x00, 0x00, 0x0E, 0x10, 0x10, 0x11, 0x0E, 0x00},  // c
    {0x01, 0x01, 0x0F, 0x11, 0x11, 0x11, 0x0F, 0x00},  // d
    {0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E, 0x00},  // e
    {0x06, 0x09, 0x08, 0x1C, 0x08, 0x08, 0x08, 0x00},  // f
    {0x00, 0x00, 0x0F, 0x11, 0x11, 0x0F, 0x01, 0x0E},  // g
    {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11, 0x00},  // h
    {0x04, 0x00, 0x0C, 0x04, 0x04, 0x04, 0x0E, 0x00},  // i
    {0x02, 0x00, 0x06, 0x02, 0x02, 0x02, 0x12, 0x0C},  // j
    {0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12, 0x00},  // k
    {0x0C, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E, 0x00},  // l
    {0x00, 0x00, 0x1A, 0x15, 0x15, 0x15, 0x15, 0x00},  // m
    {0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11, 0x00},  // n
    {0x00, 0x00, 0x0E, 0x11, 0x11, 0x11, 0x0E, 0x00},  // o
    {0x00, 0x00, 0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10},  // p
    {0x00, 0x00, 0x0F, 0x11, 0x11, 0x0F, 0x01, 0x01},  // q
    {0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10, 0x00},  // r
    {0x00, 0x00, 0x0F, 0x10, 0x0E, 0x01, 0x1E, 0x00},  // s
    {0x08, 0x08, 0x1C, 0x08, 0x08, 0x09, 0x06, 0x00},  // t
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0D, 0x00},  // u
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x0A, 0x04, 0x00},  // v
    {0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0A, 0x00},  // w
    {0x00, 0x00, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x00},  // x
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x0F, 0x01, 0x0E},  // y
    {0x00, 0x00, 0x1F, 0x02, 0x04, 0x08, 0x1F, 0x00},  // z
    {0x03, 0x04, 0x04, 0x08, 0x04, 0x04, 0x03, 0x00},  // {
    {0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x00},  // |
    {0x18, 0x04, 0x04, 0x02, 0x04, 0x04, 0x18, 0x00},  // }
    {0x00, 0x00, 0x08, 0x15, 0x02, 0x00, 0x00, 0x00},  // ~
};

// Width in pixels of `text` drawn at `scale`, without the spacing after the last glyph.
int TextWidth(std::string_view text, int scale) {
  return text.empty() ? 0 : (static_cast<int>(text.size()) * kAdvance - 1) * scale;
}

// ---- canvas ----

constexpr uint32_t kWhite = 0xFFFFFF;
constexpr uint32_t kInk = 0x202020;  // text, frame, ticks
constexpr uint32_t kGrid = 0xE6E6E6;
constexpr uint32_t kLegendFrame = 0xA0A0A0;
// Ten distinct hues (Tableau 10); a series with rgb == 0 takes kPalette[index % 10].
constexpr uint32_t kPalette[] = {0x1F77B4, 0xFF7F0E, 0x2CA02C, 0xD62728, 0x9467BD,
                                 0x8C564B, 0xE377C2, 0x7F7F7F, 0xBCBD22, 0x17BECF};

struct Rect {
  int x0, y0, x1, y1;  // inclusive corners
};

// Drawing primitives over an Image; every write is clipped to the clip rectangle (the whole
// image unless narrowed), so callers may draw partly outside it.
class Canvas {
 public:
  explicit Canvas(Image& image)  // must outlive this
      : image_(image), clip_{0, 0, image.width - 1, image.height - 1} {}

  // REQUIRES: `clip` lies inside the image.
  void SetClip(Rect clip) { clip_ = clip; }

  void Fill(Rect r, uint32_t rgb) {
    for (int y = std::max(r.y0, clip_.y0); y <= std::min(r.y1, clip_.y1); ++y) {
      for (int x = std::max(r.x0, clip_.x0); x <= std::min(r.x1, clip_.x1); ++x) {
        uint8_t* p = &image_.rgb[(static_cast<size_t>(y) * image_.width + x) * 3];
        p[0] = rgb >> 16;
        p[1] = (rgb >> 8) & 0xFF;
        p[2] = rgb & 0xFF;
      }
    }
  }

  void Frame(Rect r, uint32_t rgb) {
    Fill({r.x0, r.y0, r.x1, r.y0}, rgb);
    Fill({r.x0, r.y1, r.x1, r.y1}, rgb);
    Fill({r.x0, r.y0, r.x0, r.y1}, rgb);
    Fill({r.x1, r.y0, r.x1, r.y1}, rgb);
  }

  // Bresenham from (x0, y0) to (x1, y1), stamping a thickness x thickness square per step.
  void Line(int x0, int y0, int x1, int y1, int thickness, uint32_t rgb) {
    const int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0);
    const int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    const int lo = -(thickness - 1) / 2, hi = thickness / 2;
    for (int err = dx + dy;;) {
      Fill({x0 + lo, y0 + lo, x0 + hi, y0 + hi}, rgb);
      if (x0 == x1 && y0 == y1) break;
      const int e2 = 2 * err;
      if (e2 >= dy) {
        err += dy;
        x0 += sx;
      }
      if (e2 <= dx) {
        err += dx;
        y0 += sy;
      }
    }
  }

  void Disc(int cx, int cy, int radius, uint32_t rgb) {
    for (int dy = -radius; dy <= radius; ++dy) {
      for (int dx = -radius; dx <= radius; ++dx) {
        if (dx * dx + dy * dy <= radius * radius + radius) {
          Fill({cx + dx, cy + dy, cx + dx, cy + dy}, rgb);
        }
      }
    }
  }

  // `text` with its top-left corner at (x, y); each font pixel becomes a scale x scale block.
  void Text(int x, int y, std::string_view text, int scale, uint32_t rgb) {
    ForEachInk(text, [&](int col, int row) {
      Fill({x + col * scale, y + row * scale, x + (col + 1) * scale - 1, y + (row + 1) * scale - 1},
           rgb);
    });
  }

  // `text` turned 90 degrees counter-clockwise (read bottom to top), its bottom-left at (x, y).
  void TextUp(int x, int y, std::string_view text, int scale, uint32_t rgb) {
    ForEachInk(text, [&](int col, int row) {
      Fill({x + row * scale, y - (col + 1) * scale + 1, x + (row + 1) * scale - 1, y - col * scale},
           rgb);
    });
  }

  // Pixels inside `r` that are neither background nor grid, i.e. data already drawn there.
  int CountInk(Rect r) const {
    int count = 0;
    for (int y = std::max(r.y0, 0); y <= std::min(r.y1, image_.height - 1); ++y) {
      for (int x = std::max(r.x0, 0); x <= std::min(r.x1, image_.width - 1); ++x) {
        const uint8_t* p = &image_.rgb[(static_cast<size_t>(y) * image_.width + x) * 3];
        const uint32_t rgb = (uint32_t{p[0]} << 16) | (uint32_t{p[1]} << 8) | p[2];
        count += rgb != kWhite && rgb != kGrid;
      }
    }
    return count;
  }

 private:
  // Calls fn(column, row) for every set font pixel of `text`, columns counted across the whole
  // string. Characters outside the font are drawn as '?'.
  template <typename Fn>
  static void ForEachInk(std::string_view text, Fn fn) {
    for (size_t i = 0; i < text.size(); ++i) {
      const unsigned char c = text[i];
      const uint8_t* glyph = kFont[(c >= 32 && c <= 126 ? c : '?') - 32];
      for (int row = 0; row < kGlyphHeight; ++row) {
        for (int col = 0; col < 5; ++col) {
          if (glyph[row] & (0x10 >> col)) fn(static_cast<int>(i) * kAdvance + col, row);
        }
      }
    }
  }

  Image& image_;
  Rect clip_;
};

// ---- axes ----

struct Axis {
  double lo = 0.0, hi = 1.0;  // the data range plus margins
  double step = 1.0;          // between ticks
  std::vector<double> ticks;
  std::vector<std::string> labels;
  int max_label_width = 0;  // px, at the panel's text scale
};

// Ticks at multiples of a 1/2/5 x 10^k step chosen so [lo, hi] holds about `target` of them
// (Heckbert's "nice numbers"). Like matplotlib, the axis is the data range plus a margin, and
// the ticks fall inside it: extending to the enclosing ticks could nearly double the range.
Axis NiceAxis(double lo, double hi, int target, int scale) {
  // A flat range (one value, or a flat line) is padded so it still gets a visible axis.
  if (hi - lo <= 1e-9 * std::max(std::abs(lo), std::abs(hi))) {
    const double pad = lo != 0.0 ? std::abs(lo) * 0.1 : 1.0;
    lo -= pad;
    hi += pad;
  }
  // Keeps extreme points and flat lines off the frame.
  const double margin = 0.04 * (hi - lo);
  lo -= margin;
  hi += margin;
  const double raw = (hi - lo) / (target - 1);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / magnitude;
  const double step = magnitude * (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10);
  const double first = std::ceil(lo / step - 1e-9), last = std::floor(hi / step + 1e-9);
  // Decimals enough to tell steps apart; %g once fixed notation gets too long.
  const int decimals = step >= 1.0 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
  const bool use_g = decimals > 6 || std::max(std::abs(first), std::abs(last)) * step >= 1e9;
  Axis axis;
  axis.lo = lo;
  axis.hi = hi;
  axis.step = step;
  for (int i = 0; i <= static_cast<int>(last - first); ++i) {
    const double k = first + i;
    const double v = k == 0.0 ? 0.0 : k * step;  // exact zero: no "-0"
    char buf[32];
    if (use_g) {
      std::snprintf(buf, sizeof(buf), "%.6g", v);
    } else {
      std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
    }
    axis.ticks.push_back(v);
    axis.labels.push_back(buf);
    axis.max_label_width = std::max(axis.max_label_width, TextWidth(buf, scale));
  }
  return axis;
}

// The densest nice axis (about 5 ticks or fewer) whose labels, spread over `length` px, keep two
// glyphs of space between them; `horizontal` labels take their width, vertical ones their height.
Axis FitAxis(double lo, double hi, int length, bool horizontal, int scale) {
  Axis axis;
  for (int target = 5; target >= 2; --target) {
    axis = NiceAxis(lo, hi, target, scale);
    const int extent = horizontal ? axis.max_label_width : kGlyphHeight * scale;
    const double spacing = axis.step / (axis.hi - axis.lo) * length;
    if (spacing >= extent + 2 * kAdvance * scale) break;
  }
  return axis;
}

// Plottable points: NaN and infinities are skipped, and so are magnitudes above 1e300, whose
// ranges would overflow to infinity.
bool Plottable(double x, double y) { return std::abs(x) <= 1e300 && std::abs(y) <= 1e300; }

struct Extent {
  double x_lo, x_hi, y_lo, y_hi;
};

// Extent of the plottable points of every series; [0, 1] on an axis without any.
Extent DataExtent(const Panel& panel) {
  Extent e{INFINITY, -INFINITY, INFINITY, -INFINITY};
  for (const Series& s : panel.series) {
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!Plottable(s.x[i], s.y[i])) continue;
      e.x_lo = std::min(e.x_lo, s.x[i]);
      e.x_hi = std::max(e.x_hi, s.x[i]);
      e.y_lo = std::min(e.y_lo, s.y[i]);
      e.y_hi = std::max(e.y_hi, s.y[i]);
    }
  }
  if (e.x_lo > e.x_hi) e = {0.0, 1.0, e.y_lo, e.y_hi};
  if (e.y_lo > e.y_hi) e = {e.x_lo, e.x_hi, 0.0, 1.0};
  return e;
}

// ---- panel ----

uint32_t SeriesColor(const Series& s, size_t index) {
  return s.rgb != 0 ? s.rgb : kPalette[index % std::size(kPalette)];
}

// Legend box listing labelled series, in whichever inner corner of `plot` covers the least data.
void DrawLegend(Canvas& canvas, const Panel& panel, Rect plot, int s) {
  int rows = 0, label_width = 0;
  for (const Series& series : panel.series) {
    if (series.label.empty()) continue;
    ++rows;
    label_width = std::max(label_width, TextWidth(series.label, s));
  }
  if (rows == 0) return;
  const int pad = 5 * s, swatch = 14 * s, row_height = 11 * s;
  const int w = pad + swatch + pad + label_width + pad;
  const int h = pad + rows * row_height - 3 * s + pad;
  const int inset = 6 * s;
  const Rect corners[] = {
      {plot.x1 - inset - w, plot.y0 + inset, plot.x1 - inset, plot.y0 + inset + h},  // top right
      {plot.x0 + inset, plot.y0 + inset, plot.x0 + inset + w, plot.y0 + inset + h},  // top left
      {plot.x1 - inset - w, plot.y1 - inset - h, plot.x1 - inset, plot.y1 - inset},  // bottom right
      {plot.x0 + inset, plot.y1 - inset - h, plot.x0 + inset + w, plot.y1 - inset},  // bottom left
  };
  Rect box = corners[0];
  int least = canvas.CountInk(box);
  for (const Rect& r : corners) {
    if (const int ink = canvas.CountInk(r); ink < least) {
      box = r;
      least = ink;
    }
  }
  canvas.Fill(box, kWhite);
  canvas.Frame(box, kLegendFrame);
  int y = box.y0 + pad;
  for (size_t i = 0; i < panel.series.size(); ++i) {
    const Series& series = panel.series[i];
    if (series.label.empty()) continue;
    const uint32_t color = SeriesColor(series, i);
    const int mid = y + kCapHeight * s / 2, x = box.x0 + pad;
    if (panel.points) {
      canvas.Disc(x + swatch / 2, mid, s + 1, color);
    } else {
      canvas.Fill({x, mid - s + 1, x + swatch - 1, mid + s}, color);
    }
    canvas.Text(x + swatch + pad, y, series.label, s, kInk);
    y += row_height;
  }
}

// Draws one panel into the band of rows [top, top + height); `s` is the text scale.
// Vertical budget, in font pixels: 6 + title 8 + 6 above the plot; below it 5 + tick labels
// 8 + 5 + axis label 8 + 4.
void DrawPanel(Canvas& canvas, const Panel& panel, int top, int width, int height, int s) {
  const Extent e = DataExtent(panel);
  const Rect band{0, top, width - 1, top + height - 1};  // long labels must not reach a neighbour
  canvas.SetClip(band);

  Rect plot{0, top + 20 * s, width - 1 - 14 * s, top + height - 1 - 30 * s};
  const Axis y_axis = FitAxis(e.y_lo, e.y_hi, plot.y1 - plot.y0, /*horizontal=*/false, s);
  plot.x0 = 5 * s + (panel.y_label.empty() ? 0 : kGlyphHeight * s + 5 * s) +
            y_axis.max_label_width + 5 * s;
  const Axis x_axis = FitAxis(e.x_lo, e.x_hi, plot.x1 - plot.x0, /*horizontal=*/true, s);
  auto px = [&](double x) {
    return plot.x0 + static_cast<int>(std::lround((x - x_axis.lo) / (x_axis.hi - x_axis.lo) *
                                                  (plot.x1 - plot.x0)));
  };
  auto py = [&](double y) {
    return plot.y1 - static_cast<int>(std::lround((y - y_axis.lo) / (y_axis.hi - y_axis.lo) *
                                                  (plot.y1 - plot.y0)));
  };

  for (double t : x_axis.ticks) canvas.Fill({px(t), plot.y0, px(t), plot.y1}, kGrid);
  for (double t : y_axis.ticks) canvas.Fill({plot.x0, py(t), plot.x1, py(t)}, kGrid);

  canvas.SetClip(plot);
  for (size_t i = 0; i < panel.series.size(); ++i) {
    const Series& series = panel.series[i];
    const uint32_t color = SeriesColor(series, i);
    bool have_prev = false;  // a non-finite point breaks the line
    int prev_x = 0, prev_y = 0;
    for (size_t j = 0; j < series.x.size(); ++j) {
      if (!Plottable(series.x[j], series.y[j])) {
        have_prev = false;
        continue;
      }
      const int x = px(series.x[j]), y = py(series.y[j]);
      const bool has_next = j + 1 < series.x.size() && Plottable(series.x[j + 1], series.y[j + 1]);
      if (panel.points || (!have_prev && !has_next)) {  // a lone point would vanish as a line
        canvas.Disc(x, y, s + 1, color);
      } else if (have_prev) {
        canvas.Line(prev_x, prev_y, x, y, 2, color);
      }
      have_prev = true;
      prev_x = x;
      prev_y = y;
    }
  }
  canvas.SetClip(band);

  canvas.Frame(plot, kInk);
  for (size_t i = 0; i < x_axis.ticks.size(); ++i) {
    const int x = px(x_axis.ticks[i]);
    const int w = TextWidth(x_axis.labels[i], s);
    canvas.Fill({x, plot.y1, x, plot.y1 + 3 * s}, kInk);
    canvas.Text(std::max(0, std::min(x - w / 2, width - w)), plot.y1 + 5 * s, x_axis.labels[i], s,
                kInk);
  }
  for (size_t i = 0; i < y_axis.ticks.size(); ++i) {
    const int y = py(y_axis.ticks[i]);
    canvas.Fill({plot.x0 - 3 * s, y, plot.x0, y}, kInk);
    canvas.Text(plot.x0 - 5 * s - TextWidth(y_axis.labels[i], s), y - kCapHeight * s / 2,
                y_axis.labels[i], s, kInk);
  }
  const int center_x = (plot.x0 + plot.x1) / 2, center_y = (plot.y0 + plot.y1) / 2;
  canvas.Text(std::max(0, width / 2 - TextWidth(panel.title, s) / 2), top + 6 * s, panel.title, s,
              kInk);
  canvas.Text(std::max(0, center_x - TextWidth(panel.x_label, s) / 2), plot.y1 + 18 * s,
              panel.x_label, s, kInk);
  canvas.TextUp(5 * s, center_y + TextWidth(panel.y_label, s) / 2, panel.y_label, s, kInk);
  DrawLegend(canvas, panel, plot, s);
}

// ---- png ----

void AppendU32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((v >> shift) & 0xFF));
  }
}

// length, type, data, CRC-32 of type + data (PNG spec section 5.3)
void AppendChunk(std::string& out, const char type[4], const std::string& data) {
  AppendU32(out, static_cast<uint32_t>(data.size()));
  out.append(type, 4);
  out += data;
  uLong crc = crc32(0L, reinterpret_cast<const Bytef*>(type), 4);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size()));
  AppendU32(out, static_cast<uint32_t>(crc));
}

}  // namespace

// ---- public ----

absl::StatusOr<Image> RenderChart(const std::vector<Panel>& panels, int width, int panel_height) {
  constexpr int kMaxSide = 8192;  // keeps the raw image under 200 MiB and zlib's sizes in range
  if (panels.empty()) return absl::InvalidArgumentError("chart has no panels");
  if (width < 200 || width > kMaxSide || panel_height < 120 ||
      static_cast<int64_t>(panel_height) * static_cast<int64_t>(panels.size()) > kMaxSide) {
    return absl::InvalidArgumentError(absl::StrCat("chart size ", width, "x", panel_height, " x ",
                                                   panels.size(), " panels outside [200, ",
                                                   kMaxSide, "] x [120, ", kMaxSide, "]"));
  }
  for (size_t p = 0; p < panels.size(); ++p) {
    for (const Series& s : panels[p].series) {
      if (s.x.size() != s.y.size()) {
        return absl::InvalidArgumentError(absl::StrCat("panel ", p, " series \"", s.label,
                                                       "\" has ", s.x.size(), " x but ", s.y.size(),
                                                       " y values"));
      }
    }
  }
  Image image;
  image.width = width;
  image.height = panel_height * static_cast<int>(panels.size());
  image.rgb.assign(static_cast<size_t>(image.width) * image.height * 3, 0xFF);
  Canvas canvas(image);
  const int scale = width >= 640 && panel_height >= 240 ? 2 : 1;
  for (size_t p = 0; p < panels.size(); ++p) {
    DrawPanel(canvas, panels[p], static_cast<int>(p) * panel_height, width, panel_height, scale);
  }
  return image;
}

std::string EncodePng(const Image& image) {
  TROUPE_CHECK(image.width > 0 && image.height > 0);
  TROUPE_CHECK(image.rgb.size() == static_cast<size_t>(image.width) * image.height * 3);
  const size_t row_bytes = static_cast<size_t>(image.width) * 3;
  std::string raw;
  raw.reserve(image.height * (row_bytes + 1));
  for (int y = 0; y < image.height; ++y) {
    raw.push_back('\0');  // filter type 0: the row as is
    raw.append(reinterpret_cast<const char*>(&image.rgb[y * row_bytes]), row_bytes);
  }
  uLongf z_size = compressBound(raw.size());
  std::string z(z_size, '\0');
  const int rc =
      compress2(reinterpret_cast<Bytef*>(z.data()), &z_size,
                reinterpret_cast<const Bytef*>(raw.data()), raw.size(), Z_DEFAULT_COMPRESSION);
  // With a compressBound-sized buffer only Z_MEM_ERROR remains: out of memory.
  TROUPE_CHECK_MSG(rc == Z_OK, "compress2 failed: %d", rc);
  z.resize(z_size);

  std::string ihdr;
  AppendU32(ihdr, image.width);
  AppendU32(ihdr, image.height);
  // bit depth 8, colour type 2 (RGB), deflate, adaptive filtering, no interlace
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);
  std::string png("\x89PNG\r\n\x1a\n", 8);
  AppendChunk(png, "IHDR", ihdr);
  AppendChunk(png, "IDAT", z);
  AppendChunk(png, "IEND", "");
  return png;
}

absl::Status WritePng(const std::string& path, const std::vector<Panel>& panels, int width,
                      int panel_height) {
  TROUPE_ASSIGN_OR_RETURN(const Image image, RenderChart(panels, width, panel_height));
  const std::string png = EncodePng(image);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  const bool written = std::fwrite(png.data(), 1, png.size(), f) == png.size();
  const int write_errno = errno;
  if (std::fclose(f) != 0 || !written) {
    return absl::UnavailableError(
        absl::StrCat("cannot write ", path, ": ", std::strerror(written ? errno : write_errno)));
  }
  return absl::OkStatus();
}

}  // namespace troupe::load
