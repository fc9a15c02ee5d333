// cuBLAS bf16 GEMM wrapper (kernels/cuda/gemm.h).
//
// cuBLAS is opened with dlopen on first use rather than linked: libcublasLt carries ~94 KB of
// static TLS, which as a load-time dependency shrinks every thread's usable stack, and
// civetweb (prometheus-cpp's /metrics server) then fails to start its worker threads, whose
// stacks are small and fixed ("Cannot create first worker thread"). Opened later, the TLS is
// allocated per thread on demand and nothing else notices (docs/dependencies.md).
#include "kernels/cuda/gemm.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <string>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "common/check.h"

namespace troupe::cuda {
namespace {

constexpr size_t kWorkspaceBytes = 32u << 20;  // cuBLAS's recommendation for Hopper

// The cuBLAS entry points troupe uses, resolved once.
struct CublasApi {
  decltype(&cublasCreate_v2) create = nullptr;
  decltype(&cublasDestroy_v2) destroy = nullptr;
  decltype(&cublasSetStream_v2) set_stream = nullptr;
  decltype(&cublasSetWorkspace_v2) set_workspace = nullptr;
  // Spelled out: C++ sees an overload of cublasGemmEx (legacy compute type).
  cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                            const void*, const void*, cudaDataType, int, const void*,
                            cudaDataType, int, const void*, void*, cudaDataType, int,
                            cublasComputeType_t, cublasGemmAlgo_t) = nullptr;
  decltype(&cublasGetStatusString) status_string = nullptr;
};

absl::StatusOr<const CublasApi*> LoadCublas() {
  static const absl::StatusOr<CublasApi> api = []() -> absl::StatusOr<CublasApi> {
    const std::string name = absl::StrCat("libcublas.so.", CUBLAS_VER_MAJOR);
    void* lib = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
#ifdef TROUPE_CUBLAS_DIR
    if (lib == nullptr) lib = dlopen((std::string(TROUPE_CUBLAS_DIR) + "/" + name).c_str(), RTLD_NOW | RTLD_LOCAL);
#endif
    if (lib == nullptr) {
      return absl::UnavailableError(absl::StrCat("cannot open ", name, ": ", dlerror()));
    }
    CublasApi a;
    bool ok = true;
    auto bind = [&](auto& fn, const char* symbol) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, symbol));
      ok &= fn != nullptr;
    };
    bind(a.create, "cublasCreate_v2");
    bind(a.destroy, "cublasDestroy_v2");
    bind(a.set_stream, "cublasSetStream_v2");
    bind(a.set_workspace, "cublasSetWorkspace_v2");
    bind(a.gemm_ex, "cublasGemmEx");
    bind(a.status_string, "cublasGetStatusString");
    if (!ok) return absl::UnavailableError(absl::StrCat(name, " lacks a cuBLAS entry point troupe uses"));
    return a;
  }();
  if (!api.ok()) return api.status();
  return &*api;
}

}  // namespace

absl::StatusOr<Gemm> Gemm::Create(Stream stream) {
  auto api = LoadCublas();
  if (!api.ok()) return api.status();
  const CublasApi& b = **api;
  cublasHandle_t handle = nullptr;
  if (const cublasStatus_t s = b.create(&handle); s != CUBLAS_STATUS_SUCCESS) {
    return absl::InternalError(absl::StrCat("cublasCreate: ", b.status_string(s)));
  }
  void* workspace = nullptr;
  if (const cudaError_t e = cudaMalloc(&workspace, kWorkspaceBytes); e != cudaSuccess) {
    b.destroy(handle);
    return absl::ResourceExhaustedError(
        absl::StrCat("cuBLAS workspace (", kWorkspaceBytes >> 20, " MiB): ", cudaGetErrorString(e)));
  }
  cublasStatus_t s = b.set_stream(handle, stream);
  // Without our workspace cuBLAS would allocate its own, which a graph capture cannot do.
  if (s == CUBLAS_STATUS_SUCCESS) s = b.set_workspace(handle, workspace, kWorkspaceBytes);
  if (s != CUBLAS_STATUS_SUCCESS) {
    b.destroy(handle);
    cudaFree(workspace);
    return absl::InternalError(absl::StrCat("cuBLAS stream/workspace: ", b.status_string(s)));
  }
  return Gemm(handle, workspace);
}

Gemm::Gemm(Gemm&& other) noexcept : handle_(other.handle_), workspace_(other.workspace_) {
  other.handle_ = nullptr;
  other.workspace_ = nullptr;
}

Gemm::~Gemm() {
  // A handle exists only if LoadCublas succeeded.
  if (handle_ != nullptr) (*LoadCublas())->destroy(handle_);
  if (workspace_ != nullptr) cudaFree(workspace_);
}

void Gemm::Run(const Bf16* w, int rows, int cols, const Bf16* x, int n, float* y) {
  const CublasApi& b = **LoadCublas();
  // Column-major view: Y^T[rows, n] = W[rows, cols] . X^T[cols, n], where row-major W is
  // column-major W^T with leading dimension cols.
  const float alpha = 1.0f, beta = 0.0f;
  const cublasStatus_t s =
      b.gemm_ex(handle_, CUBLAS_OP_T, CUBLAS_OP_N, rows, n, cols, &alpha, w, CUDA_R_16BF, cols, x,
                CUDA_R_16BF, cols, &beta, y, CUDA_R_32F, rows, CUBLAS_COMPUTE_32F,
                CUBLAS_GEMM_DEFAULT);
  TROUPE_CHECK_MSG(s == CUBLAS_STATUS_SUCCESS, "cublasGemmEx(%d x %d x %d): %s", rows, n, cols,
                   b.status_string(s));
}

}  // namespace troupe::cuda
