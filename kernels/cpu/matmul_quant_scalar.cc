// Portable quantized matmul kernel over the tiled layout: the fallback for CPUs without AVX2 and
// a readable statement of what the SIMD kernels compute. Activations use offset 0, so the
// kernel subtracts the weights' offset itself.
#include <algorithm>

#include "kernels/cpu/matmul_isa.h"
#include "kernels/cpu/packed_layout.h"

namespace troupe::cpu::internal {

namespace {
// Sums over elements [e0, e1) of the block of (signed weight of row `lane`) * q.
int32_t BlockDot(GgmlType type, const uint8_t* qs, int lane, const int8_t* q, int e0 = 0,
                 int e1 = kQK) {
  int32_t sum = 0;
  for (int e = e0; e < e1; ++e) sum += layout::PackedValue(type, qs + 4 * lane, e) * q[e];
  return sum;
}
}  // namespace

void QuantTilesScalar(const QuantTileArgs& args) {
  const PackedMatrix& w = *args.w;
  const Q8Activations& act = *args.act;
  const GgmlType type = w.type();
  const int64_t nb = act.num_blocks;
  const int qs_bytes = layout::QsBytes(type);
  for (int64_t tile = args.tile_begin; tile < args.tile_end; ++tile) {
    const layout::TileView tv = layout::Tile(w.data(), type, nb, tile);
    const int lanes =
        static_cast<int>(std::min<int64_t>(layout::kTileRows, w.rows() - tile * layout::kTileRows));
    for (int64_t t = args.t_begin; t < args.t_end; ++t) {
      for (int lane = 0; lane < lanes; ++lane) {
        float acc = 0.0f;
        for (int64_t b = 0; b < nb; ++b) {
          const int64_t i = act.Index(b, t);
          const uint8_t* qs = tv.qs + b * qs_bytes;
          if (layout::HasF32Scales(type)) {  // f32 scales, one per 16 elements for Q6_K
            const float* fd = tv.fd + b * layout::ScalesPerBlock(type) * layout::kTileRows + lane;
            if (layout::ScalesPerBlock(type) == 2) {
              acc += fd[0] * act.d[i] *
                     static_cast<float>(BlockDot(type, qs, lane, act.qs + i * kQK, 0, 16));
              acc += fd[layout::kTileRows] * act.d[i] *
                     static_cast<float>(BlockDot(type, qs, lane, act.qs + i * kQK, 16, kQK));
            } else {
              acc += fd[0] * act.d[i] * static_cast<float>(BlockDot(type, qs, lane, act.qs + i * kQK));
            }
            if (tv.fm != nullptr && layout::MinsPerBlock(type) == 2) {  // Q2_K: per 16
              const float* fm = tv.fm + 2 * b * layout::kTileRows + lane;
              acc += fm[0] * (act.d[i] * static_cast<float>(act.sum16[2 * i])) +
                     fm[layout::kTileRows] * (act.d[i] * static_cast<float>(act.sum16[2 * i + 1]));
            } else if (tv.fm != nullptr) {
              acc += tv.fm[b * layout::kTileRows + lane] * act.s[i];
            }
            continue;
          }
          const int32_t dot = BlockDot(type, qs, lane, act.qs + i * kQK);
          acc +=
              Fp16ToFp32(tv.d[b * layout::kTileRows + lane]) * act.d[i] * static_cast<float>(dot);
          if (tv.m != nullptr) acc += Fp16ToFp32(tv.m[b * layout::kTileRows + lane]) * act.s[i];
        }
        args.y[t * w.rows() + tile * layout::kTileRows + lane] = acc;
      }
    }
  }
}

}  // namespace troupe::cpu::internal
