// TROUPE_CUDA_CHECK: aborts with the CUDA error string. For launches and copies in the step loop
// (and test setup), where a sticky context error cannot be recovered from; setup code that can
// fail for ordinary reasons (no device, out of memory) returns a Status instead. Plain C++:
// usable from .cc files that call the CUDA runtime as well as from kernels' .cu files.
#pragma once

#include <cuda_runtime_api.h>

#include "common/check.h"

#define TROUPE_CUDA_CHECK(expr)                                        \
  do {                                                                 \
    const cudaError_t troupe_cuda_err_ = (expr);                       \
    TROUPE_CHECK_MSG(troupe_cuda_err_ == cudaSuccess, "%s: %s", #expr, \
                     cudaGetErrorString(troupe_cuda_err_));            \
  } while (0)
