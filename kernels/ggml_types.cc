#include "kernels/ggml_types.h"

namespace troupe {

std::optional<GgmlTypeTraits> TraitsOf(uint32_t type) {
  switch (static_cast<GgmlType>(type)) {
    case GgmlType::kF32: return GgmlTypeTraits{"F32", 1, 4};
    case GgmlType::kF16: return GgmlTypeTraits{"F16", 1, 2};
    case GgmlType::kBF16: return GgmlTypeTraits{"BF16", 1, 2};
    case GgmlType::kQ4_0: return GgmlTypeTraits{"Q4_0", kQK, sizeof(BlockQ4_0)};
    case GgmlType::kQ4_1: return GgmlTypeTraits{"Q4_1", kQK, sizeof(BlockQ4_1)};
    case GgmlType::kQ8_0: return GgmlTypeTraits{"Q8_0", kQK, sizeof(BlockQ8_0)};
    case GgmlType::kQ5_0: return GgmlTypeTraits{"Q5_0", kQK, sizeof(BlockQ5_0)};
    case GgmlType::kQ5_1: return GgmlTypeTraits{"Q5_1", kQK, sizeof(BlockQ5_1)};
    case GgmlType::kQ2_K: return GgmlTypeTraits{"Q2_K", kQKK, sizeof(BlockQ2_K)};
    case GgmlType::kQ3_K: return GgmlTypeTraits{"Q3_K", kQKK, sizeof(BlockQ3_K)};
    case GgmlType::kQ4_K: return GgmlTypeTraits{"Q4_K", kQKK, sizeof(BlockQ4_K)};
    case GgmlType::kQ5_K: return GgmlTypeTraits{"Q5_K", kQKK, sizeof(BlockQ5_K)};
    case GgmlType::kQ6_K: return GgmlTypeTraits{"Q6_K", kQKK, sizeof(BlockQ6_K)};
  }
  return std::nullopt;
}

float Fp16ToFp32(Fp16 h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  if (exp == 0) {
    if (mant == 0) return Fp32FromBits(sign);
    // Subnormal: normalise.
    int e = -1;
    do {
      ++e;
      mant <<= 1;
    } while ((mant & 0x400) == 0);
    mant &= 0x3ff;
    return Fp32FromBits(sign | static_cast<uint32_t>(127 - 15 - e) << 23 | mant << 13);
  }
  if (exp == 31) return Fp32FromBits(sign | 0x7f800000u | mant << 13);
  return Fp32FromBits(sign | (exp + 127 - 15) << 23 | mant << 13);
}

Fp16 Fp32ToFp16(float f) {
  const uint32_t u = BitsFromFp32(f);
  const uint32_t sign = (u >> 16) & 0x8000;
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<Fp16>(sign | 0x7e00);  // NaN
  if (abs >= 0x477ff000u) return static_cast<Fp16>(sign | 0x7c00);  // overflow -> inf
  if (abs < 0x38800000u) {                                         // subnormal or zero
    if (abs < 0x33000000u) return static_cast<Fp16>(sign);
    const uint32_t exp = abs >> 23;
    const uint32_t mant = (abs & 0x7fffff) | 0x800000;
    const int shift = 126 - static_cast<int>(exp);
    uint32_t half = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (half & 1))) ++half;
    return static_cast<Fp16>(sign | half);
  }
  uint32_t h = ((abs >> 13) - ((127 - 15) << 10));
  const uint32_t rem = abs & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) ++h;
  return static_cast<Fp16>(sign | h);
}

}  // namespace troupe
