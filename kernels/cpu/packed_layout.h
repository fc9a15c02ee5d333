// The repacked layout of quantized weights (Q4_0, Q4_1, Q8_0, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K,
// Q5_K, Q6_K), shared by Pack, GetRow and the matmul kernels of every ISA. Pure functions; safe from any
// thread.
//
// Rows are grouped into tiles of kTileRows = 16 (the last tile padded with zero rows). A tile
// holds the tile's 16 rows for every 32-element block b in [0, nb), in three arrays:
//   qs [nb][QsBytes]   quantized values; chunk j (64 bytes) holds 4 bytes per row:
//                      bytes [4i, 4i+4) of chunk j belong to row i of the tile.
//       Q4_0/Q4_1: 4 chunks; chunk j = the source's qs[4j, 4j+4) of each row, so its low
//                  nibbles are elements 4j..4j+3 and its high nibbles elements 16+4j..16+4j+3.
//       Q8_0:      8 chunks; chunk j = the source's qs[4j, 4j+4) + 128 (stored as uint8).
//       Q5_0/Q5_1/Q5_K: the low 4 bits as Q4 (4 chunks), then chunk 4: each row's 32 fifth
//                  bits as a little-endian uint32, permuted so that a shift and a mask put
//                  them in place: element 4j + k (j, k < 4; low nibble k of chunk j) at bit
//                  8k + j, element 16 + 4j + k (high nibble k of chunk j) at bit 8k + 4 + j.
//                  Q5_0's value is q - 16 (as Q4_0's is q - 8).
//   d  [nb][16] fp16   the rows' block scales
//   m  [nb][16] fp16   the rows' block minimums (Q4_1, Q5_1)
// and is padded to a multiple of 64 bytes. Per row and block that is exactly the source's bytes
// (18 / 20 / 34 / 22 / 24), so a packed matrix is the size of its GGUF tensor plus the padding.
//
// The K-quants are cut into 32-element blocks too (a super-block is 8 of them), each with its
// scales already multiplied out in f32 (exact: an fp16 times a 6- or 8-bit integer), so the
// kernels see one more kind of "block of 32 with a scale":
//   Q4_K  qs as Q4_1 (re-nibbled from the K order), f32 d[nb][16] = d * sc, f32 m[nb][16] =
//         -dmin * m (x = d q + m): 24 bytes per row and block (source 18)
//   Q5_K  qs as Q5_1, f32 d and m likewise: 28 bytes (source 22)
//   Q6_K  8 chunks of int8 q - 32 (as Q8_0's, not offset), f32 d[nb][2][16]: the scales of
//         elements 0..15 and 16..31 of the block: 40 bytes (source 26.25; TODO(#15): packed)
//   Q3_K  as Q6_K with int8 q in [-4, 3] and d * (sc - 32): 40 bytes (source 13.75)
//   Q2_K  as Q3_K with q in [0, 3] and d * sc, plus f32 m[nb][2][16] = -dmin * m per 16
//         elements: 48 bytes (source 10.5)
// One 32-bit lane of a 512-bit register is then one row, which is what VNNI's dpbusd wants:
// lane i accumulates 4 (u8 weight x s8 activation) products of row i.
#pragma once

#include <cstdint>

#include "kernels/ggml_types.h"

namespace troupe::cpu::layout {

constexpr int kTileRows = 16;
constexpr int kChunkBytes = 64;  // one zmm: 4 bytes for each of the 16 rows

// The K-quants: f32 scales.
constexpr bool HasF32Scales(GgmlType t) {
  return t == GgmlType::kQ2_K || t == GgmlType::kQ3_K || t == GgmlType::kQ4_K ||
         t == GgmlType::kQ5_K || t == GgmlType::kQ6_K;
}
// A signed byte per value and a scale per 16 elements (Q2_K: q in [0, 3], Q3_K: q in [-4, 3],
// Q6_K: q - 32).
constexpr bool IsSignedBytes(GgmlType t) {
  return t == GgmlType::kQ2_K || t == GgmlType::kQ3_K || t == GgmlType::kQ6_K;
}
// The 5-bit types: nibbles plus a chunk of fifth bits.
constexpr bool IsFiveBit(GgmlType t) {
  return t == GgmlType::kQ5_0 || t == GgmlType::kQ5_1 || t == GgmlType::kQ5_K;
}
constexpr bool IsRepacked(GgmlType t) {
  return t == GgmlType::kQ4_0 || t == GgmlType::kQ4_1 || t == GgmlType::kQ8_0 ||
         t == GgmlType::kQ5_0 || t == GgmlType::kQ5_1 || HasF32Scales(t);
}
// Packed by Block32 (packed_matrix.cc) rather than by copying source bytes.
constexpr bool IsNewType(GgmlType t) { return IsRepacked(t) && !(t == GgmlType::kQ4_0 ||
                                                                t == GgmlType::kQ4_1 ||
                                                                t == GgmlType::kQ8_0); }
constexpr bool HasMin(GgmlType t) {
  return t == GgmlType::kQ4_1 || t == GgmlType::kQ5_1 || t == GgmlType::kQ2_K ||
         t == GgmlType::kQ4_K || t == GgmlType::kQ5_K;
}
// Minimums per row and 32-element block: Q2_K has one per 16 elements.
constexpr int MinsPerBlock(GgmlType t) { return t == GgmlType::kQ2_K ? 2 : 1; }
// Scales per row and 32-element block: Q6_K has one per 16 elements.
constexpr int ScalesPerBlock(GgmlType t) { return IsSignedBytes(t) ? 2 : 1; }
constexpr int kFifthBitChunk = 4;  // the 5-bit types' chunk of fifth bits
// Bytes of quantized values per block for a whole tile.
constexpr int QsBytes(GgmlType t) {
  if (t == GgmlType::kQ8_0 || IsSignedBytes(t)) return 8 * kChunkBytes;
  return (IsFiveBit(t) ? 5 : 4) * kChunkBytes;
}
// Bytes of the tile's scales (or minimums) per block: 16 fp16, or 16 f32 per scale.
constexpr int ScaleBytes(GgmlType t) {
  return HasF32Scales(t) ? kTileRows * 4 * ScalesPerBlock(t) : kTileRows * 2;
}
constexpr int MinBytes(GgmlType t) {
  return !HasMin(t) ? 0 : HasF32Scales(t) ? kTileRows * 4 * MinsPerBlock(t) : kTileRows * 2;
}
// Bit of the permuted fifth-bit word (chunk kFifthBitChunk) that holds element e (0..31).
constexpr int FifthBitPosition(int e) {
  return e < 16 ? 8 * (e % 4) + e / 4 : 8 * ((e - 16) % 4) + 4 + (e - 16) / 4;
}

// The signed value of element e (0..31) of one row's block: `row_qs` is the block's qs plus
// 4 * (the row's lane). Stored offsets are removed (Q4_0 8, Q5_0 16, Q8_0 128); the readable
// statement of the qs layouts above, for GetRow and the scalar kernel.
inline int PackedValue(GgmlType t, const uint8_t* row_qs, int e) {
  if (t == GgmlType::kQ8_0) return row_qs[(e / 4) * kChunkBytes + e % 4] - 128;
  if (IsSignedBytes(t)) return static_cast<int8_t>(row_qs[(e / 4) * kChunkBytes + e % 4]);
  const int byte = e % 16;  // Q4 nibbles: element e < 16 low nibble of byte e, else high of e - 16
  const uint8_t v = row_qs[(byte / 4) * kChunkBytes + byte % 4];
  int q = e < 16 ? (v & 0x0f) : (v >> 4);
  if (IsFiveBit(t)) {
    const uint8_t* hb = row_qs + kFifthBitChunk * kChunkBytes;
    const uint32_t bits = hb[0] | hb[1] << 8 | hb[2] << 16 | static_cast<uint32_t>(hb[3]) << 24;
    q |= static_cast<int>((bits >> FifthBitPosition(e)) & 1) << 4;
  }
  if (t == GgmlType::kQ4_0) q -= 8;
  if (t == GgmlType::kQ5_0) q -= 16;
  return q;
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
  const float* fm;    // [nb][MinsPerBlock][16]; null unless HasMin and HasF32Scales
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
