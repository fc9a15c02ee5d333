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
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kBF16 = 30,
};

constexpr int kQK = 32;    // elements per quantized block (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0)
constexpr int kQKK = 256;  // elements per K-quant super-block (Q2_K .. Q6_K)
constexpr int kKScaleBytes = 12;  // Q4_K / Q5_K: 8 six-bit scales + 8 six-bit minimums

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
// Q5_0: x = d * (q - 16), q = 5 bits: the low 4 as in Q4_0 (low nibbles elements 0..15, high
// 16..31), the fifth of element e is bit e of the little-endian uint32 qh.
struct BlockQ5_0 {
  Fp16 d;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
// Q5_1: x = d * q + m, q as in Q5_0.
struct BlockQ5_1 {
  Fp16 d;
  Fp16 m;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};

// ---- K-quants: super-blocks of 256 ----
// Q2_K: 16 sub-blocks of 16; element e: x = (d * (scales[e / 16] & 15)) * q - dmin *
// (scales[e / 16] >> 4), q = 2 bits: element 128h + 32j + l (j < 4, l < 32) is bits 2j..2j+1
// of qs[32h + l] (the same order as Q3_K's low bits).
struct BlockQ2_K {
  uint8_t scales[kQKK / 16];
  uint8_t qs[kQKK / 4];
  Fp16 d;
  Fp16 dmin;
};
// Q3_K: 16 sub-blocks of 16; element e: x = (d * (sc[e / 16] - 32)) * q, q = (2 low bits) -
// (4 unless the high bit is set), in [-4, 3]. Two halves of 128 (qs + 32h); element 128h + 32j
// + l (j < 4, l < 32): bits 2j..2j+1 of qs[32h + l], high bit = bit 4h + j of
// hmask[l]. The 16 six-bit scales: low 4 bits in the low (j < 8: scales[j]) or high (j >= 8:
// scales[j - 8]) nibble, top 2 bits at bits 2 * (j / 4) of scales[8 + j % 4] (Q3KScale).
struct BlockQ3_K {
  uint8_t hmask[kQKK / 8];
  uint8_t qs[kQKK / 4];
  uint8_t scales[kKScaleBytes];
  Fp16 d;
};
// Q4_K: 8 sub-blocks of 32; sub-block j: x = (d * sc_j) * q - (dmin * m_j), with the six-bit
// sc_j, m_j in `scales` (UnpackScaleMinK). qs holds 4 groups of 64 elements, 32 bytes each:
// in group g (elements 64g..64g+63 = sub-blocks 2g, 2g+1), byte l's low nibble is element
// 64g + l and its high nibble element 64g + 32 + l.
struct BlockQ4_K {
  Fp16 d;
  Fp16 dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qs[kQKK / 2];
};
// Q5_K: as Q4_K with a fifth bit: element 64g + l takes bit 2g of qh[l], element 64g + 32 + l
// bit 2g + 1 (l < 32).
struct BlockQ5_K {
  Fp16 d;
  Fp16 dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qh[kQKK / 8];
  uint8_t qs[kQKK / 2];
};
// Q6_K: 16 sub-blocks of 16; element e: x = (d * scales[e / 16]) * (q - 32), q = 6 bits. Two
// halves of 128 elements; in half h (ql + 64h, qh + 32h), for l < 32:
//   element 128h +      l: low nibble of ql[l],      bits 0-1 of qh[l]
//   element 128h + 32 + l: low nibble of ql[32 + l], bits 2-3 of qh[l]
//   element 128h + 64 + l: high nibble of ql[l],     bits 4-5 of qh[l]
//   element 128h + 96 + l: high nibble of ql[32 + l], bits 6-7 of qh[l]
struct BlockQ6_K {
  uint8_t ql[kQKK / 2];
  uint8_t qh[kQKK / 4];
  int8_t scales[kQKK / 16];
  Fp16 d;
};
static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ2_K) == 84);
static_assert(sizeof(BlockQ3_K) == 110);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);

// Six-bit scale j (0..15) of a Q3_K super-block, 0..63 (the value is this - 32).
inline int Q3KScale(const uint8_t* scales, int j) {
  const int low = j < 8 ? scales[j] & 0x0f : scales[j - 8] >> 4;
  const int high = (scales[8 + j % 4] >> (2 * (j / 4))) & 3;
  return low | high << 4;
}

// Six-bit scale and minimum of sub-block j (0..7) of a Q4_K / Q5_K super-block: sub-blocks 0..3
// keep theirs in the low 6 bits of scales[j] and scales[j + 4]; 4..7 have their low 4 bits in
// scales[j + 4] (scale low nibble, minimum high nibble) and their top 2 bits in the top 2 bits
// of scales[j - 4] (scale) and scales[j] (minimum).
inline void UnpackScaleMinK(const uint8_t* scales, int j, int* sc, int* m) {
  if (j < 4) {
    *sc = scales[j] & 0x3f;
    *m = scales[j + 4] & 0x3f;
  } else {
    *sc = (scales[j + 4] & 0x0f) | ((scales[j - 4] >> 6) << 4);
    *m = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
  }
}

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
