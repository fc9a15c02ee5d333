#include "engine/formats/safetensors.h"

#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/ggml_types.h"
#include "tests/testing/assertions.h"
#include "tests/testing/temp_files.h"

namespace troupe {
namespace {

// A safetensors file: 8-byte little-endian header length, `header` JSON, then `data`.
std::string WriteSafetensors(const std::string& header, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> bytes(8);
  const uint64_t n = header.size();
  std::memcpy(bytes.data(), &n, 8);
  bytes.insert(bytes.end(), header.begin(), header.end());
  bytes.insert(bytes.end(), data.begin(), data.end());
  const std::string path = testing::TempPath("model.safetensors");
  testing::WriteFileBytes(path, bytes.data(), bytes.size());
  return path;
}

template <typename T>
void Append(std::vector<uint8_t>* out, const std::vector<T>& values) {
  const auto* p = reinterpret_cast<const uint8_t*>(values.data());
  out->insert(out->end(), p, p + values.size() * sizeof(T));
}

absl::StatusCode OpenCode(const std::string& header, const std::vector<uint8_t>& data) {
  return SafetensorsFile::Open(WriteSafetensors(header, data)).status().code();
}

TEST(SafetensorsTest, ReadsF32F16AndBf16AsFloat) {
  std::vector<uint8_t> data;
  Append(&data, std::vector<float>{1.5f, -2.0f, 0.25f, 8.0f, 0.0f, -1.0f});   // [0, 24)
  Append(&data, std::vector<uint16_t>{Fp32ToFp16(0.5f), Fp32ToFp16(-3.0f)});  // [24, 28)
  Append(&data, std::vector<uint16_t>{Fp32ToBf16(1.0f), Fp32ToBf16(-0.5f)});  // [28, 32)
  Append(&data, std::vector<int64_t>{7});                                     // [32, 40)
  const std::string header = R"({"__metadata__":{"format":"pt"},)"
                             R"("w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
                             R"("h":{"dtype":"F16","shape":[2],"data_offsets":[24,28]},)"
                             R"("b":{"dtype":"BF16","shape":[2],"data_offsets":[28,32]},)"
                             R"("i":{"dtype":"I64","shape":[],"data_offsets":[32,40]}})";
  const auto file = SafetensorsFile::Open(WriteSafetensors(header, data));
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->tensors().size(), 4u);
  EXPECT_EQ((*file)->metadata().at("format"), "pt");
  const int64_t shape[] = {2, 3};
  EXPECT_EQ((*file)->ReadFloat("w", shape).value(),
            (std::vector<float>{1.5f, -2.0f, 0.25f, 8.0f, 0.0f, -1.0f}));
  EXPECT_EQ((*file)->ReadFloat("h").value(), (std::vector<float>{0.5f, -3.0f}));
  EXPECT_EQ((*file)->ReadFloat("b").value(), (std::vector<float>{1.0f, -0.5f}));
  const SafetensorsTensorInfo* i = (*file)->Find("i");
  ASSERT_NE(i, nullptr);
  EXPECT_EQ(i->num_elements(), 1);
  int64_t seven = 0;
  std::memcpy(&seven, (*file)->Bytes(*i).data(), 8);
  EXPECT_EQ(seven, 7);
  EXPECT_EQ((*file)->Find("missing"), nullptr);
}

TEST(SafetensorsTest, ReadFloatReportsMissingTensorsDtypesAndShapes) {
  std::vector<uint8_t> data;
  Append(&data, std::vector<float>{1, 2, 3, 4});
  Append(&data, std::vector<int32_t>{5});
  const auto file = SafetensorsFile::Open(
      WriteSafetensors(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                       R"("n":{"dtype":"I32","shape":[1],"data_offsets":[16,20]}})",
                       data));
  ASSERT_TRUE(file.ok()) << file.status();
  const int64_t wrong[] = {2, 2};
  const auto shape = (*file)->ReadFloat("w", wrong);
  EXPECT_EQ(shape.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(testing::Contains(shape.status().message(), "[4], expected [2, 2]"));
  const auto dtype = (*file)->ReadFloat("n");
  EXPECT_TRUE(testing::Contains(dtype.status().message(), "dtype I32"));
  const auto missing = (*file)->ReadFloat("nope");
  EXPECT_TRUE(testing::Contains(missing.status().message(), "missing tensor 'nope'"));
}

TEST(SafetensorsTest, RejectsCorruptFiles) {
  const std::vector<uint8_t> four(4, 0);
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  EXPECT_EQ(OpenCode(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", four),
            absl::StatusCode::kOk);
  EXPECT_EQ(OpenCode("not json", four), kInvalid);
  EXPECT_EQ(OpenCode("[1, 2]", four), kInvalid);
  EXPECT_EQ(OpenCode(R"({"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,4]}})", four), kInvalid);
  EXPECT_EQ(OpenCode(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", four), kInvalid);
  EXPECT_EQ(OpenCode(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", four), kInvalid);
  EXPECT_EQ(OpenCode(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", four), kInvalid);
  EXPECT_EQ(OpenCode(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", four), kInvalid);
  EXPECT_EQ(OpenCode(R"({"a":{"dtype":"F32","shape":[1]}})", four), kInvalid);
  EXPECT_EQ(OpenCode(R"({"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},)"
                     R"("b":{"dtype":"F16","shape":[1],"data_offsets":[2,4]}})",
                     four),
            kInvalid);  // overlap
  EXPECT_EQ(OpenCode(R"({"a":{"dtype":"F32","shape":[4611686018427387904,4],)"
                     R"("data_offsets":[0,4]}})",
                     four),
            kInvalid);  // shape overflows

  // A header length past the end of the file, and a file shorter than 8 bytes.
  std::vector<uint8_t> bytes(16, 0);
  bytes[0] = 200;
  const std::string path = testing::TempPath("long_header.safetensors");
  testing::WriteFileBytes(path, bytes.data(), bytes.size());
  const auto long_header = SafetensorsFile::Open(path);
  EXPECT_EQ(long_header.status().code(), kInvalid);
  EXPECT_TRUE(testing::Contains(long_header.status().message(), path));
  testing::WriteFileBytes(path, bytes.data(), 3);
  EXPECT_EQ(SafetensorsFile::Open(path).status().code(), kInvalid);
  EXPECT_EQ(SafetensorsFile::Open("/nonexistent/x.safetensors").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace troupe
