// GGUF/ggml tensor element types troupe reads, their block layouts and scalar conversions.
// Block layouts match ggml's on-disk formats byte for byte (they are read in place from the mmap).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace troupe {

// Values are ggml's type ids as stored in GGUF tensor infos.
enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ8_0 = 8,
  kBF16 = 30,
};

constexpr int kQK = 32;  // elements per quantized block (Q4_0, Q4_1, Q8_0)

using Fp16 = uint16_t;  // IEEE half, raw bits
using Bf16 = uint16_t;  // bfloat16, raw bits

// Q4_0: x = d * (q - 8); q packed two per byte: low nibbles hold elements 0..15, high 16..31.
struct BlockQ4_0 {
  Fp16 d;
  uint8_t qs[kQK / 2];
};
// Q4_1: x = d * q + m, same nibble order as Q4_0.
struct BlockQ4_1 {
  Fp16 d;
  Fp16 m;
  uint8_t qs[kQK / 2];
};
// Q8_0: x = d * q.
struct BlockQ8_0 {
  Fp16 d;
  int8_t qs[kQK];
};
static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ8_0) == 34);

struct GgmlTypeTraits {
  std::string_view name;
  int block_elems;   // elements per block
  int block_bytes;   // bytes per block
};

// Returns nullopt for a type troupe does not support (the caller names it in its error).
std::optional<GgmlTypeTraits> TraitsOf(uint32_t type);

// Bytes of a row of n elements; REQUIRES: n is a multiple of the type's block size.
inline size_t RowBytes(const GgmlTypeTraits& t, int64_t n) {
  return static_cast<size_t>(n / t.block_elems) * static_cast<size_t>(t.block_bytes);
}

// ---- scalar conversions (exact, no fast-math) ----
inline float Fp32FromBits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint32_t BitsFromFp32(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float Fp16ToFp32(Fp16 h);
Fp16 Fp32ToFp16(float f);  // round to nearest even
inline float Bf16ToFp32(Bf16 h) { return Fp32FromBits(static_cast<uint32_t>(h) << 16); }
inline Bf16 Fp32ToBf16(float f) {  // round to nearest even; NaN stays NaN
  uint32_t u = BitsFromFp32(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<Bf16>((u >> 16) | 0x40);
  return static_cast<Bf16>((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}

}  // namespace troupe
