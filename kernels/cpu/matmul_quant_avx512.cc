// AVX-512 VNNI quantized matmul kernel: 16 weight rows (one tile, one row per int32 lane) x up
// to kMaxTokens tokens per call.
//
// Design: for each 32-element block, the tile's weights are loaded and unpacked to u8 once
// (8 zmm: 4 rows-bytes per lane) and reused for every token of the call; each token then costs
// 8 dpbusd (u8 weight x s8 activation, 4 products per lane) with the activation's 4 bytes
// broadcast, plus a float epilogue: acc += float(isum) * (dw * dx) [+ mw * sx for Q4_1]. The
// int32 accumulator starts at the activation's bias (-offset * sum(q)) so the stored unsigned
// weights (Q4_0: q, meaning q - 8; Q8_0: q + 128; Q5_0: q, meaning q - 16) need no correction
// afterwards. Q5_0, Q5_1 and Q5_K unpack like Q4 plus a chunk of fifth bits, Q4_K like Q4_1,
// the K types with f32 scales (packed_layout.h); Q2_K, Q3_K and Q6_K in TileTokensPer16. The loops
// around it are matmul_tile_driver.h's: tokens in chunks of kChunkTokens so the activations of a
// chunk stay in L1/L2 while all the caller's tiles stream past; a tile's weights (<= 16 KiB for
// 1536 columns) stay in L1 across the token tiles of a chunk.
#include "kernels/cpu/matmul_isa.h"

#if defined(__AVX512VNNI__) && defined(__AVX512BW__)

#include <immintrin.h>
// GCC 12's AVX-512 intrinsics headers trip its own -Wmaybe-uninitialized (GCC bug 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <cstring>

#include "kernels/cpu/matmul_tile_driver.h"
#include "kernels/cpu/packed_layout.h"

namespace troupe::cpu::internal {

namespace {

// Software prefetch distance for weights streamed from DRAM (first token tile of a tile): the
// hardware prefetchers alone leave a single core at ~9 GB/s; this adds 10-25% (bench_matmul).
constexpr int kPrefetchBytes = 2048;

// One micro-kernel call; matmul_tile_driver.h sets every field but tile and mask.
struct TileCall {
  layout::TileView tile;
  int64_t nb;
  const Q8Activations* act;
  int64_t t0;           // first token
  float* y;             // y + t0 * ldy + first row of the tile
  int64_t ldy;          // rows of the output
  __mmask16 mask;       // valid rows of the tile
  bool first_in_chunk;  // first token tile of its chunk: prefetch the weight stream ahead
};

// The 4 activation bytes p[0, 4) in every 32-bit lane.
inline __m512i Broadcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// Computes T tokens x 16 rows of y for the tile.
template <GgmlType kType, int T>
void TileTokens(const TileCall& c) {
  constexpr int kQs = layout::QsBytes(kType);
  // Bytes of one block in the tile: qs + d (+ m).
  constexpr int kBlockBytes = kQs + layout::ScaleBytes(kType) + layout::MinBytes(kType);
  const Q8Activations& act = *c.act;
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  __m512 acc[T];
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < c.nb; ++b) {
    // 1) The tile's weights for block b as u8, chunk j matching activation bytes [4j, 4j+4).
    __m512i w[8];
    const uint8_t* qs = c.tile.qs + b * kQs;
    if (c.first_in_chunk) {  // weights not yet in cache
      // This block's share of the tile, kPrefetchBytes ahead in the linear weight stream.
      const uint8_t* pf = c.tile.qs + kPrefetchBytes + b * kBlockBytes;
      for (int l = 0; l < kBlockBytes; l += 64)
        _mm_prefetch(reinterpret_cast<const char*>(pf + l), _MM_HINT_T0);
    }
    if constexpr (kType == GgmlType::kQ8_0) {
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) w[j] = _mm512_load_si512(qs + j * layout::kChunkBytes);
    } else {
#pragma GCC unroll 8
      for (int j = 0; j < 4; ++j) {
        const __m512i v = _mm512_load_si512(qs + j * layout::kChunkBytes);
        w[j] = _mm512_and_si512(v, low4);
        w[j + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
      }
      if constexpr (layout::IsFiveBit(kType)) {
        // The permuted fifth bits (packed_layout.h): for byte k of chunk j, bit 8k + j (low
        // nibble) and 8k + 4 + j (high nibble) of the row's word; a shift brings them to 8k + 4.
        const __m512i hb = _mm512_load_si512(qs + layout::kFifthBitChunk * layout::kChunkBytes);
        const __m512i bit4 = _mm512_set1_epi8(0x10);
#pragma GCC unroll 4
        for (int j = 0; j < 4; ++j) {
          w[j] = _mm512_or_si512(w[j], _mm512_and_si512(_mm512_slli_epi32(hb, 4 - j), bit4));
          w[j + 4] = _mm512_or_si512(w[j + 4], _mm512_and_si512(_mm512_srli_epi32(hb, j), bit4));
        }
      }
    }
    __m512 dw, mw = _mm512_setzero_ps();
    if constexpr (layout::HasF32Scales(kType)) {
      dw = _mm512_load_ps(c.tile.fd + b * layout::kTileRows);
      if constexpr (layout::HasMin(kType)) mw = _mm512_load_ps(c.tile.fm + b * layout::kTileRows);
    } else {
      dw = _mm512_cvtph_ps(
          _mm256_load_si256(reinterpret_cast<const __m256i*>(c.tile.d + b * layout::kTileRows)));
      if constexpr (layout::HasMin(kType)) {
        mw = _mm512_cvtph_ps(
            _mm256_load_si256(reinterpret_cast<const __m256i*>(c.tile.m + b * layout::kTileRows)));
      }
    }
    // 2) Every token reuses them: 8 dpbusd, then the scaled float update.
    const int64_t i0 = act.Index(b, c.t0);
    const int8_t* xq = act.qs + i0 * kQK;
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      __m512i s = layout::HasMin(kType) ? _mm512_setzero_si512()  // offset 0: no bias
                                        : _mm512_set1_epi32(act.bias[i0 + t]);
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j)
        s = _mm512_dpbusd_epi32(s, w[j], Broadcast4(xq + t * kQK + 4 * j));
      const __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(act.d[i0 + t]));
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), scale, acc[t]);
      if constexpr (layout::HasMin(kType)) {
        acc[t] = _mm512_fmadd_ps(mw, _mm512_set1_ps(act.s[i0 + t]), acc[t]);
      }
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) _mm512_mask_storeu_ps(c.y + t * c.ldy, c.mask, acc[t]);
}

// The same for the types with a byte per value and a scale per 16 elements (Q2_K, Q3_K, Q6_K;
// packed_layout.h stores them as int8): each block's bytes are shifted to u8 once (+4 for Q3_K,
// +32 for Q6_K) and each half block gets its own dpbusd sum and scale. The shift is taken back
// exactly in int32, each half's sum starting at -offset * (the activations' integer sum of that
// half, sum16); Q2_K's minimums meet dx * sum16 in float.
template <GgmlType kType, int T>
void TileTokensPer16(const TileCall& c) {
  static_assert(layout::IsSignedBytes(kType));
  constexpr int kQs = layout::QsBytes(kType);
  constexpr int kBlockBytes = kQs + layout::ScaleBytes(kType) + layout::MinBytes(kType);
  constexpr int kOffset = kType == GgmlType::kQ6_K ? 32 : kType == GgmlType::kQ3_K ? 4 : 0;
  const Q8Activations& act = *c.act;
  const __m512i offset = _mm512_set1_epi8(kOffset);
  __m512 acc[T];
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < c.nb; ++b) {
    __m512i w[8];
    const uint8_t* qs = c.tile.qs + b * kQs;
    if (c.first_in_chunk) {
      const uint8_t* pf = c.tile.qs + kPrefetchBytes + b * kBlockBytes;
      for (int l = 0; l < kBlockBytes; l += 64)
        _mm_prefetch(reinterpret_cast<const char*>(pf + l), _MM_HINT_T0);
    }
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {
      w[j] = _mm512_add_epi8(_mm512_load_si512(qs + j * layout::kChunkBytes), offset);
    }
    __m512 dw[2], mw[2];  // per half: scale, and Q2_K's minimum
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      dw[h] = _mm512_load_ps(c.tile.fd + (2 * b + h) * layout::kTileRows);
      if constexpr (kType == GgmlType::kQ2_K) {
        mw[h] = _mm512_load_ps(c.tile.fm + (2 * b + h) * layout::kTileRows);
      }
    }
    const int64_t i0 = act.Index(b, c.t0);
    const int8_t* xq = act.qs + i0 * kQK;
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      const __m512 dx = _mm512_set1_ps(act.d[i0 + t]);
#pragma GCC unroll 2
      for (int h = 0; h < 2; ++h) {
        const int32_t sum16 = act.sum16[2 * (i0 + t) + h];
        __m512i s = _mm512_set1_epi32(-kOffset * sum16);
#pragma GCC unroll 4
        for (int j = 4 * h; j < 4 * h + 4; ++j)
          s = _mm512_dpbusd_epi32(s, w[j], Broadcast4(xq + t * kQK + 4 * j));
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw[h], dx), acc[t]);
        if constexpr (kType == GgmlType::kQ2_K) {
          acc[t] = _mm512_fmadd_ps(
              mw[h], _mm512_set1_ps(act.d[i0 + t] * static_cast<float>(sum16)), acc[t]);
        }
      }
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) _mm512_mask_storeu_ps(c.y + t * c.ldy, c.mask, acc[t]);
}

template <GgmlType kType, int T>
void TokensFor(const TileCall& c) {
  if constexpr (layout::IsSignedBytes(kType)) {
    TileTokensPer16<kType, T>(c);
  } else {
    TileTokens<kType, T>(c);
  }
}

// The kernel as matmul_tile_driver.h drives it: whole 16-row tiles, partial ones masked.
struct Avx512VnniKernel {
  using Call = TileCall;
  // Tokens per register tile (8 accumulators + 8 weights + 4): one activation group, whose
  // blocks are contiguous (q8_activations.h).
  static constexpr int kMaxTokens = kActGroup;
  static constexpr int64_t kChunkTokens = 64;  // a multiple of kActGroup; x of 576 columns fits L1
  static constexpr int kSubTileRows = layout::kTileRows;
  static_assert(kMaxTokens == 8);  // the micro-kernel's unroll pragmas
  static void SelectRows(const layout::TileView& tile, int /*sub*/, int valid, Call* c) {
    c->tile = tile;
    c->mask = static_cast<__mmask16>((1u << valid) - 1);
  }
  template <GgmlType kType, int T>
  static constexpr void (*kTokens)(const Call&) = &TokensFor<kType, T>;
};

}  // namespace

void QuantTilesAvx512Vnni(const QuantTileArgs& args) {
  switch (args.w->type()) {
    case GgmlType::kQ5_0:
      return RunQuantTiles<Avx512VnniKernel, GgmlType::kQ5_0>(args);
    case GgmlType::kQ5_1:
      return RunQuantTiles<Avx512VnniKernel, GgmlType::kQ5_1>(args);
    case GgmlType::kQ4_K:
      return RunQuantTiles<Avx512VnniKernel, GgmlType::kQ4_K>(args);
    case GgmlType::kQ5_K:
      return RunQuantTiles<Avx512VnniKernel, GgmlType::kQ5_K>(args);
    case GgmlType::kQ2_K:
      return RunQuantTiles<Avx512VnniKernel, GgmlType::kQ2_K>(args);
    case GgmlType::kQ3_K:
      return RunQuantTiles<Avx512VnniKernel, GgmlType::kQ3_K>(args);
    case GgmlType::kQ6_K:
      return RunQuantTiles<Avx512VnniKernel, GgmlType::kQ6_K>(args);
    default:
      return RunQuantTilesForType<Avx512VnniKernel>(args);
  }
}

}  // namespace troupe::cpu::internal

#endif  // __AVX512VNNI__ && __AVX512BW__
