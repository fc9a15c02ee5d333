// Warp-level tensor-core primitives of PTX, for kernels that keep their tiles in registers:
// ldmatrix (8x8 b16 matrices from shared memory into the fragment layout) and
// mma.sync.m16n8k16 (bf16 x bf16 -> f32). Unlike WMMA, their per-lane element layout is
// documented (PTX ISA, "Warp-level matrix fragments"), so a kernel can rescale, mask and convert
// a tile in registers, and reuse an accumulator as the next product's A operand.
//
// Layouts, lane = 4 * g + t (g = lane / 4 the group, t = lane % 4 its thread):
//   ldmatrix .x4: lane l gives the address of row l % 8 of matrix l / 8 (16 bytes, 16-byte
//     aligned); register i receives row g, columns 2t and 2t + 1 of matrix i (.trans: row 2t and
//     2t + 1, column g). The lower column (row) index is in the low 16 bits.
//   mma m16n8k16, D = A B + C, A 16x16 row-major, B 16x8 column-major, C and D 16x8 f32:
//     a[0] = A[g][2t..2t+1]     a[1] = A[g+8][2t..2t+1]
//     a[2] = A[g][2t+8..2t+9]   a[3] = A[g+8][2t+8..2t+9]
//     b[0] = B[2t..2t+1][g]     b[1] = B[2t+8..2t+9][g]
//     c[0..1] = C[g][2t..2t+1]  c[2..3] = C[g+8][2t..2t+1]
//
// On the CPU emulator (tests/cuda_cpu, which defines TROUPE_CUDA_CPU_EMULATOR) the same
// functions forward to its implementations of these layouts.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

namespace troupe::cuda {

// Two floats rounded to bf16 and packed as one A/B register: `lo` in the low 16 bits.
__device__ __forceinline__ uint32_t PackBf16x2(float lo, float hi) {
  const __nv_bfloat162 pair = __floats2bfloat162_rn(lo, hi);
  uint32_t bits;
  static_assert(sizeof bits == sizeof pair);
  __builtin_memcpy(&bits, &pair, sizeof bits);
  return bits;
}

#if defined(TROUPE_CUDA_CPU_EMULATOR)

__device__ __forceinline__ void LdMatrixX4(uint32_t (&r)[4], const void* row) {
  ::troupe::cuda_cpu::LdMatrixX4(r, row, /*trans=*/false);
}
__device__ __forceinline__ void LdMatrixX4Trans(uint32_t (&r)[4], const void* row) {
  ::troupe::cuda_cpu::LdMatrixX4(r, row, /*trans=*/true);
}
__device__ __forceinline__ void MmaBf16(float (&d)[4], const uint32_t (&a)[4],
                                        const uint32_t (&b)[2]) {
  ::troupe::cuda_cpu::MmaM16N8K16Bf16(d, a, b);
}

#else

__device__ __forceinline__ void LdMatrixX4(uint32_t (&r)[4], const void* row) {
#if defined(__CUDA_ARCH__)
  const auto addr = static_cast<uint32_t>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
#endif
}

__device__ __forceinline__ void LdMatrixX4Trans(uint32_t (&r)[4], const void* row) {
#if defined(__CUDA_ARCH__)
  const auto addr = static_cast<uint32_t>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
#endif
}

// d += A b (the accumulator is both C and D).
__device__ __forceinline__ void MmaBf16(float (&d)[4], const uint32_t (&a)[4],
                                        const uint32_t (&b)[2]) {
#if defined(__CUDA_ARCH__)
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

#endif

}  // namespace troupe::cuda
