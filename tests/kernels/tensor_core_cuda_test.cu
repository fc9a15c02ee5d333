// kernels/cuda/tensor_core.cuh against the PTX ISA: ldmatrix's and mma.sync's per-lane
// fragments, element by element, and their product against a host GEMM. The expected registers
// are rebuilt on the host from the documented formulas, not from the emulator, so the same test
// checks the hardware (built by nvcc, label gpu) and tests/cuda_cpu (translated, "on_cpu."):
// a layout misread in both the kernels and the emulator fails on the first GPU run here, naming
// the lane and register, rather than as a wrong attention result.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/cuda/tensor_core.cuh"
#include "tests/testing/cuda_testing.h"

namespace troupe {
namespace {

// One warp's tiles: A 16x16 row-major, B 16x8 given twice, as its transpose [8][16] (rows n,
// the layout of K rows in attention) and as [16][8] (rows k, the layout of V rows).
struct MmaTiles {
  uint16_t a[16][16];
  uint16_t b_t[8][16];
  uint16_t b[16][8];
};
// Per lane: the 4 registers of ldmatrix.x4 on A, on B^T (matrices k 0-7 | 8-15, twice) and of
// ldmatrix.x4.trans on B (the same matrices); then D = A B from either B operand.
struct MmaOut {
  uint32_t a_regs[32][4];
  uint32_t b_t_regs[32][4];
  uint32_t b_trans_regs[32][4];
  float d_from_b_t[32][4];
  float d_from_b[32][4];
};

__global__ void TensorCoreKernel(const MmaTiles* in, MmaOut* out) {
  __shared__ __align__(16) MmaTiles tiles;
  const int lane = threadIdx.x;
  for (int i = lane; i < static_cast<int>(sizeof tiles / 4); i += 32) {
    reinterpret_cast<uint32_t*>(&tiles)[i] = reinterpret_cast<const uint32_t*>(in)[i];
  }
  __syncwarp();
  // Lane l gives row l % 8 of matrix l / 8. A's matrices: rows 0-7 | 8-15 by columns 0-7 |
  // 8-15; B's: k 0-7 | 8-15, given again by lanes 16-31.
  const int m = lane / 8, r = lane % 8;
  uint32_t a[4], b_t[4], b_trans[4];
  cuda::LdMatrixX4(a, &tiles.a[(m % 2) * 8 + r][(m / 2) * 8]);
  cuda::LdMatrixX4(b_t, &tiles.b_t[r][(m % 2) * 8]);
  cuda::LdMatrixX4Trans(b_trans, &tiles.b[(m % 2) * 8 + r][0]);
  float d1[4] = {0, 0, 0, 0}, d2[4] = {0, 0, 0, 0};
  const uint32_t b1[2] = {b_t[0], b_t[1]}, b2[2] = {b_trans[0], b_trans[1]};
  cuda::MmaBf16(d1, a, b1);
  cuda::MmaBf16(d2, a, b2);
  for (int i = 0; i < 4; ++i) {
    out->a_regs[lane][i] = a[i];
    out->b_t_regs[lane][i] = b_t[i];
    out->b_trans_regs[lane][i] = b_trans[i];
    out->d_from_b_t[lane][i] = d1[i];
    out->d_from_b[lane][i] = d2[i];
  }
}

uint16_t Bf16Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return static_cast<uint16_t>(u >> 16);  // exact: the values below are small integers
}

uint32_t Pack(float lo, float hi) { return Bf16Bits(lo) | uint32_t{Bf16Bits(hi)} << 16; }

struct TensorCoreRun {
  float a[16][16], b[16][8];
  MmaOut out;
};

TensorCoreRun RunTensorCoreKernel() {
  TensorCoreRun run;
  MmaTiles tiles;
  for (int i = 0; i < 16; ++i) {
    for (int k = 0; k < 16; ++k) {
      run.a[i][k] = static_cast<float>((i * 7 + k * 3) % 11 - 5);
      tiles.a[i][k] = Bf16Bits(run.a[i][k]);
    }
  }
  for (int k = 0; k < 16; ++k) {
    for (int n = 0; n < 8; ++n) {
      run.b[k][n] = static_cast<float>((k * 5 + n * 9) % 13 - 6);
      tiles.b[k][n] = tiles.b_t[n][k] = Bf16Bits(run.b[k][n]);
    }
  }
  const testing::DeviceBuffer<MmaTiles> d_in(std::vector<MmaTiles>{tiles});
  testing::DeviceBuffer<MmaOut> d_out(1);
  TensorCoreKernel<<<1, 32>>>(d_in.get(), d_out.get());
  TROUPE_TEST_CUDA_CHECK(cudaGetLastError());
  run.out = d_out.Download()[0];
  return run;
}

// Register i of lane 4g + t holds row g, columns 2t and 2t + 1 of matrix i, the lower column in
// the low half; with .trans, rows 2t and 2t + 1 of column g (PTX ISA, ldmatrix).
TEST(TensorCoreCudaTest, LdMatrixGivesTheDocumentedFragments) {
  TROUPE_SKIP_WITHOUT_CUDA();
  const TensorCoreRun run = RunTensorCoreKernel();
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane / 4, t = lane % 4;
    for (int i = 0; i < 4; ++i) {
      const int row0 = (i % 2) * 8, col0 = (i / 2) * 8;  // A's matrix i
      EXPECT_EQ(run.out.a_regs[lane][i],
                Pack(run.a[row0 + g][col0 + 2 * t], run.a[row0 + g][col0 + 2 * t + 1]))
          << "lane " << lane << " register " << i;
      const int k0 = (i % 2) * 8;  // B's matrix i (k 0-7 | 8-15, twice)
      const uint32_t b_frag = Pack(run.b[k0 + 2 * t][g], run.b[k0 + 2 * t + 1][g]);
      EXPECT_EQ(run.out.b_t_regs[lane][i], b_frag) << "lane " << lane << " register " << i;
      EXPECT_EQ(run.out.b_trans_regs[lane][i], b_frag) << "lane " << lane << " register " << i;
    }
  }
  // One element spelled out: lane 5 (g 1, t 1), register 0 holds A[1][2] and A[1][3].
  EXPECT_EQ(run.out.a_regs[5][0] & 0xffff, Bf16Bits(run.a[1][2]));
  EXPECT_EQ(run.out.a_regs[5][0] >> 16, Bf16Bits(run.a[1][3]));
}

// d[i] of lane 4g + t is D[g + 8 (i / 2)][2t + i % 2] (PTX ISA, mma.m16n8k16); the products of
// small integers and their sums are exact in f32, so D equals A B exactly, from either B load.
TEST(TensorCoreCudaTest, MmaOfLdMatrixFragmentsIsTheProduct) {
  TROUPE_SKIP_WITHOUT_CUDA();
  const TensorCoreRun run = RunTensorCoreKernel();
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane / 4, t = lane % 4;
    for (int i = 0; i < 4; ++i) {
      const int row = g + 8 * (i / 2), col = 2 * t + i % 2;
      float want = 0.0f;
      for (int k = 0; k < 16; ++k) want += run.a[row][k] * run.b[k][col];
      EXPECT_EQ(run.out.d_from_b_t[lane][i], want) << "lane " << lane << " d" << i;
      EXPECT_EQ(run.out.d_from_b[lane][i], want) << "lane " << lane << " d" << i;
    }
  }
}

}  // namespace
}  // namespace troupe
