// Internal interface between cpu::Matmul (threading, dispatch) and its per-ISA kernels. Each ISA
// is compiled only when the build targets it (#ifdef __AVX2__, __AVX512VNNI__); the scalar one
// always is. Tests call MatmulWithIsa to check every compiled ISA against ref::Matmul.
#pragma once

#include <cstdint>
#include <vector>

#include "common/thread_pool.h"
#include "kernels/cpu/packed_matrix.h"
#include "kernels/cpu/q8_activations.h"

namespace troupe::cpu::internal {

enum class Isa { kScalar, kAvx2, kAvx512Vnni };

const char* IsaName(Isa isa);
// The ISAs compiled into this build, slowest first; cpu::Matmul uses the last.
std::vector<Isa> CompiledIsas();

// Like cpu::Matmul, with the kernel ISA chosen by the caller. REQUIRES: isa is compiled.
void MatmulWithIsa(const PackedMatrix& w, const float* x, int64_t n_tokens, float* y,
                   ThreadPool& pool, Isa isa);

// The `offset` QuantizeActivations must use for weights of `type` read by `isa`'s kernel.
int32_t ActivationOffset(Isa isa, GgmlType type);

// One quantized kernel call: rows of tiles [tile_begin, tile_end) for tokens [t_begin, t_end).
// REQUIRES: t_begin % kActGroup == 0.
struct QuantTileArgs {
  const PackedMatrix* w = nullptr;     // a repacked type (layout::IsRepacked)
  const Q8Activations* act = nullptr;  // quantized with ActivationOffset(isa, w->type())
  float* y = nullptr;                  // [act->n_tokens, w->rows()]
  int64_t tile_begin = 0;
  int64_t tile_end = 0;
  int64_t t_begin = 0;
  int64_t t_end = 0;
};
void QuantTilesScalar(const QuantTileArgs& args);
void QuantTilesAvx2(const QuantTileArgs& args);        // defined only with __AVX2__
void QuantTilesAvx512Vnni(const QuantTileArgs& args);  // defined only with __AVX512VNNI__

// Float weights (F32, F16, BF16, borrowed row-major): rows [row_begin, row_end), all tokens.
struct FloatRowArgs {
  const PackedMatrix* w = nullptr;
  const float* x = nullptr;  // [n_tokens, w->cols()]
  float* y = nullptr;        // [n_tokens, w->rows()]
  int64_t n_tokens = 0;
  int64_t row_begin = 0;
  int64_t row_end = 0;
};
void FloatRows(const FloatRowArgs& args, Isa isa);

}  // namespace troupe::cpu::internal
