// Helpers for the GPU tests (tests/**/*_cuda_test.cc): skip without a device, an RAII device
// buffer, NaN poisoning of outputs, and the error measures the kernel tests compare with.
// Test-thread only; the buffers use synchronous copies on the default stream.
#pragma once

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#if __cplusplus >= 202002L
#include <span>
#endif
#include <string>
#include <vector>

#include "common/check.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/ggml_types.h"

namespace troupe::testing {

// True when the CUDA runtime sees at least one device. Any runtime error (no driver, no
// device, a broken install) counts as "no device"; the error is cleared so it cannot leak
// into a later cudaGetLastError().
inline bool CudaDeviceAvailable() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return count > 0;
}

// True in the cuda_cpu build of a GPU test (tests/cuda_cpu/cuda_cpu.h), which runs every CUDA
// thread as a fiber on one CPU core, about 10^4 times slower than a GPU.
#ifdef TROUPE_CUDA_CPU
inline constexpr bool kOnCudaCpu = true;
#else
inline constexpr bool kOnCudaCpu = false;
#endif

// For tests that repeat launches to gather statistics: `on_gpu` repetitions on a GPU, `on_cpu`
// under cuda_cpu.
constexpr int Repetitions(int on_gpu, int on_cpu) { return kOnCudaCpu ? on_cpu : on_gpu; }

// First statement of every GPU test: skips (not fails) on a machine without a CUDA device.
#define TROUPE_SKIP_WITHOUT_CUDA()                                      \
  do {                                                                  \
    if (!::troupe::testing::CudaDeviceAvailable()) {                    \
      GTEST_SKIP() << "no CUDA device (cudaGetDeviceCount found none)"; \
    }                                                                   \
  } while (0)

// Test setup calls, whose failure is not the subject of the test (a launch error shows up in
// the next synchronous copy), abort with the CUDA error string.
#define TROUPE_TEST_CUDA_CHECK(expr) TROUPE_CUDA_CHECK(expr)

// `count` elements of T in device memory, freed on destruction. Move-only.
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t count) : count_(count) {
    if (count_ > 0) TROUPE_TEST_CUDA_CHECK(cudaMalloc(&data_, bytes()));
  }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { Upload(host); }
  DeviceBuffer(DeviceBuffer&& other) noexcept : data_(other.data_), count_(other.count_) {
    other.data_ = nullptr;
    other.count_ = 0;
  }
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(count_, other.count_);
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (data_ != nullptr) cudaFree(data_);
  }

  T* get() const { return data_; }
  size_t size() const { return count_; }
  size_t bytes() const { return count_ * sizeof(T); }

  // REQUIRES: host.size() == size().
  void Upload(const std::vector<T>& host) {
    TROUPE_CHECK_MSG(host.size() == count_, "upload of %zu elements into %zu", host.size(), count_);
    if (count_ > 0)
      TROUPE_TEST_CUDA_CHECK(cudaMemcpy(data_, host.data(), bytes(), cudaMemcpyHostToDevice));
  }
  // Waits for the device (the copy is synchronous), so it also surfaces kernel errors.
  std::vector<T> Download() const {
    std::vector<T> host(count_);
    if (count_ > 0)
      TROUPE_TEST_CUDA_CHECK(cudaMemcpy(host.data(), data_, bytes(), cudaMemcpyDeviceToHost));
    return host;
  }

 private:
  T* data_ = nullptr;
  size_t count_ = 0;
};

// Fills the buffer with 0xFF bytes: NaN as f32 (0xFFFFFFFF) and as bf16 (0xFFFF), -1 as an
// integer. Outputs are poisoned before every launch so an element the kernel forgot to write
// fails the comparison instead of passing on stale data.
template <typename T>
void PoisonNaN(DeviceBuffer<T>& buffer) {
  if (buffer.size() > 0) TROUPE_TEST_CUDA_CHECK(cudaMemset(buffer.get(), 0xFF, buffer.bytes()));
}

// The bf16 poison pattern PoisonNaN leaves (a NaN).
constexpr uint16_t kPoisonBf16Bits = 0xFFFF;

inline std::vector<float> ToFloat(const std::vector<Bf16>& v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = Bf16ToFp32(v[i]);
  return out;
}

// The comparisons below take std::span, C++20; nvcc builds .cu tests as C++17 (CMake 3.25 has
// no C++20 dialect for it), and they get the rest of this header.
#if __cplusplus >= 202002L

// ||got - want||_2 / ||want||_2, in double. NaN when any element of `got` is NaN; the plain
// norm of `got` when `want` is all zeros. REQUIRES: equal sizes.
inline double RelativeL2(std::span<const float> got, std::span<const float> want) {
  TROUPE_CHECK(got.size() == want.size());
  double diff = 0.0, ref = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = static_cast<double>(got[i]) - want[i];
    diff += d * d;
    ref += static_cast<double>(want[i]) * want[i];
  }
  return ref > 0.0 ? std::sqrt(diff / ref) : std::sqrt(diff);
}

// The spacing of bf16 values around x (2^-7 relative to its power of two): one rounding of x to
// bf16 moves it by at most half of this.
inline float Bf16Ulp(float x) {
  const float a = std::fabs(x);
  if (a < 1e-30f) return 1e-30f;
  return std::ldexp(1.0f, std::ilogb(a) - 7);
}

// Elementwise |got - want| <= atol + rtol * |want| (NaN fails). On failure the message gives
// the number of mismatches, the largest error and the first 5 mismatches.
inline ::testing::AssertionResult AllClose(std::span<const float> got, std::span<const float> want,
                                           double atol, double rtol) {
  if (got.size() != want.size()) {
    return ::testing::AssertionFailure() << "size " << got.size() << " vs " << want.size();
  }
  size_t bad = 0;
  double max_err = 0.0;
  size_t max_at = 0;
  std::string first;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - want[i]);
    const bool ok = err <= atol + rtol * std::fabs(static_cast<double>(want[i]));
    if (!(err <= max_err)) {  // NaN-aware
      max_err = err;
      max_at = i;
    }
    if (ok) continue;
    if (++bad <= 5) {
      char line[160];
      std::snprintf(line, sizeof(line), "\n  [%zu] got %.8g want %.8g", i, got[i], want[i]);
      first += line;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << bad << " of " << got.size() << " mismatches (atol " << atol << ", rtol " << rtol
         << "); max error " << max_err << " at [" << max_at << "]; first:" << first;
}

// Elementwise |got - want| <= ulps * Bf16Ulp(want) + atol: `got` is a bf16 output whose f32
// reference is `want` (one rounding is half an ulp; the rest allows for f32 reordering).
inline ::testing::AssertionResult WithinBf16Ulps(std::span<const float> got,
                                                 std::span<const float> want, float ulps,
                                                 double atol = 0.0) {
  if (got.size() != want.size()) {
    return ::testing::AssertionFailure() << "size " << got.size() << " vs " << want.size();
  }
  size_t bad = 0;
  std::string first;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - want[i]);
    if (err <= atol + ulps * Bf16Ulp(want[i])) continue;
    if (++bad <= 5) {
      char line[160];
      std::snprintf(line, sizeof(line), "\n  [%zu] got %.8g want %.8g", i, got[i], want[i]);
      first += line;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << bad << " of " << got.size() << " beyond " << ulps << " bf16 ulps; first:" << first;
}

#endif  // __cplusplus >= 202002L

}  // namespace troupe::testing
