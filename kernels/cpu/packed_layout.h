// The repacked layout of quantized weights (Q4_0, Q4_1, Q8_0, and Q5_0, Q5_1, Q4_K, Q5_K, Q6_K),
// shared by Pack, GetRow and the matmul kernels of every ISA. Pure functions; safe from any
// thread.
//
// Rows are grouped into tiles of kTileRows = 16 (the last tile padded with zero rows). A tile
// holds the tile's 16 rows for every 32-element block b in [0, nb), in three arrays:
//   qs [nb][QsBytes]   quantized values; chunk j (64 bytes) holds 4 bytes per row:
//                      bytes [4i, 4i+4) of chunk j belong to row i of the tile.
//       Q4_0/Q4_1: 4 chunks; chunk j = the source's qs[4j, 4j+4) of each row, so its low
//                  nibbles are elements 4j..4j+3 and its high nibbles elements 16+4j..16+4j+3.
//       Q8_0:      8 chunks; chunk j = the source's qs[4j, 4j+4) + 128 (stored as uint8).
//   d  [nb][16] fp16   the rows' block scales
//   m  [nb][16] fp16   the rows' block minimums (Q4_1 only)
// and is padded to a multiple of 64 bytes. Per row and block that is exactly the source's bytes
// (18 / 20 / 34), so a packed matrix is the size of its GGUF tensor plus the padding.
//
// The 5-bit and K-quant types are cut into 32-element blocks too (a K super-block is 8 of them),
// each with its scales already multiplied out in f32 (exact: an fp16 times a 6- or 8-bit
// integer), so the kernels see one more kind of "block of 32 with a scale":
//   Q4_K        qs as Q4_0/Q4_1 (4 chunks of nibbles, re-nibbled from the K order), then
//               f32 d[nb][16] = d * sc and f32 m[nb][16] = -dmin * m (x = d q + m)
//   Q5_0, Q5_1, Q5_K, Q6_K ("int8 types")
//               qs as Q8_0 (8 chunks), one byte per value: the 5-bit types as uint8 q (0..31;
//               Q5_0's value is q - 16, as Q4_0's is q - 8), Q6_K as int8 q - 32; then f32
//               d[nb][S][16] with S = 2 for Q6_K (the scales of elements 0..15 and 16..31 of
//               the block), else 1; then f32 m[nb][16] for Q5_1 (its fp16 m) and Q5_K
//               (-dmin * m).
// These take 24 (Q4_K) or 36-40 bytes per row and block against the source's 18-26.25:
// simpler kernels for more memory traffic (TODO(#15): keep 5-bit and Q6_K values packed).
// One 32-bit lane of a 512-bit register is then one row, which is what VNNI's dpbusd wants:
// lane i accumulates 4 (u8 weight x s8 activation) products of row i.
#pragma once

#include <cstdint>

#include "kernels/ggml_types.h"

namespace troupe::cpu::layout {

constexpr int kTileRows = 16;
constexpr int kChunkBytes = 64;  // one zmm: 4 bytes for each of the 16 rows

// The types with f32 scales (the 5-bit and K-quant types).
constexpr bool HasF32Scales(GgmlType t) {
  return t == GgmlType::kQ5_0 || t == GgmlType::kQ5_1 || t == GgmlType::kQ4_K ||
         t == GgmlType::kQ5_K || t == GgmlType::kQ6_K;
}
constexpr bool IsRepacked(GgmlType t) {
  return t == GgmlType::kQ4_0 || t == GgmlType::kQ4_1 || t == GgmlType::kQ8_0 || HasF32Scales(t);
}
// One byte per value, 8 chunks per block (Q5_0, Q5_1, Q5_K as uint8, Q6_K as int8).
constexpr bool IsInt8Type(GgmlType t) { return HasF32Scales(t) && t != GgmlType::kQ4_K; }
// The 5-bit types: uint8 values 0..31.
constexpr bool IsFiveBit(GgmlType t) {
  return t == GgmlType::kQ5_0 || t == GgmlType::kQ5_1 || t == GgmlType::kQ5_K;
}
constexpr bool HasMin(GgmlType t) {
  return t == GgmlType::kQ4_1 || t == GgmlType::kQ5_1 || t == GgmlType::kQ4_K ||
         t == GgmlType::kQ5_K;
}
// Scales per row and 32-element block: Q6_K has one per 16 elements.
constexpr int ScalesPerBlock(GgmlType t) { return t == GgmlType::kQ6_K ? 2 : 1; }
// Bytes of quantized values per block for a whole tile.
constexpr int QsBytes(GgmlType t) {
  return t == GgmlType::kQ8_0 || IsInt8Type(t) ? 8 * kChunkBytes : 4 * kChunkBytes;
}
// Bytes of the tile's scales (or minimums) per block: 16 fp16, or 16 f32 per scale.
constexpr int ScaleBytes(GgmlType t) {
  return HasF32Scales(t) ? kTileRows * 4 * ScalesPerBlock(t) : kTileRows * 2;
}
constexpr int MinBytes(GgmlType t) {
  return !HasMin(t) ? 0 : HasF32Scales(t) ? kTileRows * 4 : kTileRows * 2;
}

// Bytes of one tile of a matrix with `nb` blocks per row (padded to 64).
constexpr int64_t TileBytes(GgmlType t, int64_t nb) {
  const int64_t raw = nb * (QsBytes(t) + ScaleBytes(t) + MinBytes(t));
  return (raw + 63) / 64 * 64;
}
constexpr int64_t NumTiles(int64_t rows) { return (rows + kTileRows - 1) / kTileRows; }

// Pointers into tile `tile` of a packed matrix starting at `base`.
struct TileView {
  const uint8_t* qs;  // [nb][QsBytes]
  const Fp16* d;      // [nb][16]; null if HasF32Scales
  const Fp16* m;      // [nb][16]; null unless HasMin and not HasF32Scales
  const float* fd;    // [nb][ScalesPerBlock][16]; null unless HasF32Scales
  const float* fm;    // [nb][16]; null unless HasMin and HasF32Scales
};
inline TileView Tile(const uint8_t* base, GgmlType t, int64_t nb, int64_t tile) {
  const uint8_t* p = base + tile * TileBytes(t, nb);
  const uint8_t* d = p + nb * QsBytes(t);
  const uint8_t* m = HasMin(t) ? d + nb * ScaleBytes(t) : nullptr;
  if (HasF32Scales(t)) {
    return {p, nullptr, nullptr, reinterpret_cast<const float*>(d),
            reinterpret_cast<const float*>(m)};
  }
  return {p, reinterpret_cast<const Fp16*>(d), reinterpret_cast<const Fp16*>(m), nullptr,
          nullptr};
}

}  // namespace troupe::cpu::layout
