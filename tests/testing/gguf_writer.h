// Test-only GGUF writer: builds small synthetic GGUF files byte by byte (little-endian), so tests
// can exercise versions, value types, alignment and malformed layouts the real models lack.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "engine/formats/gguf.h"
#include "kernels/ggml_types.h"

namespace troupe::testing {

class GgufWriter {
 public:
  uint32_t version = 3;
  uint64_t alignment = 32;  // padding used; write general.alignment yourself if not 32

  // ---- metadata (kept in insertion order) ----
  void AddString(std::string_view key, std::string_view value) {
    Kv(key, GgufValueType::kString);
    Str(kv_, value);
  }
  void AddUint32(std::string_view key, uint32_t value) {
    Kv(key, GgufValueType::kUint32);
    Pod(kv_, value);
  }
  void AddUint64(std::string_view key, uint64_t value) {
    Kv(key, GgufValueType::kUint64);
    Pod(kv_, value);
  }
  void AddInt32(std::string_view key, int32_t value) {
    Kv(key, GgufValueType::kInt32);
    Pod(kv_, value);
  }
  void AddFloat32(std::string_view key, float value) {
    Kv(key, GgufValueType::kFloat32);
    Pod(kv_, value);
  }
  void AddBool(std::string_view key, bool value) {
    Kv(key, GgufValueType::kBool);
    Pod(kv_, static_cast<uint8_t>(value));
  }
  void AddStringArray(std::string_view key, const std::vector<std::string>& values) {
    Kv(key, GgufValueType::kArray);
    Pod(kv_, static_cast<uint32_t>(GgufValueType::kString));
    Pod(kv_, static_cast<uint64_t>(values.size()));
    for (const std::string& v : values) Str(kv_, v);
  }
  void AddInt32Array(std::string_view key, const std::vector<int32_t>& values) {
    Kv(key, GgufValueType::kArray);
    Pod(kv_, static_cast<uint32_t>(GgufValueType::kInt32));
    Pod(kv_, static_cast<uint64_t>(values.size()));
    for (int32_t v : values) Pod(kv_, v);
  }
  void AddFloat32Array(std::string_view key, const std::vector<float>& values) {
    Kv(key, GgufValueType::kArray);
    Pod(kv_, static_cast<uint32_t>(GgufValueType::kFloat32));
    Pod(kv_, static_cast<uint64_t>(values.size()));
    for (float v : values) Pod(kv_, v);
  }
  // Arbitrary value bytes after the key and type id (for malformed values).
  void AddRaw(std::string_view key, uint32_t type, const std::vector<uint8_t>& value_bytes) {
    Str(kv_, key);
    Pod(kv_, type);
    kv_.insert(kv_.end(), value_bytes.begin(), value_bytes.end());
    ++num_kv_;
  }

  // ---- tensors ----
  // Adds a tensor whose data are `bytes`, placed at the next aligned data offset.
  void AddTensor(std::string_view name, uint32_t type, const std::vector<int64_t>& dims,
                 const std::vector<uint8_t>& bytes) {
    while (data_.size() % alignment != 0) data_.push_back(0);
    AddTensorAt(name, type, dims, data_.size());
    data_.insert(data_.end(), bytes.begin(), bytes.end());
  }
  void AddF32Tensor(std::string_view name, const std::vector<int64_t>& dims,
                    const std::vector<float>& values) {
    std::vector<uint8_t> bytes(values.size() * 4);
    std::memcpy(bytes.data(), values.data(), bytes.size());
    AddTensor(name, static_cast<uint32_t>(GgmlType::kF32), dims, bytes);
  }
  // A tensor info with an explicit data offset and no data (for out-of-bounds cases).
  void AddTensorAt(std::string_view name, uint32_t type, const std::vector<int64_t>& dims,
                   uint64_t offset) {
    Str(ti_, name);
    Pod(ti_, static_cast<uint32_t>(dims.size()));
    for (int64_t d : dims) Pod(ti_, d);
    Pod(ti_, type);
    Pod(ti_, offset);
    ++num_tensors_;
  }

  std::vector<uint8_t> Bytes() const {
    std::vector<uint8_t> out = {'G', 'G', 'U', 'F'};
    Pod(out, version);
    Pod(out, num_tensors_);
    Pod(out, num_kv_);
    out.insert(out.end(), kv_.begin(), kv_.end());
    out.insert(out.end(), ti_.begin(), ti_.end());
    if (!data_.empty()) {
      while (out.size() % alignment != 0) out.push_back(0);
      out.insert(out.end(), data_.begin(), data_.end());
    }
    return out;
  }

  void Write(const std::string& path) const {
    const std::vector<uint8_t> bytes = Bytes();
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  }

 private:
  template <typename T>
  static void Pod(std::vector<uint8_t>& out, T v) {
    uint8_t b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    out.insert(out.end(), b, b + sizeof(T));
  }
  static void Str(std::vector<uint8_t>& out, std::string_view s) {
    Pod(out, static_cast<uint64_t>(s.size()));
    out.insert(out.end(), s.begin(), s.end());
  }
  void Kv(std::string_view key, GgufValueType type) {
    Str(kv_, key);
    Pod(kv_, static_cast<uint32_t>(type));
    ++num_kv_;
  }

  uint64_t num_kv_ = 0;
  uint64_t num_tensors_ = 0;
  std::vector<uint8_t> kv_;    // encoded key/value pairs
  std::vector<uint8_t> ti_;    // encoded tensor infos
  std::vector<uint8_t> data_;  // tensor data section (offsets relative to its start)
};

// `values` encoded as F32, F16, BF16 or Q8_0 (round-to-nearest, scale = absmax / 127).
inline std::vector<uint8_t> EncodeAs(GgmlType type, const std::vector<float>& values) {
  std::vector<uint8_t> out;
  auto u16 = [&](uint16_t h) {
    out.push_back(h & 0xff);
    out.push_back(h >> 8);
  };
  switch (type) {
    case GgmlType::kF32:
      out.resize(values.size() * 4);
      std::memcpy(out.data(), values.data(), out.size());
      break;
    case GgmlType::kF16:
      for (float v : values) u16(Fp32ToFp16(v));
      break;
    case GgmlType::kBF16:
      for (float v : values) u16(Fp32ToBf16(v));
      break;
    case GgmlType::kQ8_0:
      for (size_t b = 0; b < values.size(); b += kQK) {
        float amax = 0;
        for (int i = 0; i < kQK; ++i) amax = std::max(amax, std::fabs(values[b + i]));
        const float d = amax / 127;
        u16(Fp32ToFp16(d));
        for (int i = 0; i < kQK; ++i) {
          out.push_back(static_cast<uint8_t>(
              static_cast<int8_t>(d == 0 ? 0 : std::lround(values[b + i] / d))));
        }
      }
      break;
    default:
      break;  // not needed by the tests
  }
  return out;
}

// A minimal valid Llama GGUF (F32 unless `types` says otherwise, values i * 0.001) with the given
// shape; extra metadata/tensors can be added to the returned writer before Write().
struct TinyLlama {
  int dim = 8, layers = 2, heads = 2, kv_heads = 1, ffn = 16, vocab = 32, context = 64;
  std::string arch = "llama";
  std::string skip_key;                   // metadata key to leave out, "" = none
  bool tied = false;                      // leave out output.weight
  std::map<std::string, GgmlType> types;  // tensor name -> type (default F32)
};

inline GgufWriter MakeTinyLlama(const TinyLlama& m) {
  GgufWriter w;
  auto u32 = [&](std::string_view key, uint32_t v) {
    if (key != m.skip_key) w.AddUint32(key, v);
  };
  w.AddString("general.architecture", m.arch);
  w.AddString("general.name", "tiny");
  u32("llama.embedding_length", m.dim);
  u32("llama.block_count", m.layers);
  u32("llama.attention.head_count", m.heads);
  u32("llama.attention.head_count_kv", m.kv_heads);
  u32("llama.feed_forward_length", m.ffn);
  u32("llama.context_length", m.context);
  if (m.skip_key != "llama.attention.layer_norm_rms_epsilon") {
    w.AddFloat32("llama.attention.layer_norm_rms_epsilon", 1e-6f);
  }
  u32("llama.vocab_size", m.vocab);
  const int64_t hd = m.dim / m.heads;
  auto f32 = [&](const std::string& name, std::vector<int64_t> dims) {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    std::vector<float> v(n);
    for (int64_t i = 0; i < n; ++i) v[i] = 0.001f * static_cast<float>(i);
    auto it = m.types.find(name);
    const GgmlType type = it == m.types.end() ? GgmlType::kF32 : it->second;
    w.AddTensor(name, static_cast<uint32_t>(type), dims, EncodeAs(type, v));
  };
  f32("token_embd.weight", {m.dim, m.vocab});
  f32("output_norm.weight", {m.dim});
  if (!m.tied) f32("output.weight", {m.dim, m.vocab});
  for (int l = 0; l < m.layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    f32(p + "attn_norm.weight", {m.dim});
    f32(p + "attn_q.weight", {m.dim, m.heads * hd});
    f32(p + "attn_k.weight", {m.dim, m.kv_heads * hd});
    f32(p + "attn_v.weight", {m.dim, m.kv_heads * hd});
    f32(p + "attn_output.weight", {m.heads * hd, m.dim});
    f32(p + "ffn_norm.weight", {m.dim});
    f32(p + "ffn_gate.weight", {m.dim, m.ffn});
    f32(p + "ffn_up.weight", {m.dim, m.ffn});
    f32(p + "ffn_down.weight", {m.ffn, m.dim});
  }
  return w;
}

// MakeTinyLlama after `edit(options)`, e.g. MakeTinyLlamaWith([](TinyLlama& t) { t.tied = true; }).
// (Designated initializers would trip GCC's -Wmissing-field-initializers.)
template <typename Edit>
GgufWriter MakeTinyLlamaWith(Edit&& edit) {
  TinyLlama options;
  edit(options);
  return MakeTinyLlama(options);
}

}  // namespace troupe::testing
