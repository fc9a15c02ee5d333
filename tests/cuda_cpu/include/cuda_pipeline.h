// cuda_cpu's stand-in for CUDA's <cuda_pipeline.h>: the cp.async primitives, with the deferred
// semantics described at cuda_cpu.h AsyncCopy (a copy lands only when a wait retires its group).
#pragma once

#include <cstddef>

#include "tests/cuda_cpu/cuda_cpu.h"

inline void __pipeline_memcpy_async(void* dst_shared, const void* src_global,
                                    size_t size_and_align, size_t zfill = 0) {
  ::troupe::cuda_cpu::AsyncCopy(dst_shared, src_global, size_and_align, zfill);
}

inline void __pipeline_commit() { ::troupe::cuda_cpu::AsyncCommit(); }

inline void __pipeline_wait_prior(size_t prior) { ::troupe::cuda_cpu::AsyncWaitPrior(prior); }
