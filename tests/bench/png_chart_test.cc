// PNG chart tests: the encoder's bytes are checked against the PNG format by hand (chunks, CRCs,
// inflated scanlines), and the renderer by looking for the pixels a series must produce.
#include "bench/load/png_chart.h"

#include <zlib.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace troupe::load {
namespace {

const std::string kSignature("\x89PNG\r\n\x1a\n", 8);

struct Chunk {
  std::string type, data;
};

uint32_t ReadU32(const std::string& bytes, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(bytes[at + i]);
  return v;
}

// Splits the bytes after the signature into chunks, failing the test on a bad length or CRC.
std::vector<Chunk> ParseChunks(const std::string& png) {
  std::vector<Chunk> chunks;
  size_t at = kSignature.size();
  while (at + 12 <= png.size()) {
    const uint32_t length = ReadU32(png, at);
    EXPECT_LE(at + 12 + length, png.size());
    Chunk chunk{png.substr(at + 4, 4), png.substr(at + 8, length)};
    const std::string typed = chunk.type + chunk.data;
    const uLong crc = crc32(0L, reinterpret_cast<const Bytef*>(typed.data()), typed.size());
    EXPECT_EQ(ReadU32(png, at + 8 + length), crc) << chunk.type;
    chunks.push_back(std::move(chunk));
    at += 12 + length;
  }
  EXPECT_EQ(at, png.size());
  return chunks;
}

Image Checkerboard(int width, int height) {
  Image image{width, height, {}};
  for (int i = 0; i < width * height; ++i) {
    const uint8_t v = i % 2 ? 0xFF : 0x00;
    image.rgb.insert(image.rgb.end(), {v, static_cast<uint8_t>(i), 0x7F});
  }
  return image;
}

bool IsRed(const Image& image, int x, int y) {
  const uint8_t* p = &image.rgb[(static_cast<size_t>(y) * image.width + x) * 3];
  return p[0] > 200 && p[1] < 60 && p[2] < 60;
}

int CountRed(const Image& image, int x0, int y0, int x1, int y1) {
  int count = 0;
  for (int y = y0; y < y1; ++y) {
    for (int x = x0; x < x1; ++x) count += IsRed(image, x, y);
  }
  return count;
}

Panel Diagonal(uint32_t rgb) {
  Panel panel{"Latency over time", "time (s)", "TTFT (ms)", {}, false};
  panel.series.push_back({"diagonal", {0, 5, 10}, {0, 5, 10}, rgb});
  return panel;
}

TEST(EncodePngTest, StartsWithSignatureAndHeader) {
  const std::string png = EncodePng(Checkerboard(7, 3));
  ASSERT_EQ(png.substr(0, 8), kSignature);
  const std::vector<Chunk> chunks = ParseChunks(png);
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[0].type, "IHDR");
  ASSERT_EQ(chunks[0].data.size(), 13u);
  EXPECT_EQ(ReadU32(chunks[0].data, 0), 7u);
  EXPECT_EQ(ReadU32(chunks[0].data, 4), 3u);
  EXPECT_EQ(chunks[0].data[8], 8);   // bit depth
  EXPECT_EQ(chunks[0].data[9], 2);   // colour type RGB
  EXPECT_EQ(chunks[0].data[12], 0);  // no interlace
  EXPECT_EQ(chunks[1].type, "IDAT");
  EXPECT_EQ(chunks[2].type, "IEND");
  EXPECT_TRUE(chunks[2].data.empty());
}

TEST(EncodePngTest, IdatInflatesToUnfilteredScanlines) {
  const Image image = Checkerboard(5, 4);
  const std::vector<Chunk> chunks = ParseChunks(EncodePng(image));
  ASSERT_EQ(chunks[1].type, "IDAT");
  const size_t row_bytes = 1 + 3 * image.width;
  std::string raw(image.height * row_bytes + 16, '\0');  // spare room: a longer stream shows
  uLongf raw_size = raw.size();
  ASSERT_EQ(
      uncompress(reinterpret_cast<Bytef*>(raw.data()), &raw_size,
                 reinterpret_cast<const Bytef*>(chunks[1].data.data()), chunks[1].data.size()),
      Z_OK);
  ASSERT_EQ(raw_size, image.height * row_bytes);
  for (int y = 0; y < image.height; ++y) {
    EXPECT_EQ(raw[y * row_bytes], '\0') << "filter byte of row " << y;
    const std::string row = raw.substr(y * row_bytes + 1, row_bytes - 1);
    EXPECT_EQ(row, std::string(image.rgb.begin() + y * (row_bytes - 1),
                               image.rgb.begin() + (y + 1) * (row_bytes - 1)));
  }
}

TEST(RenderChartTest, RedSeriesDrawsRedPixelsInsidePlotArea) {
  const absl::StatusOr<Image> image = RenderChart({Diagonal(0xFF0000)}, 1000, 360);
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->width, 1000);
  EXPECT_EQ(image->height, 360);
  // The diagonal crosses the middle of the plot area, which the legend (a corner) never covers.
  EXPECT_GT(CountRed(*image, 400, 120, 600, 240), 50);
}

TEST(RenderChartTest, BlankChartHasAxesTextAndNoRed) {
  Panel empty_series = Diagonal(0);
  empty_series.series[0].x.clear();
  empty_series.series[0].y.clear();
  const absl::StatusOr<Image> image =
      RenderChart({Panel{"Empty", "x", "y", {}, false}, empty_series}, 800, 300);
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->height, 600);
  EXPECT_EQ(CountRed(*image, 0, 0, image->width, image->height), 0);
  int dark = 0;
  for (size_t i = 0; i < image->rgb.size(); i += 3) dark += image->rgb[i] < 128;
  EXPECT_GT(dark, 1000);  // frame, ticks, labels and title
}

TEST(RenderChartTest, StacksPanelsTopToBottom) {
  const absl::StatusOr<Image> image =
      RenderChart({Panel{"Top", "", "", {}, false}, Diagonal(0xFF0000)}, 1000, 360);
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(CountRed(*image, 0, 0, 1000, 360), 0);
  EXPECT_GT(CountRed(*image, 400, 360 + 120, 600, 360 + 240), 50);
}

TEST(RenderChartTest, RejectsBadSizes) {
  const std::vector<Panel> one = {Diagonal(0)};
  EXPECT_EQ(RenderChart({}, 1000, 360).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RenderChart(one, 0, 360).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RenderChart(one, 199, 360).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RenderChart(one, 1000, -5).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RenderChart(one, 100000, 360).status().code(), absl::StatusCode::kInvalidArgument);
  const std::vector<Panel> too_tall(30, Diagonal(0));  // 30 * 360 rows > 8192
  EXPECT_EQ(RenderChart(too_tall, 1000, 360).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(RenderChart(one, 200, 120).ok());
}

TEST(RenderChartTest, RejectsSeriesWithMismatchedLengths) {
  Panel panel = Diagonal(0);
  panel.series[0].y.pop_back();
  const absl::Status status = RenderChart({panel}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("diagonal"), std::string::npos) << status;
}

TEST(RenderChartTest, DrawsNonFiniteAndDegenerateData) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  Panel lines{"odd data", "x", "y", {}, false};
  lines.series.push_back({"nan", {0, 1, 2, 3}, {nan, 1, nan, 2}, 0});
  lines.series.push_back({"inf", {inf, -inf, 4}, {1, 2, inf}, 0});
  lines.series.push_back({"single", {7}, {3}, 0});
  lines.series.push_back({"all nan", {nan, nan}, {nan, nan}, 0});
  lines.series.push_back({"huge", {1e308, 1}, {-1e308, 1}, 0});
  Panel flat{"flat", "x", "y", {}, true};
  flat.series.push_back({"flat", {1, 2, 3}, {5, 5, 5}, 0xFF0000});
  Panel point{"one point", "", "", {}, false};
  point.series.push_back({"", {0}, {0}, 0xFF0000});
  for (int width : {200, 1000}) {
    const absl::StatusOr<Image> image = RenderChart({lines, flat, point}, width, 240);
    ASSERT_TRUE(image.ok()) << image.status();
    // The flat markers and the lone point both land mid-panel.
    EXPECT_GT(CountRed(*image, 0, 240 + 60, width, 240 + 180), 5) << width;
    EXPECT_GT(CountRed(*image, 0, 480 + 60, width, 480 + 180), 1) << width;
  }
}

TEST(WritePngTest, WritesEncodedChart) {
  const std::string path = ::testing::TempDir() + "/png_chart_test.png";
  const std::vector<Panel> panels = {Diagonal(0), Diagonal(0x00AA00)};
  ASSERT_TRUE(WritePng(path, panels, 640, 240).ok());
  std::ifstream in(path, std::ios::binary);
  std::stringstream contents;
  contents << in.rdbuf();
  const absl::StatusOr<Image> image = RenderChart(panels, 640, 240);
  ASSERT_TRUE(image.ok());
  EXPECT_EQ(contents.str(), EncodePng(*image));
  std::remove(path.c_str());
}

TEST(WritePngTest, MissingDirectoryIsUnavailable) {
  const std::string path = ::testing::TempDir() + "/no-such-dir/chart.png";
  const absl::Status status = WritePng(path, {Diagonal(0)});
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(status.message().find(path), std::string::npos) << status;
  EXPECT_NE(status.message().find("No such file"), std::string::npos) << status;
}

}  // namespace
}  // namespace troupe::load
