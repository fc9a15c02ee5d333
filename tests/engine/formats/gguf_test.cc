// GgufFile: the two real models' metadata and tensor infos (expected values cross-checked with
// the `gguf` Python package), typed getters, and the format rules on synthetic files.
#include "engine/formats/gguf.h"

#include <cstring>
#include <limits>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/ggml_types.h"
#include "tests/testing/assertions.h"
#include "tests/testing/gguf_writer.h"
#include "tests/testing/model_paths.h"
#include "tests/testing/temp_files.h"

namespace troupe {
namespace {

using testing::Contains;
using testing::GgufWriter;
using testing::TempPath;

absl::StatusOr<std::unique_ptr<GgufFile>> OpenWritten(const GgufWriter& w,
                                                      const std::string& suffix = "x.gguf") {
  const std::string path = TempPath(suffix);
  w.Write(path);
  auto file = GgufFile::Open(path);
  ::unlink(path.c_str());  // an open mapping outlives the name
  return file;
}

// ---- real files ----

TEST(GgufFileTest, ReadsStories260KMetadata) {
  auto file = GgufFile::Open(testing::StoriesPath());
  ASSERT_TRUE(file.ok()) << file.status();
  const GgufFile& f = **file;
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.file_bytes(), 1185376u);
  EXPECT_EQ(f.metadata_keys().size(), 19u);
  EXPECT_EQ(f.metadata_keys().front(), "tokenizer.ggml.tokens");  // file order
  EXPECT_EQ(*f.GetString("general.architecture"), "llama");
  EXPECT_EQ(*f.GetUint("llama.embedding_length"), 64u);
  EXPECT_EQ(*f.GetUint("llama.block_count"), 5u);
  EXPECT_EQ(*f.GetUint("llama.attention.head_count"), 8u);
  EXPECT_EQ(*f.GetUint("llama.attention.head_count_kv"), 4u);
  EXPECT_EQ(*f.GetUint("llama.feed_forward_length"), 172u);
  EXPECT_EQ(*f.GetUint("llama.context_length"), 128u);
  EXPECT_EQ(*f.GetUint("llama.rope.dimension_count"), 8u);
  EXPECT_FLOAT_EQ(*f.GetFloat("llama.attention.layer_norm_rms_epsilon"), 1e-5f);
  EXPECT_EQ(*f.GetUint("tokenizer.ggml.padding_token_id"), 4294967295u);
  auto tokens = f.GetStringArray("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  ASSERT_EQ(tokens->size(), 512u);
  EXPECT_EQ((*tokens)[0], "<unk>");
  EXPECT_EQ((*tokens)[2], "</s>");
  EXPECT_EQ(tokens->back(), "\u200a");
  EXPECT_EQ(f.GetFloatArray("tokenizer.ggml.scores")->size(), 512u);
  EXPECT_EQ(f.GetIntArray("tokenizer.ggml.token_type")->size(), 512u);

  EXPECT_EQ(f.tensors().size(), 48u);
  EXPECT_EQ(f.data_offset(), 14176u);
  const GgufTensorInfo* embd = f.FindTensor("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  EXPECT_EQ(embd->type, static_cast<uint32_t>(GgmlType::kF32));
  EXPECT_EQ(embd->dims, (std::vector<int64_t>{64, 512}));
  EXPECT_EQ(embd->num_elements(), 64 * 512);
  EXPECT_EQ(embd->num_bytes, 64u * 512 * 4);
  // Absolute file offsets from the gguf Python reader: token_embd 14176, output 145504.
  const GgufTensorInfo* out = f.FindTensor("output.weight");
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(out->data - embd->data, 145504 - 14176);
  EXPECT_EQ(f.FindTensor("no.such.tensor"), nullptr);
}

TEST(GgufFileTest, ReadsSmolLm2Metadata) {
  auto file = GgufFile::Open(testing::SmolLmPath());
  ASSERT_TRUE(file.ok()) << file.status();
  const GgufFile& f = **file;
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.metadata_keys().size(), 33u);
  EXPECT_EQ(*f.GetUint("llama.block_count"), 30u);
  EXPECT_EQ(*f.GetUint("llama.embedding_length"), 576u);
  EXPECT_EQ(*f.GetUint("llama.attention.head_count"), 9u);
  EXPECT_EQ(*f.GetUint("llama.attention.head_count_kv"), 3u);
  EXPECT_EQ(*f.GetUint("llama.feed_forward_length"), 1536u);
  EXPECT_EQ(*f.GetUint("llama.vocab_size"), 49152u);
  EXPECT_EQ(*f.GetFloat("llama.rope.freq_base"), 100000.0);
  EXPECT_EQ(*f.GetString("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(*f.GetBool("tokenizer.ggml.add_bos_token"), false);
  EXPECT_EQ(f.GetString("tokenizer.chat_template")->rfind("{% for message in messages %}", 0), 0u);
  auto tokens = f.GetStringArray("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.ok());
  ASSERT_EQ(tokens->size(), 49152u);
  EXPECT_EQ((*tokens)[1], "<|im_start|>");
  EXPECT_EQ(tokens->back(), "ectable");
  EXPECT_EQ(f.GetStringArray("tokenizer.ggml.merges")->size(), 48900u);

  EXPECT_EQ(f.tensors().size(), 272u);
  EXPECT_EQ(f.data_offset(), 1785664u);
  const GgufTensorInfo* embd = f.FindTensor("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  EXPECT_EQ(embd->type, static_cast<uint32_t>(GgmlType::kQ8_0));
  EXPECT_EQ(embd->dims, (std::vector<int64_t>{576, 49152}));
  EXPECT_EQ(embd->num_bytes, 576u / 32 * 34 * 49152);
  const GgufTensorInfo* down = f.FindTensor("blk.29.ffn_down.weight");
  ASSERT_NE(down, nullptr);
  EXPECT_EQ(down->type, static_cast<uint32_t>(GgmlType::kQ4_1));
  EXPECT_EQ(down->dims, (std::vector<int64_t>{1536, 576}));
  EXPECT_EQ(down->data - embd->data, 80630848 - 1785664);
  EXPECT_EQ(f.FindTensor("output.weight"), nullptr);  // tied embeddings
}

TEST(GgufFileTest, TypedGettersReportKindMismatches) {
  auto file = GgufFile::Open(testing::StoriesPath());
  ASSERT_TRUE(file.ok()) << file.status();
  const GgufFile& f = **file;
  EXPECT_EQ(f.GetUint("no.such.key").status().code(), absl::StatusCode::kNotFound);
  auto s = f.GetString("llama.block_count");
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(s.status().message(), "llama.block_count"));
  EXPECT_TRUE(Contains(s.status().message(), "uint32"));
  EXPECT_EQ(f.GetUint("general.name").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f.GetBool("llama.block_count").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*f.GetFloat("llama.block_count"), 5.0);  // ints read as floats
  auto arr = f.GetIntArray("tokenizer.ggml.tokens");
  EXPECT_EQ(arr.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(arr.status().message(), "array of string"));
  EXPECT_EQ(f.GetStringArray("general.name").status().code(), absl::StatusCode::kInvalidArgument);
}

// ---- open errors ----

TEST(GgufFileTest, MissingFileIsNotFound) {
  const std::string path = TempPath("does_not_exist.gguf");
  auto file = GgufFile::Open(path);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(Contains(file.status().message(), path));
}

TEST(GgufFileTest, RejectsNonGgufAndEmptyFiles) {
  const std::string path = TempPath("notgguf");
  const char text[] = "this is not a model file at all, just text";
  testing::WriteFileBytes(path, reinterpret_cast<const uint8_t*>(text), sizeof(text));
  auto file = GgufFile::Open(path);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(file.status().message(), "not a GGUF file"));
  EXPECT_TRUE(Contains(file.status().message(), path));

  testing::WriteFileBytes(path, nullptr, 0);
  file = GgufFile::Open(path);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(file.status().message(), "empty"));
  ::unlink(path.c_str());
}

TEST(GgufFileTest, AcceptsVersion2AndRejectsVersion1) {
  GgufWriter w = testing::MakeTinyLlama({});
  w.version = 2;
  auto v2 = OpenWritten(w, "v2.gguf");
  ASSERT_TRUE(v2.ok()) << v2.status();
  EXPECT_EQ((*v2)->version(), 2u);
  EXPECT_EQ(*(*v2)->GetString("general.architecture"), "llama");

  w.version = 1;
  auto v1 = OpenWritten(w, "v1.gguf");
  EXPECT_EQ(v1.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(v1.status().message(), "version 1 is not supported"));

  w.version = 4;
  auto v4 = OpenWritten(w, "v4.gguf");
  EXPECT_EQ(v4.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(v4.status().message(), "unsupported GGUF version 4"));

  w.version = 0x03000000;  // version 3 written big-endian
  auto be = OpenWritten(w, "be.gguf");
  EXPECT_EQ(be.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(be.status().message(), "big-endian"));
}

TEST(GgufFileTest, UnknownTensorTypeNamesTensorAndType) {
  GgufWriter w;
  w.AddTensor("blk.0.ffn_down.weight", 16, {256, 4}, std::vector<uint8_t>(4 * 66));  // IQ2_XXS
  auto file = OpenWritten(w);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(file.status().message(), "blk.0.ffn_down.weight"));
  EXPECT_TRUE(Contains(file.status().message(), "IQ2_XXS (id 16)"));
  EXPECT_TRUE(Contains(file.status().message(), "Q6_K"));  // the supported list

  GgufWriter w2;
  w2.AddTensorAt("weird", 999, {32}, 0);
  file = OpenWritten(w2);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(file.status().message(), "id 999"));
}

TEST(GgufFileTest, RejectsBadDims) {
  const uint32_t f32 = static_cast<uint32_t>(GgmlType::kF32);
  struct Case {
    std::vector<int64_t> dims;
    std::string want;
  };
  const std::vector<Case> cases = {
      {{int64_t{1} << 40, int64_t{1} << 40}, "overflows int64"},
      {{4, -1}, "negative dimension"},
      {{1, 2, 3, 4, 5}, "5 dimensions"},
      {{}, "0 dimensions"},
  };
  for (const Case& c : cases) {
    GgufWriter w;
    w.AddTensorAt("a_tensor_with_a_longer_name", f32, c.dims, 0);
    auto file = OpenWritten(w);
    EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss) << c.want;
    EXPECT_TRUE(Contains(file.status().message(), c.want));
  }
  // Q8_0 rows must be whole blocks.
  GgufWriter w;
  w.AddTensorAt("q", static_cast<uint32_t>(GgmlType::kQ8_0), {48, 2}, 0);
  auto file = OpenWritten(w);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(file.status().message(), "not a multiple of its block size 32"));
}

// The 5-bit types have blocks of 32, the K-quants super-blocks of 256 (llama-quantize falls back
// to Q5_0 / Q5_1 / Q8_0 for other row lengths, so a K tensor with such rows is corrupt). The byte
// size follows the block size: a tensor one byte short of its blocks is truncated.
TEST(GgufFileTest, ReadsFiveBitAndKQuantTensorsAndChecksTheirBlocks) {
  struct Case {
    GgmlType type;
    int block_elems;
    int block_bytes;
  };
  const Case cases[] = {{GgmlType::kQ5_0, 32, 22},
                        {GgmlType::kQ5_1, 32, 24},
                        {GgmlType::kQ2_K, 256, 84},
                        {GgmlType::kQ3_K, 256, 110},
                        {GgmlType::kQ4_K, 256, 144},
                        {GgmlType::kQ5_K, 256, 176},
                        {GgmlType::kQ6_K, 256, 210}};
  for (const Case& c : cases) {
    const uint32_t type = static_cast<uint32_t>(c.type);
    SCOPED_TRACE(TraitsOf(type)->name);
    GgufWriter ok;
    ok.AddTensor("m", type, {2 * c.block_elems, 3}, std::vector<uint8_t>(6 * c.block_bytes));
    auto file = OpenWritten(ok);
    ASSERT_TRUE(file.ok()) << file.status();
    EXPECT_EQ((*file)->tensors()[0].num_bytes, 6u * c.block_bytes);

    GgufWriter ragged;  // 1.5 blocks per row
    ragged.AddTensorAt("m", type, {c.block_elems * 3 / 2, 2}, 0);
    file = OpenWritten(ragged);
    EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_TRUE(Contains(file.status().message(),
                         "not a multiple of its block size " + std::to_string(c.block_elems)))
        << file.status();

    GgufWriter short_data;
    short_data.AddTensor("m", type, {c.block_elems, 2}, std::vector<uint8_t>(2 * c.block_bytes - 1));
    file = OpenWritten(short_data);
    EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss) << file.status();
  }
}

TEST(GgufFileTest, RejectsTensorDataOutOfBoundsOrMisaligned) {
  const uint32_t f32 = static_cast<uint32_t>(GgmlType::kF32);
  const std::vector<uint64_t> bad_offsets = {1 << 20, std::numeric_limits<uint64_t>::max() - 31};
  for (uint64_t offset : bad_offsets) {
    GgufWriter w;
    w.AddF32Tensor("ok", {8}, std::vector<float>(8, 1.0f));
    w.AddTensorAt("far.away", f32, {8}, offset);
    auto file = OpenWritten(w);
    EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss) << offset;
    EXPECT_TRUE(Contains(file.status().message(), "far.away"));
  }
  GgufWriter w;
  w.AddF32Tensor("ok", {16}, std::vector<float>(16, 1.0f));
  w.AddTensorAt("odd", f32, {2}, 4);  // inside the data, but not 32-byte aligned
  auto file = OpenWritten(w);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(file.status().message(), "not a multiple of the 32-byte alignment"));
}

TEST(GgufFileTest, HonoursGeneralAlignment) {
  GgufWriter w;
  w.alignment = 64;
  w.AddUint32("general.alignment", 64);
  w.AddF32Tensor("a", {3}, {1, 2, 3});
  w.AddF32Tensor("b", {2}, {4, 5});
  auto file = OpenWritten(w);
  ASSERT_TRUE(file.ok()) << file.status();
  const GgufFile& f = **file;
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.data_offset() % 64, 0u);
  const GgufTensorInfo* b = f.FindTensor("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->data - f.FindTensor("a")->data, 64);
  float v[2];
  std::memcpy(v, b->data, sizeof(v));
  EXPECT_EQ(v[0], 4.0f);
  EXPECT_EQ(v[1], 5.0f);

  GgufWriter bad;
  bad.AddUint32("general.alignment", 48);
  auto file2 = OpenWritten(bad, "bad.gguf");
  EXPECT_EQ(file2.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(file2.status().message(), "general.alignment"));
}

TEST(GgufFileTest, RejectsDuplicates) {
  GgufWriter keys;
  keys.AddUint32("a", 1);
  keys.AddUint32("a", 2);
  auto file = OpenWritten(keys, "k.gguf");
  EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(file.status().message(), "duplicate metadata key 'a'"));

  GgufWriter tensors;
  tensors.AddF32Tensor("t", {1}, {1});
  tensors.AddF32Tensor("t", {1}, {2});
  file = OpenWritten(tensors, "t.gguf");
  EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(file.status().message(), "duplicate tensor name 't'"));
}

// Lengths and counts larger than the file are rejected before anything is allocated for them.
TEST(GgufFileTest, RejectsHugeLengthsWithoutAllocating) {
  auto u64 = [](uint64_t v) {
    std::vector<uint8_t> b(8);
    std::memcpy(b.data(), &v, 8);
    return b;
  };
  GgufWriter str;
  str.AddRaw("s", static_cast<uint32_t>(GgufValueType::kString), u64(uint64_t{1} << 62));
  auto file = OpenWritten(str, "s.gguf");
  EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(file.status().message(), "[metadata key 's']"));

  std::vector<uint8_t> arr = {static_cast<uint8_t>(GgufValueType::kUint8), 0, 0, 0};
  const std::vector<uint8_t> count = u64(uint64_t{1} << 60);
  arr.insert(arr.end(), count.begin(), count.end());
  GgufWriter array;
  array.AddRaw("a", static_cast<uint32_t>(GgufValueType::kArray), arr);
  file = OpenWritten(array, "a.gguf");
  EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(file.status().message(), "metadata array of 1152921504606846976 uint8"));

  GgufWriter bad_type;
  bad_type.AddRaw("x", 13, {0, 0, 0, 0});
  file = OpenWritten(bad_type, "x.gguf");
  EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(file.status().message(), "invalid value type 13"));
}

// The total-elements cap: a (possibly corrupt) file can't make us build millions of values.
TEST(GgufFileTest, CapsTotalMetadataArrayElements) {
  std::vector<uint8_t> arr = {static_cast<uint8_t>(GgufValueType::kUint8), 0, 0, 0};
  const uint64_t n = uint64_t{3} << 20;  // over the 2M cap, under the bytes present
  for (int i = 0; i < 8; ++i) arr.push_back(static_cast<uint8_t>(n >> (8 * i)));
  arr.resize(arr.size() + n, 7);
  GgufWriter w;
  w.AddRaw("big", static_cast<uint32_t>(GgufValueType::kArray), arr);
  auto file = OpenWritten(w);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(file.status().message(), "elements in total"));
}

TEST(GgufFileTest, ReadsNestedArraysUpToTheDepthLimit) {
  // array<array<int32>> = [[1, 2], [3]].
  auto nested = [](int depth) {
    std::vector<uint8_t> b;
    auto u32 = [&](uint32_t v) {
      for (int i = 0; i < 4; ++i) b.push_back(v >> (8 * i));
    };
    auto u64 = [&](uint64_t v) {
      for (int i = 0; i < 8; ++i) b.push_back(v >> (8 * i));
    };
    for (int d = 0; d < depth; ++d) {
      u32(static_cast<uint32_t>(GgufValueType::kArray));
      u64(1);
    }
    u32(static_cast<uint32_t>(GgufValueType::kInt32));
    u64(1);
    u32(42);
    return b;
  };
  GgufWriter ok;
  ok.AddRaw("n", static_cast<uint32_t>(GgufValueType::kArray), nested(1));
  auto file = OpenWritten(ok, "ok.gguf");
  ASSERT_TRUE(file.ok()) << file.status();
  const GgufValue* v = (*file)->Find("n");
  ASSERT_NE(v, nullptr);
  ASSERT_EQ(v->array_type, GgufValueType::kArray);
  ASSERT_EQ(v->array.size(), 1u);
  ASSERT_EQ(v->array[0].array.size(), 1u);
  EXPECT_EQ(std::get<int64_t>(v->array[0].array[0].scalar), 42);
  // An array of arrays is not an array of numbers.
  EXPECT_EQ((*file)->GetIntArray("n").status().code(), absl::StatusCode::kInvalidArgument);

  GgufWriter deep;
  deep.AddRaw("n", static_cast<uint32_t>(GgufValueType::kArray), nested(10));
  file = OpenWritten(deep, "deep.gguf");
  EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(file.status().message(), "nested deeper"));
}

TEST(GgufFileTest, TensorToFloatsConvertsHalfTypes) {
  const std::vector<float> want = {1.0f, -2.5f, 0.15625f, 65504.0f};
  std::vector<uint8_t> f16, bf16;
  for (float x : want) {
    const Fp16 h = Fp32ToFp16(x);
    const Bf16 b = Fp32ToBf16(x);
    f16.push_back(h & 0xff);
    f16.push_back(h >> 8);
    bf16.push_back(b & 0xff);
    bf16.push_back(b >> 8);
  }
  GgufWriter w;
  w.AddTensor("h", static_cast<uint32_t>(GgmlType::kF16), {4}, f16);
  w.AddTensor("b", static_cast<uint32_t>(GgmlType::kBF16), {4}, bf16);
  w.AddTensor("q", static_cast<uint32_t>(GgmlType::kQ8_0), {32}, std::vector<uint8_t>(34));
  auto file = OpenWritten(w);
  ASSERT_TRUE(file.ok()) << file.status();
  auto h = TensorToFloats(**file, *(*file)->FindTensor("h"));
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(*h, want);  // all exactly representable in fp16
  auto b = TensorToFloats(**file, *(*file)->FindTensor("b"));
  ASSERT_TRUE(b.ok()) << b.status();
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR((*b)[i], want[i], std::fabs(want[i]) / 128);
  auto q = TensorToFloats(**file, *(*file)->FindTensor("q"));
  EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(q.status().message(), "'q'"));
}

// Found by fuzz/gguf_fuzzer (fuzz/corpus/gguf/regression-empty-f32-tensor): an F32 tensor with
// a zero dim has no elements; converting it passed a null pointer to memcpy (UBSan).
TEST(GgufFileTest, TensorToFloatsOfAnEmptyTensorIsEmpty) {
  GgufWriter w;
  w.AddF32Tensor("x", {1}, {1.0f});  // some data, so that the file has a data section
  w.AddTensor("e", static_cast<uint32_t>(GgmlType::kF32), {0, 4}, {});
  w.AddTensor("h", static_cast<uint32_t>(GgmlType::kF16), {4, 0}, {});
  auto file = OpenWritten(w);
  ASSERT_TRUE(file.ok()) << file.status();
  for (const char* name : {"e", "h"}) {
    auto floats = TensorToFloats(**file, *(*file)->FindTensor(name));
    ASSERT_TRUE(floats.ok()) << floats.status();
    EXPECT_TRUE(floats->empty()) << name;
  }
}

// Released pages re-fault from the file: the bytes read afterwards are unchanged.
TEST(GgufFileTest, ReleasePagesKeepsContents) {
  auto file = GgufFile::Open(testing::SmolLmPath());
  ASSERT_TRUE(file.ok()) << file.status();
  const GgufTensorInfo* embd = (*file)->FindTensor("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  const std::vector<uint8_t> before(embd->data, embd->data + embd->num_bytes);
  (*file)->ReleasePages(embd->data, embd->num_bytes);
  (*file)->ReleasePages(embd->data + 1, 5000);  // partial pages only: a no-op beyond one page
  EXPECT_TRUE(std::equal(before.begin(), before.end(), embd->data));
}

}  // namespace
}  // namespace troupe
