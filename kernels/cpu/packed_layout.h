// The repacked layout of quantized weights (Q4_0, Q4_1, Q8_0), shared by Pack, GetRow and the
// matmul kernels of every ISA. Pure functions; safe from any thread.
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
// One 32-bit lane of a 512-bit register is then one row, which is what VNNI's dpbusd wants:
// lane i accumulates 4 (u8 weight x s8 activation) products of row i.
#pragma once

#include <cstdint>

#include "kernels/ggml_types.h"

namespace troupe::cpu::layout {

constexpr int kTileRows = 16;
constexpr int kChunkBytes = 64;  // one zmm: 4 bytes for each of the 16 rows

constexpr bool IsRepacked(GgmlType t) {
  return t == GgmlType::kQ4_0 || t == GgmlType::kQ4_1 || t == GgmlType::kQ8_0;
}
constexpr bool HasMin(GgmlType t) { return t == GgmlType::kQ4_1; }
// Bytes of quantized values per block for a whole tile.
constexpr int QsBytes(GgmlType t) {
  return t == GgmlType::kQ8_0 ? 8 * kChunkBytes : 4 * kChunkBytes;
}
constexpr int ScaleBytes() { return kTileRows * 2; }  // 16 fp16

// Bytes of one tile of a matrix with `nb` blocks per row (padded to 64).
constexpr int64_t TileBytes(GgmlType t, int64_t nb) {
  const int64_t raw = nb * (QsBytes(t) + ScaleBytes() + (HasMin(t) ? ScaleBytes() : 0));
  return (raw + 63) / 64 * 64;
}
constexpr int64_t NumTiles(int64_t rows) { return (rows + kTileRows - 1) / kTileRows; }

// Pointers into tile `tile` of a packed matrix starting at `base`.
struct TileView {
  const uint8_t* qs;  // [nb][QsBytes]
  const Fp16* d;      // [nb][16]
  const Fp16* m;      // [nb][16]; null unless HasMin
};
inline TileView Tile(const uint8_t* base, GgmlType t, int64_t nb, int64_t tile) {
  const uint8_t* p = base + tile * TileBytes(t, nb);
  const uint8_t* d = p + nb * QsBytes(t);
  const uint8_t* m = HasMin(t) ? d + nb * ScaleBytes() : nullptr;
  return {p, reinterpret_cast<const Fp16*>(d), reinterpret_cast<const Fp16*>(m)};
}

}  // namespace troupe::cpu::layout
