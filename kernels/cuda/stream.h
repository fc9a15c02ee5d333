// The CUDA stream type for the host-side declarations in kernels/cuda/*.h, which include no
// CUDA headers (so engine code that only calls launchers compiles with any C++ compiler).
#pragma once

struct CUstream_st;

namespace troupe::cuda {
using Stream = CUstream_st*;  // == cudaStream_t
}  // namespace troupe::cuda
