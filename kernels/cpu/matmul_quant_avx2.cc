// AVX2 quantized matmul kernel (fallback for CPUs without AVX-512 VNNI): each half tile of
// 8 rows x up to kMaxTokens tokens. Same scheme as the VNNI kernel with maddubs (u8 x s8 ->
// pairwise int16 sums) + madd by ones in place of dpbusd. Q4 products fit int16 even summed
// over a whole block (8 x 2 x 15 x 127 = 30480 < 32767); Q8_0 weights are turned back into int8
// and use the sign trick |w| * sign(x, w) so no int16 sum can saturate (2 x 128 x 127).
// The 5-bit types (Q5_0, Q5_1, Q5_K: nibbles plus a chunk of fifth bits, unpacked to uint8
// 0..31, Q5_0 with Q4_0's offset trick) go straight into maddubs; their pair sums
// (<= 2 x 31 x 127) add up in int16 over 16 elements (4 chunks, <= 31496), so each half of a
// block becomes its own int32 sum. Q2_K, Q3_K and Q6_K (int8 q in [0, 3] / [-4, 3] / q - 32,
// |w| <= 32) use the sign trick, one int32 sum per half, each scaled on its own (and Q2_K's
// minimum per half against the activations' per-16 sums). Q4_K runs as Q4_1 with f32 scales.
#include "kernels/cpu/matmul_isa.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

#include <immintrin.h>
// GCC 12's AVX-512 intrinsics headers trip its own -Wmaybe-uninitialized (GCC bug 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <algorithm>
#include <cstring>

#include "kernels/cpu/matmul_tile_driver.h"
#include "kernels/cpu/packed_layout.h"

namespace troupe::cpu::internal {

namespace {

// One micro-kernel call on half a tile; matmul_tile_driver.h sets nb, act, t0, y, ldy and
// first_in_chunk.
struct HalfCall {
  const uint8_t* qs;  // tile qs + 32 * half
  const Fp16* d;      // tile d + 8 * half
  const Fp16* m;      // tile m + 8 * half, or null
  const float* fd;    // tile fd + 8 * half, or null (f32-scale types)
  const float* fm;    // tile fm + 8 * half, or null
  int64_t nb;
  const Q8Activations* act;
  int64_t t0;
  float* y;  // y + t0 * ldy + first row of the half tile
  int64_t ldy;
  int valid;            // rows of the half tile to store (1..8)
  bool first_in_chunk;  // unused: no software prefetch here
};

inline __m256i Broadcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

template <GgmlType kType, int T>
void HalfTokens(const HalfCall& c) {
  constexpr int kQs = layout::QsBytes(kType);
  constexpr bool kF32Scales = layout::HasF32Scales(kType);
  constexpr bool kFiveBit = layout::IsFiveBit(kType);
  // A byte per value once unpacked, summed per half block (see the file comment).
  constexpr bool kSigned = layout::IsSignedBytes(kType);  // Q2_K, Q3_K, Q6_K
  constexpr bool kInt8 = kFiveBit || kSigned;
  constexpr int kScales = layout::ScalesPerBlock(kType);
  const Q8Activations& act = *c.act;
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256i top = _mm256_set1_epi8(static_cast<char>(0x80));
  __m256 acc[T];
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < c.nb; ++b) {
    __m256i w[8];
    const uint8_t* qs = c.qs + b * kQs;
    if constexpr (kSigned) {
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) {
        w[j] = _mm256_load_si256(reinterpret_cast<const __m256i*>(qs + j * layout::kChunkBytes));
      }
    } else if constexpr (kType == GgmlType::kQ8_0) {
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) {
        const __m256i v =
            _mm256_load_si256(reinterpret_cast<const __m256i*>(qs + j * layout::kChunkBytes));
        w[j] = _mm256_xor_si256(v, top);  // back to int8 q
      }
    } else {
#pragma GCC unroll 8
      for (int j = 0; j < 4; ++j) {
        const __m256i v =
            _mm256_load_si256(reinterpret_cast<const __m256i*>(qs + j * layout::kChunkBytes));
        w[j] = _mm256_and_si256(v, low4);
        w[j + 4] = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
      }
      if constexpr (kFiveBit) {
        // The permuted fifth bits (packed_layout.h): for byte k of chunk j, bit 8k + j (low
        // nibble) and 8k + 4 + j (high nibble) of the row's word; a shift brings them to 8k + 4.
        const __m256i hb = _mm256_load_si256(
            reinterpret_cast<const __m256i*>(qs + layout::kFifthBitChunk * layout::kChunkBytes));
        const __m256i bit4 = _mm256_set1_epi8(0x10);
#pragma GCC unroll 4
        for (int j = 0; j < 4; ++j) {
          w[j] = _mm256_or_si256(w[j], _mm256_and_si256(_mm256_slli_epi32(hb, 4 - j), bit4));
          w[j + 4] = _mm256_or_si256(w[j + 4], _mm256_and_si256(_mm256_srli_epi32(hb, j), bit4));
        }
      }
    }
    __m256 dw, dw_hi = _mm256_setzero_ps();
    if constexpr (kF32Scales) {
      dw = _mm256_loadu_ps(c.fd + b * kScales * layout::kTileRows);
      if constexpr (kScales == 2) dw_hi = _mm256_loadu_ps(c.fd + (2 * b + 1) * layout::kTileRows);
    } else {
      dw = _mm256_cvtph_ps(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(c.d + b * layout::kTileRows)));
    }
    constexpr int kMins = layout::MinsPerBlock(kType);
    __m256 mw = _mm256_setzero_ps(), mw_hi = _mm256_setzero_ps();
    if constexpr (layout::HasMin(kType) && kF32Scales) {
      mw = _mm256_loadu_ps(c.fm + b * kMins * layout::kTileRows);
      if constexpr (kMins == 2) mw_hi = _mm256_loadu_ps(c.fm + (2 * b + 1) * layout::kTileRows);
    } else if constexpr (layout::HasMin(kType)) {
      mw = _mm256_cvtph_ps(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(c.m + b * layout::kTileRows)));
    }
    __m256i w_abs[8];
    if constexpr (kSigned) {
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) w_abs[j] = _mm256_abs_epi8(w[j]);
    }
    const int64_t i0 = act.Index(b, c.t0);
    const int8_t* xq = act.qs + i0 * kQK;
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      __m256i s;
      if constexpr (kInt8) {
        // Elements 0..15 (chunks 0-3) and 16..31 (chunks 4-7), each summed in int16.
        __m256i half_sum[2];
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
          __m256i p = _mm256_setzero_si256();
#pragma GCC unroll 4
          for (int j = 4 * h; j < 4 * h + 4; ++j) {
            const __m256i x = Broadcast4(xq + t * kQK + 4 * j);
            if constexpr (kFiveBit) {
              p = _mm256_add_epi16(p, _mm256_maddubs_epi16(w[j], x));
            } else {
              p = _mm256_add_epi16(p, _mm256_maddubs_epi16(w_abs[j], _mm256_sign_epi8(x, w[j])));
            }
          }
          half_sum[h] = _mm256_madd_epi16(p, ones);
        }
        if constexpr (kFiveBit) {  // Q5_0's -16 * sum(x); 0 for the others
          half_sum[0] = _mm256_add_epi32(half_sum[0], _mm256_set1_epi32(act.bias[i0 + t]));
        }
        const __m256 dx = _mm256_set1_ps(act.d[i0 + t]);
        if constexpr (kScales == 2) {
          acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(half_sum[0]), _mm256_mul_ps(dw, dx), acc[t]);
          acc[t] =
              _mm256_fmadd_ps(_mm256_cvtepi32_ps(half_sum[1]), _mm256_mul_ps(dw_hi, dx), acc[t]);
        } else {
          acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(half_sum[0], half_sum[1])),
                                   _mm256_mul_ps(dw, dx), acc[t]);
        }
        if constexpr (kMins == 2) {  // Q2_K: a minimum per 16 elements
          const float dx_s = act.d[i0 + t];
          acc[t] = _mm256_fmadd_ps(
              mw, _mm256_set1_ps(dx_s * static_cast<float>(act.sum16[2 * (i0 + t)])), acc[t]);
          acc[t] = _mm256_fmadd_ps(
              mw_hi, _mm256_set1_ps(dx_s * static_cast<float>(act.sum16[2 * (i0 + t) + 1])),
              acc[t]);
        } else if constexpr (layout::HasMin(kType)) {
          acc[t] = _mm256_fmadd_ps(mw, _mm256_set1_ps(act.s[i0 + t]), acc[t]);
        }
        continue;
      }
      if constexpr (kType == GgmlType::kQ8_0) {
        s = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int j = 0; j < 8; ++j) {
          const __m256i x = _mm256_sign_epi8(Broadcast4(xq + t * kQK + 4 * j), w[j]);
          s = _mm256_add_epi32(
              s, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(w[j]), x), ones));
        }
      } else {
        __m256i p = _mm256_maddubs_epi16(w[0], Broadcast4(xq + t * kQK));
#pragma GCC unroll 8
        for (int j = 1; j < 8; ++j) {
          p = _mm256_add_epi16(p, _mm256_maddubs_epi16(w[j], Broadcast4(xq + t * kQK + 4 * j)));
        }
        s = _mm256_add_epi32(_mm256_madd_epi16(p, ones), _mm256_set1_epi32(act.bias[i0 + t]));
      }
      const __m256 scale = _mm256_mul_ps(dw, _mm256_set1_ps(act.d[i0 + t]));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), scale, acc[t]);
      if constexpr (layout::HasMin(kType)) {
        acc[t] = _mm256_fmadd_ps(mw, _mm256_set1_ps(act.s[i0 + t]), acc[t]);
      }
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) {
    if (c.valid == 8) {
      _mm256_storeu_ps(c.y + t * c.ldy, acc[t]);
    } else {
      float tmp[8];
      _mm256_storeu_ps(tmp, acc[t]);
      std::copy(tmp, tmp + c.valid, c.y + t * c.ldy);
    }
  }
}

// The kernel as matmul_tile_driver.h drives it: half tiles of 8 rows (one per float lane).
struct Avx2Kernel {
  using Call = HalfCall;
  static constexpr int kMaxTokens = 4;  // half an activation group: never straddles two groups
  static constexpr int64_t kChunkTokens = 128;
  static constexpr int kSubTileRows = 8;
  static void SelectRows(const layout::TileView& tile, int half, int valid, Call* c) {
    c->qs = tile.qs + 32 * half;
    c->d = tile.d + 8 * half;
    c->m = tile.m != nullptr ? tile.m + 8 * half : nullptr;
    c->fd = tile.fd != nullptr ? tile.fd + 8 * half : nullptr;
    c->fm = tile.fm != nullptr ? tile.fm + 8 * half : nullptr;
    c->valid = valid;
  }
  template <GgmlType kType, int T>
  static constexpr void (*kTokens)(const Call&) = &HalfTokens<kType, T>;
};

}  // namespace

void QuantTilesAvx2(const QuantTileArgs& args) {
  switch (args.w->type()) {
    case GgmlType::kQ5_0:
      return RunQuantTiles<Avx2Kernel, GgmlType::kQ5_0>(args);
    case GgmlType::kQ5_1:
      return RunQuantTiles<Avx2Kernel, GgmlType::kQ5_1>(args);
    case GgmlType::kQ4_K:
      return RunQuantTiles<Avx2Kernel, GgmlType::kQ4_K>(args);
    case GgmlType::kQ5_K:
      return RunQuantTiles<Avx2Kernel, GgmlType::kQ5_K>(args);
    case GgmlType::kQ6_K:
      return RunQuantTiles<Avx2Kernel, GgmlType::kQ6_K>(args);
    case GgmlType::kQ3_K:
      return RunQuantTiles<Avx2Kernel, GgmlType::kQ3_K>(args);
    case GgmlType::kQ2_K:
      return RunQuantTiles<Avx2Kernel, GgmlType::kQ2_K>(args);
    default:
      return RunQuantTilesForType<Avx2Kernel>(args);
  }
}

}  // namespace troupe::cpu::internal

#endif  // __AVX2__ && __FMA__ && __F16C__
