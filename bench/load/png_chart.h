// troupe-bench's PNG charts: panels of line or scatter plots stacked top to bottom, rasterised
// in memory and written as an 8-bit RGB PNG. Self-contained on purpose (an embedded 5x8 bitmap
// font, Bresenham lines, zlib for the deflate stream), so the load tool needs no plotting
// library and its charts look the same everywhere. Plain functions; safe from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace troupe::load {

struct Series {
  std::string label;  // legend text; empty = not listed in the legend
  // Same length. A point with a NaN, infinite or beyond-1e300 coordinate is skipped, and a
  // line breaks there.
  std::vector<double> x, y;
  uint32_t rgb = 0;  // 0xRRGGBB; 0 = the panel's palette colour for this series' index
};

struct Panel {
  std::string title, x_label, y_label;
  std::vector<Series> series;  // may be empty: the panel then shows its axes only
  bool points = false;         // false: a 2 px polyline per series; true: a marker per point
};

struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // [height][width][3], row-major, top row first
};

// Draws `panels` top to bottom, each `panel_height` px high and `width` px wide, on white.
// Each axis spans its plottable data plus a 4% margin, with ticks at "nice" steps (1, 2 or
// 5 x 10^k); a single value or a flat series gets a padded range.
// kInvalidArgument: no panels, a size outside [200, 8192] x [120, 8192] (total height
// included), or a series whose x and y differ in length.
[[nodiscard]] absl::StatusOr<Image> RenderChart(const std::vector<Panel>& panels, int width = 1000,
                                                int panel_height = 360);

// PNG bytes of `image`: one IDAT holding every scanline with filter 0.
// REQUIRES: width, height > 0 and rgb.size() == width * height * 3.
std::string EncodePng(const Image& image);

// RenderChart + EncodePng, written to `path` (replacing it). RenderChart's errors, or
// kUnavailable naming the path and the OS error when the file cannot be written.
[[nodiscard]] absl::Status WritePng(const std::string& path, const std::vector<Panel>& panels,
                                    int width = 1000, int panel_height = 360);

}  // namespace troupe::load
