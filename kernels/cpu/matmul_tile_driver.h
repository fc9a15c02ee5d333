// The loop nest shared by the SIMD quantized matmul kernels (matmul_quant_avx2.cc,
// matmul_quant_avx512.cc): token chunks, tiles, sub-tiles, token tiles, and the dispatch from a
// token count and a weight type to a micro-kernel instantiation. Each ISA keeps its own
// micro-kernel and says how it reads a sub-tile; this header has no intrinsics. Internal to
// kernels/cpu (matmul_isa.h is the interface cpu::Matmul calls).
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>

#include "kernels/cpu/matmul_isa.h"
#include "kernels/cpu/packed_layout.h"

namespace troupe::cpu::internal {

// The fields RunQuantTiles sets in a Call:
//   nb              32-element blocks per row
//   act             the activations, quantized for this ISA (matmul_isa.h ActivationOffset)
//   ldy             rows of the output
//   t0              first token of the call
//   y               args.y + t0 * ldy + first row of the sub-tile
//   first_in_chunk  first token tile of its chunk: the sub-tile's weights are not yet in cache
// (Fields rather than a common base struct, so each ISA keeps the layout its micro-kernel was
// tuned with.)
//
// A Kernel is a struct of static members:
//   using Call = ...;                      // one micro-kernel call: the fields above and
//                                          // the ISA's own (set by SelectRows)
//   static constexpr int kMaxTokens;       // tokens per micro-kernel call; divides kActGroup, so
//                                          // a call never straddles two activation groups
//   static constexpr int64_t kChunkTokens; // tokens whose activations stay in cache while every
//                                          // tile streams past; a multiple of kActGroup
//   static constexpr int kSubTileRows;     // weight rows per call; divides layout::kTileRows
//   static void SelectRows(const layout::TileView& tile, int sub, int valid, Call* c);
//                                          // sub-tile `sub` of `tile`, `valid` (>= 1) rows of
//                                          // it inside the matrix
//   template <GgmlType kType, int T> static constexpr void (*kTokens)(const Call&);
//                                          // the micro-kernel: T tokens x the selected rows

// tokens[n - 1] is the micro-kernel for n tokens.
template <typename Kernel, GgmlType kType, int... Ts>
constexpr auto TokenCountTable(std::integer_sequence<int, Ts...>) {
  using Fn = void (*)(const typename Kernel::Call&);
  return std::array<Fn, sizeof...(Ts)>{Kernel::template kTokens<kType, Ts + 1>...};
}

// Computes y for the tiles [args.tile_begin, args.tile_end) and tokens [args.t_begin, args.t_end)
// with Kernel's micro-kernel. Loop order: token chunks outside, so a chunk's activations stay in
// L1/L2 while all the caller's tiles stream past; tiles, then sub-tiles, inside, so a sub-tile's
// weights stay in L1 across the token tiles of the chunk. REQUIRES: args.t_begin % kActGroup == 0.
template <typename Kernel, GgmlType kType>
void RunQuantTiles(const QuantTileArgs& args) {
  static_assert(kActGroup % Kernel::kMaxTokens == 0 && Kernel::kChunkTokens % kActGroup == 0);
  static_assert(layout::kTileRows % Kernel::kSubTileRows == 0);
  static constexpr auto tokens =
      TokenCountTable<Kernel, kType>(std::make_integer_sequence<int, Kernel::kMaxTokens>());
  constexpr int kSubTiles = layout::kTileRows / Kernel::kSubTileRows;
  const PackedMatrix& w = *args.w;
  typename Kernel::Call c;
  c.nb = args.act->num_blocks;
  c.act = args.act;
  c.ldy = w.rows();
  for (int64_t c0 = args.t_begin; c0 < args.t_end; c0 += Kernel::kChunkTokens) {
    const int64_t c1 = std::min(args.t_end, c0 + Kernel::kChunkTokens);
    for (int64_t tile = args.tile_begin; tile < args.tile_end; ++tile) {
      const layout::TileView tv = layout::Tile(w.data(), kType, c.nb, tile);
      for (int sub = 0; sub < kSubTiles; ++sub) {
        const int64_t row0 = tile * layout::kTileRows + sub * Kernel::kSubTileRows;
        const int valid =
            static_cast<int>(std::clamp<int64_t>(w.rows() - row0, 0, Kernel::kSubTileRows));
        if (valid == 0) break;  // the last tile's padding rows
        Kernel::SelectRows(tv, sub, valid, &c);
        for (int64_t t = c0; t < c1; t += Kernel::kMaxTokens) {
          const int count = static_cast<int>(std::min<int64_t>(Kernel::kMaxTokens, c1 - t));
          c.t0 = t;
          c.first_in_chunk = t == c0;
          c.y = args.y + t * c.ldy + row0;
          tokens[count - 1](c);
        }
      }
    }
  }
}

// RunQuantTiles for the weight type of args.w (Q4_0, Q4_1 or Q8_0; others compute nothing).
template <typename Kernel>
void RunQuantTilesForType(const QuantTileArgs& args) {
  switch (args.w->type()) {
    case GgmlType::kQ4_0:
      return RunQuantTiles<Kernel, GgmlType::kQ4_0>(args);
    case GgmlType::kQ4_1:
      return RunQuantTiles<Kernel, GgmlType::kQ4_1>(args);
    case GgmlType::kQ8_0:
      return RunQuantTiles<Kernel, GgmlType::kQ8_0>(args);
    default:
      break;
  }
}

}  // namespace troupe::cpu::internal
