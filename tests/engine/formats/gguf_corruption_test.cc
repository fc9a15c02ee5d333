// Damaged copies of the real models: truncated at many offsets (header, metadata, tensor infos,
// tensor data) and with random bytes flipped in the header/metadata/tensor-info region. Open()
// and the loaders must return a Status every time (never crash, never over-allocate); a run
// under -fsanitize=address also checks that no read leaves the mapping.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <random>
#include <vector>

#include "engine/formats/gguf.h"
#include "engine/model/model_config.h"
#include "engine/model/weights.h"
#include "gtest/gtest.h"
#include "tests/testing/assertions.h"
#include "tests/testing/model_paths.h"
#include "tests/testing/temp_files.h"

namespace troupe {
namespace {

using testing::Contains;
using testing::TempPath;

// Offsets to cut a file of `size` bytes whose tensor data starts at `data_offset`: every byte of
// the fixed header, a stride through metadata and tensor infos, the boundaries around the data
// section, and a few points inside the data.
std::vector<uint64_t> CutPoints(uint64_t data_offset, uint64_t size, uint64_t stride) {
  std::vector<uint64_t> cuts;
  for (uint64_t i = 0; i < 64; ++i) cuts.push_back(i);
  for (uint64_t i = 64; i < data_offset; i += stride) cuts.push_back(i);
  for (uint64_t i = data_offset - 40; i <= data_offset + 8; ++i) cuts.push_back(i);
  for (uint64_t i : {size / 2, size - 4, size - 1}) {
    if (i > data_offset + 8) cuts.push_back(i);
  }
  return cuts;
}

void ExpectTruncationsFail(const std::string& source, uint64_t stride, uint64_t max_cut) {
  auto original = GgufFile::Open(source);
  ASSERT_TRUE(original.ok()) << original.status();
  // The last tensor ends exactly at end of file, so every shorter copy is damaged. (The lowest
  // data pointer is the tensor at data offset 0.)
  const uint8_t* first = nullptr;
  for (const GgufTensorInfo& t : (*original)->tensors()) {
    if (first == nullptr || t.data < first) first = t.data;
  }
  uint64_t data_end = 0;
  for (const GgufTensorInfo& t : (*original)->tensors()) {
    data_end =
        std::max<uint64_t>(data_end, (*original)->data_offset() + (t.data - first) + t.num_bytes);
  }
  ASSERT_EQ(data_end, (*original)->file_bytes());
  const std::vector<uint8_t> bytes = testing::ReadFileBytes(source);
  ASSERT_EQ(bytes.size(), (*original)->file_bytes());
  const std::string path = TempPath("cut.gguf");
  int checked = 0;
  for (uint64_t cut : CutPoints((*original)->data_offset(), bytes.size(), stride)) {
    if (cut > max_cut) continue;
    testing::WriteFileBytes(path, bytes.data(), cut);
    auto file = GgufFile::Open(path);
    ASSERT_FALSE(file.ok()) << "truncated at " << cut << " bytes but opened";
    EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss) << cut << ": " << file.status();
    EXPECT_TRUE(Contains(file.status().message(), path)) << cut;
    ++checked;
  }
  EXPECT_GT(checked, 100);
  ::unlink(path.c_str());
}

TEST(GgufCorruptionTest, TruncatedStoriesAlwaysFails) {
  ExpectTruncationsFail(testing::StoriesPath(), /*stride=*/7, /*max_cut=*/UINT64_MAX);
}

TEST(GgufCorruptionTest, TruncatedSmolLm2AlwaysFails) {
  // Cuts past the first few MB would mean writing ~100 MB copies; the data-section cuts just
  // after data_offset already exercise the tensor bounds check.
  ExpectTruncationsFail(testing::SmolLmPath(), /*stride=*/20011, /*max_cut=*/4 << 20);
}

// Opens `path` and, if that works, runs the loaders too: each either succeeds or returns an error.
enum class Outcome { kOpenFailed, kConfigFailed, kWeightsFailed, kLoaded };
Outcome OpenAndLoad(const std::string& path) {
  auto file = GgufFile::Open(path);
  if (!file.ok()) {
    EXPECT_TRUE(Contains(file.status().message(), path));
    return Outcome::kOpenFailed;
  }
  auto config = ModelConfigFromGguf(**file);
  if (!config.ok()) return Outcome::kConfigFailed;
  auto weights = LoadModelWeights(**file, *config);
  if (!weights.ok()) return Outcome::kWeightsFailed;
  // Touch every view's first and last byte: they must lie inside the mapping.
  const GgufFile& f = **file;
  for (const GgufTensorInfo& t : f.tensors()) {
    if (t.num_bytes == 0) continue;
    volatile uint8_t sink = t.data[0] ^ t.data[t.num_bytes - 1];
    (void)sink;
  }
  return Outcome::kLoaded;
}

// Flips `num_trials` times 1-4 random bytes, picking the region per trial: the first 4 KB
// (header and first keys), the last 16 KB before the data (tensor infos), or anywhere before
// the data. The copy is patched in place and restored, so big files are written only once.
void FlipTrials(const std::string& source, uint32_t seed, int num_trials) {
  auto original = GgufFile::Open(source);
  ASSERT_TRUE(original.ok()) << original.status();
  const uint64_t data_offset = (*original)->data_offset();
  original->reset();
  const std::vector<uint8_t> bytes = testing::ReadFileBytes(source);
  const std::string path = TempPath("flip.gguf");
  testing::WriteFileBytes(path, bytes.data(), bytes.size());
  const int fd = ::open(path.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);

  std::mt19937 rng(seed);
  int counts[4] = {0, 0, 0, 0};
  for (int trial = 0; trial < num_trials; ++trial) {
    uint64_t lo = 0, hi = data_offset;
    switch (rng() % 3) {
      case 0:
        hi = std::min<uint64_t>(4096, data_offset);
        break;
      case 1:
        lo = data_offset > 16384 ? data_offset - 16384 : 0;
        break;
      default:
        break;
    }
    std::vector<uint64_t> flipped;
    const int num_flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < num_flips; ++k) {
      const uint64_t at = lo + rng() % (hi - lo);
      const uint8_t b = bytes[at] ^ static_cast<uint8_t>(1 + rng() % 255);
      ASSERT_EQ(::pwrite(fd, &b, 1, static_cast<off_t>(at)), 1);
      flipped.push_back(at);
    }
    SCOPED_TRACE(::testing::Message() << "trial " << trial << " first flip at " << flipped[0]);
    ++counts[static_cast<int>(OpenAndLoad(path))];
    for (uint64_t at : flipped) {
      ASSERT_EQ(::pwrite(fd, &bytes[at], 1, static_cast<off_t>(at)), 1);
    }
  }
  ::close(fd);
  ::unlink(path.c_str());
  std::printf("%s: open failed %d, config failed %d, weights failed %d, loaded %d\n",
              source.c_str(), counts[0], counts[1], counts[2], counts[3]);
  // Both kinds of outcome occur: the trials do hit structure, and many flips are harmless.
  EXPECT_GT(counts[0], 0);
  EXPECT_GT(counts[3], 0);
}

TEST(GgufCorruptionTest, BitFlippedStoriesNeverCrashes) {
  FlipTrials(testing::StoriesPath(), /*seed=*/1234, /*num_trials=*/200);
}

TEST(GgufCorruptionTest, BitFlippedSmolLm2NeverCrashes) {
  FlipTrials(testing::SmolLmPath(), /*seed=*/99, /*num_trials=*/200);
}

// The llama-quantize'd K-quant files (Q4_K + Q6_K, Q3_K + Q6_K): a flipped type id or dim meets
// the 256-element super-blocks and their byte sizes (110..210 per block).
TEST(GgufCorruptionTest, TruncatedOrBitFlippedKQuantFilesFailCleanly) {
  uint32_t seed = 7;
  for (const char* name : {"tiny-k-q4_k_m.gguf", "tiny-k-q3_k_s.gguf"}) {
    SCOPED_TRACE(name);
    const std::string path = testing::TinyModelDir() + "/" + name;
    ExpectTruncationsFail(path, /*stride=*/97, /*max_cut=*/UINT64_MAX);
    FlipTrials(path, seed++, /*num_trials=*/200);
  }
}

}  // namespace
}  // namespace troupe
