// cpu::Matmul: quantizes the activations, splits the work over the pool and dispatches to the
// best compiled kernel. Engine thread (the pool's caller) only.
#include <algorithm>
#include <vector>

#include "common/check.h"
#include "kernels/cpu/matmul_isa.h"
#include "kernels/cpu/packed_layout.h"

namespace troupe::cpu {

namespace internal {

const char* IsaName(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512Vnni:
      return "avx512vnni";
  }
  return "?";
}

std::vector<Isa> CompiledIsas() {
  std::vector<Isa> isas = {Isa::kScalar};
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
  isas.push_back(Isa::kAvx2);
#endif
#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
  isas.push_back(Isa::kAvx512Vnni);
#endif
  return isas;
}

int32_t ActivationOffset(Isa isa, GgmlType type) {
  // The scalar kernel subtracts the offsets itself; AVX2 reads Q8_0 as signed (sign trick).
  if (isa == Isa::kScalar) return 0;
  if (type == GgmlType::kQ4_0) return 8;
  if (type == GgmlType::kQ5_0) return 16;
  if (type == GgmlType::kQ8_0 && isa == Isa::kAvx512Vnni) return 128;
  return 0;
}

namespace {

// Activations below this many elements are quantized by the caller alone; splitting them costs
// more than it saves.
constexpr int64_t kParallelQuantizeElems = 16 * 1024;

void QuantTiles(const QuantTileArgs& args, Isa isa) {
  switch (isa) {
#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
    case Isa::kAvx512Vnni:
      return QuantTilesAvx512Vnni(args);
#endif
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
    case Isa::kAvx2:
      return QuantTilesAvx2(args);
#endif
    default:
      return QuantTilesScalar(args);
  }
}

void QuantizedMatmul(const PackedMatrix& w, const float* x, int64_t n_tokens, float* y,
                     ThreadPool& pool, Isa isa) {
  const int64_t nb = w.cols() / kQK;
  // Per-thread scratch (the engine thread's), grown to the largest call and kept.
  thread_local std::vector<uint8_t> scratch;
  const size_t bytes = Q8ActivationBytes(n_tokens, nb);
  if (scratch.size() < bytes) scratch.resize(bytes);
  const Q8Activations act = Q8ActivationsIn(scratch.data(), n_tokens, nb);
  const int32_t offset = ActivationOffset(isa, w.type());
  // As llama.cpp: K-quant weights meet activations quantized per 256 (Q8_K), the rest per 32.
  const ActivationScales scales = TraitsOf(static_cast<uint32_t>(w.type()))->block_elems == kQKK
                                      ? ActivationScales::kQ8_K
                                      : ActivationScales::kQ8_0;
  // Work is split over whole token groups: kernels start token tiles at group boundaries.
  const int64_t num_groups = (n_tokens + kActGroup - 1) / kActGroup;

  // 1) Quantize the activations (split over tokens when there are many).
  if (n_tokens * w.cols() < kParallelQuantizeElems) {
    QuantizeActivations(x, 0, n_tokens, offset, act, scales);
  } else {
    pool.ParallelFor(num_groups, 1, [&](int64_t begin, int64_t end) {
      QuantizeActivations(x, begin * kActGroup, std::min(n_tokens, end * kActGroup), offset, act,
                          scales);
    });
  }

  // 2) Split the tiles over the threads, or the tokens when there are fewer tiles than threads.
  QuantTileArgs args;
  args.w = &w;
  args.act = &act;
  args.y = y;
  const int64_t num_tiles = layout::NumTiles(w.rows());
  if (num_tiles >= pool.num_threads()) {
    pool.ParallelFor(num_tiles, 1, [&](int64_t begin, int64_t end) {
      QuantTileArgs part = args;
      part.tile_begin = begin;
      part.tile_end = end;
      part.t_begin = 0;
      part.t_end = n_tokens;
      QuantTiles(part, isa);
    });
  } else {
    pool.ParallelFor(num_groups, 1, [&](int64_t begin, int64_t end) {
      QuantTileArgs part = args;
      part.tile_begin = 0;
      part.tile_end = num_tiles;
      part.t_begin = begin * kActGroup;
      part.t_end = std::min(n_tokens, end * kActGroup);
      QuantTiles(part, isa);
    });
  }
}

}  // namespace

void MatmulWithIsa(const PackedMatrix& w, const float* x, int64_t n_tokens, float* y,
                   ThreadPool& pool, Isa isa) {
  TROUPE_CHECK(n_tokens >= 0);
  if (n_tokens == 0 || w.rows() == 0) return;
  if (w.cols() == 0) {
    std::fill(y, y + n_tokens * w.rows(), 0.0f);
    return;
  }
  if (layout::IsRepacked(w.type())) {
    QuantizedMatmul(w, x, n_tokens, y, pool, isa);
    return;
  }
  // F16 / BF16 weights meet activations rounded to the same type, as in llama.cpp (whose
  // vec_dot for these types takes F16 / BF16 on both sides); accumulation stays in f32.
  std::vector<float> rounded;
  if (w.type() == GgmlType::kF16 || w.type() == GgmlType::kBF16) {
    const bool f16 = w.type() == GgmlType::kF16;
    rounded.resize(static_cast<size_t>(n_tokens * w.cols()));
    for (size_t i = 0; i < rounded.size(); ++i) {
      rounded[i] = f16 ? Fp16ToFp32(Fp32ToFp16(x[i])) : Bf16ToFp32(Fp32ToBf16(x[i]));
    }
    x = rounded.data();
  }
  pool.ParallelFor(w.rows(), 16, [&](int64_t begin, int64_t end) {
    FloatRows({.w = &w, .x = x, .y = y, .n_tokens = n_tokens, .row_begin = begin, .row_end = end},
              isa);
  });
}

}  // namespace internal

void Matmul(const PackedMatrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool) {
  static const internal::Isa best = internal::CompiledIsas().back();
  internal::MatmulWithIsa(w, x, n_tokens, y, pool, best);
}

}  // namespace troupe::cpu
