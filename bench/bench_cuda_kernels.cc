// bench_cuda_kernels: the GPU's own ceilings and what the attention kernels reach against them.
//
//   bench_cuda_kernels [--json=PATH] [--only=SECTION,...]
//
// Sections, run in this order (--only picks some; the default is all of them):
// (a) Device, always: name, SMs, L2, memory, driver/runtime versions, and the memory bandwidth
//     the device attributes imply (2 * memory clock * bus width).
// (b) copy: device-to-device cudaMemcpy of 1 GiB (bytes = read + written), the bandwidth ceiling.
// (c) decode: paged decode attention (cuda::DecodeAttention) for batch 1/16/64 x context
//     1k/4k/16k with Llama-3-8B heads (32 q / 8 kv, dim 128), page 16, pages shuffled over a
//     4 GiB pool, splits from ChooseNumSplits with the CUDA backend's settings. GB/s counts the
//     bytes that must move: K + V of every attended position (batch * context * 8 * 128 * 2 B * 2)
//     + q + out (batch * 32 * 128 * 2 B each); the split workspace is not counted. "% copy" is the
//     share of the bandwidth (b) measured (null in the JSON without it).
// (d) prefill: prefill attention (cuda::PrefillAttention), one sequence of L = 4096 and 16384 new
//     tokens, 32 q / 8 kv heads, dim 128. FLOPs = 4 * heads * dim * L * (L + 1) / 2: Q.K^T and
//     P.V are 2 * dim FLOPs each per (query, key) pair, and causal attention has L * (L + 1) / 2
//     pairs.
// (e) host: the host KV tier's restores (engine/backend/cuda_backend.cc CopyKvBlocks) against
//     the plain host-to-device ceiling: a 256 MiB cudaMemcpyAsync from pinned memory, then the
//     same bytes as 128 restored Llama-3-8B blocks (16 tokens x 8 kv heads x 128 dims, bf16,
//     K and V of 32 layers: one 2D copy of 64 rows of 32 KiB per block, the device pitch a
//     layer's K array of a 2048-block cache), both on one stream.
// (f) gemm: a bf16 8192^3 GEMM through cuda::Gemm (cuBLAS, f32 accumulate and out;
//     FLOPs = 2 * 8192^3), the tensor-core ceiling. Last, because it is the only section that
//     needs cuBLAS (opened with dlopen when it starts, kernels/cuda/gemm.cc): where the library
//     is missing, the attention figures are already written and the JSON records the error.
//     scripts/gpu-check runs it as a second call (--only=gemm) and merges the two files.
//
// Timing, the same for every figure: 3 warm-up calls, one timed call to size the repetitions
// (each >= 20 ms, at most 1000 calls), then the median over 7 repetitions of cudaEvent time /
// calls, all on one stream. Decode rotates through copies of its block tables over disjoint pages,
// at least 1 GiB together, so the K/V it reads are never in the (50 MiB) L2; the other inputs are
// far larger than L2 anyway. Short decode calls also pay launch gaps (two kernels per call).
// The decode and prefill kernels are first checked against ref::PagedAttention (on a mismatch:
// "validated": false in the JSON, exit 1 at the end). The JSON is rewritten after each section.
// A GEMM that cannot start (no cuBLAS) leaves "gemm_error" in "ceilings" and exit status 1.
// Runs in ~10 s on an H100; needs ~7 GiB of device memory and 256 MiB of pinned host memory.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "kernels/cuda/decode_attention.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/prefill_attention.h"
#include "kernels/ggml_types.h"
#include "kernels/paged_attention.h"
#include "kernels/paged_index.h"
#include "nlohmann/json.hpp"

#define BENCH_CUDA_CHECK(expr)                                           \
  do {                                                                   \
    const cudaError_t bench_err_ = (expr);                               \
    if (bench_err_ != cudaSuccess) {                                     \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr, \
                   cudaGetErrorString(bench_err_));                      \
      std::exit(1);                                                      \
    }                                                                    \
  } while (0)

namespace troupe {
namespace {

using json = nlohmann::json;

// Llama-3-8B attention.
constexpr int kHeads = 32;
constexpr int kKvHeads = 8;
constexpr int kHeadDim = 128;
constexpr int kPage = 16;
// ChooseNumSplits settings, as engine/backend/cuda_backend.cc uses them; blocks per SM come
// from cuda::DecodeAttentionBlocksPerSm (the built kernel's occupancy).
constexpr int kMinChunkKeys = 256;
constexpr int kMaxSplits = 32;

constexpr size_t kCopyBytes = size_t{1} << 30;
constexpr int kGemmSize = 8192;
constexpr size_t kRotateBytes = size_t{1} << 30;  // decode K/V touched per rotation, >> L2
constexpr int kPoolPages = 65536;                 // 64 x 16k positions; K + V = 4 GiB
constexpr int64_t kPageElems = int64_t{kPage} * kKvHeads * kHeadDim;

// Timing (see the file comment).
constexpr int kWarmup = 3;
constexpr int kReps = 7;
constexpr float kRepMs = 20.0f;
constexpr int kMaxIters = 1000;

// `n` elements of T in device memory, freed at scope exit.
template <typename T>
class DeviceArray {
 public:
  explicit DeviceArray(size_t n) : n_(n) {
    BENCH_CUDA_CHECK(cudaMalloc(&p_, std::max<size_t>(n, 1) * sizeof(T)));
  }
  explicit DeviceArray(const std::vector<T>& host) : DeviceArray(host.size()) {
    BENCH_CUDA_CHECK(cudaMemcpy(p_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice));
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() { cudaFree(p_); }
  T* get() const { return p_; }
  size_t size() const { return n_; }
  std::vector<T> Download() const {
    std::vector<T> host(n_);
    BENCH_CUDA_CHECK(cudaMemcpy(host.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

// Uniform [-1, 1) bf16 values. On the device, a random 16M-element chunk is uploaded once and
// repeated (random data, so tensor-core power draw is realistic, without a slow host fill).
std::vector<Bf16> RandomBf16(size_t n, uint64_t seed) {
  std::vector<Bf16> v(n);
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  for (Bf16& b : v) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b = Fp32ToBf16(static_cast<float>(x >> 40) * (2.0f / 16777216.0f) - 1.0f);
  }
  return v;
}

void FillRandomBf16(Bf16* dev, size_t n, uint64_t seed) {
  const size_t chunk = std::min<size_t>(n, size_t{1} << 24);
  const std::vector<Bf16> host = RandomBf16(chunk, seed);
  BENCH_CUDA_CHECK(cudaMemcpy(dev, host.data(), chunk * sizeof(Bf16), cudaMemcpyHostToDevice));
  for (size_t at = chunk; at < n; at += chunk) {
    BENCH_CUDA_CHECK(cudaMemcpy(dev + at, dev, std::min(chunk, n - at) * sizeof(Bf16),
                                cudaMemcpyDeviceToDevice));
  }
}

// Median milliseconds per call of call(i) (i counts every call, warm-up included).
template <typename Call>
double MedianMsPerCall(cudaStream_t stream, Call&& call) {
  int next = 0;
  for (int i = 0; i < kWarmup; ++i) call(next++);
  cudaEvent_t start, stop;
  BENCH_CUDA_CHECK(cudaEventCreate(&start));
  BENCH_CUDA_CHECK(cudaEventCreate(&stop));
  auto timed = [&](int iters) {
    BENCH_CUDA_CHECK(cudaEventRecord(start, stream));
    for (int i = 0; i < iters; ++i) call(next++);
    BENCH_CUDA_CHECK(cudaEventRecord(stop, stream));
    BENCH_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0.0f;
    BENCH_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    return ms;
  };
  const float one = std::max(timed(1), 1e-3f);
  const int iters = std::clamp(static_cast<int>(std::ceil(kRepMs / one)), 1, kMaxIters);
  std::vector<double> per_call;
  for (int r = 0; r < kReps; ++r) per_call.push_back(timed(iters) / iters);
  BENCH_CUDA_CHECK(cudaEventDestroy(start));
  BENCH_CUDA_CHECK(cudaEventDestroy(stop));
  BENCH_CUDA_CHECK(cudaGetLastError());
  std::sort(per_call.begin(), per_call.end());
  return per_call[per_call.size() / 2];
}

// ---- (a) device ----

json DeviceInfo() {
  int device = 0, sms = 0, l2 = 0, mem_khz = 0, bus_bits = 0, driver = 0, runtime = 0;
  BENCH_CUDA_CHECK(cudaGetDevice(&device));
  cudaDeviceProp prop;
  BENCH_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  BENCH_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  BENCH_CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, device));
  BENCH_CUDA_CHECK(cudaDeviceGetAttribute(&mem_khz, cudaDevAttrMemoryClockRate, device));
  BENCH_CUDA_CHECK(cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, device));
  BENCH_CUDA_CHECK(cudaDriverGetVersion(&driver));
  BENCH_CUDA_CHECK(cudaRuntimeGetVersion(&runtime));
  const double spec_gbps = 2.0 * mem_khz * 1e3 * (bus_bits / 8.0) / 1e9;
  const auto version = [](int v) {
    return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10);
  };
  json info = {
      {"name", prop.name},
      {"sm_count", sms},
      {"l2_bytes", l2},
      {"memory_bytes", prop.totalGlobalMem},
      {"compute_capability", std::to_string(prop.major) + "." + std::to_string(prop.minor)},
      {"driver_version", version(driver)},
      {"runtime_version", version(runtime)},
      {"memory_spec_gbps", spec_gbps}};
  std::printf("device: %s (sm_%d%d), %d SMs, L2 %d MiB, %.1f GiB, driver %s, runtime %s\n",
              prop.name, prop.major, prop.minor, sms, l2 >> 20, prop.totalGlobalMem / 1073741824.0,
              version(driver).c_str(), version(runtime).c_str());
  std::printf("  memory bandwidth from the attributes (2 x %d MHz x %d bit): %.0f GB/s\n",
              mem_khz / 1000, bus_bits, spec_gbps);
  return info;
}

// ---- (b) copy and (e) gemm: the ceilings ----

double CopyGbps(cudaStream_t stream) {
  DeviceArray<char> src(kCopyBytes), dst(kCopyBytes);
  BENCH_CUDA_CHECK(cudaMemset(src.get(), 1, kCopyBytes));
  BENCH_CUDA_CHECK(cudaMemset(dst.get(), 0, kCopyBytes));
  const double ms = MedianMsPerCall(stream, [&](int) {
    BENCH_CUDA_CHECK(
        cudaMemcpyAsync(dst.get(), src.get(), kCopyBytes, cudaMemcpyDeviceToDevice, stream));
  });
  return 2.0 * kCopyBytes / (ms * 1e-3) / 1e9;
}

// (e) host: GB/s of a plain pinned host-to-device copy and of the host tier's block restores.
json HostTier(cudaStream_t stream) {
  constexpr int kLayers = 32, kBlocks = 2048, kRestored = 128;
  constexpr size_t kRun = size_t{16} * 8 * 128 * sizeof(Bf16);  // one layer's K (or V) of a block
  constexpr size_t kRows = 2 * kLayers;
  constexpr size_t kBytes = kRestored * kRows * kRun;  // 256 MiB
  void* host = nullptr;
  BENCH_CUDA_CHECK(cudaHostAlloc(&host, kBytes, cudaHostAllocDefault));
  std::memset(host, 1, kBytes);
  DeviceArray<char> cache(kRows * kBlocks * kRun);  // 64 arrays of kBlocks runs: 4 GiB
  const double plain_ms = MedianMsPerCall(stream, [&](int) {
    BENCH_CUDA_CHECK(cudaMemcpyAsync(cache.get(), host, kBytes, cudaMemcpyHostToDevice, stream));
  });
  const size_t array = kBlocks * kRun;
  const double restore_ms = MedianMsPerCall(stream, [&](int) {
    for (int b = 0; b < kRestored; ++b) {
      // Scattered device blocks, as a cache's free list hands them out.
      const size_t block = (static_cast<size_t>(b) * 977) % kBlocks;
      BENCH_CUDA_CHECK(cudaMemcpy2DAsync(cache.get() + block * kRun, array,
                                         static_cast<char*>(host) + b * kRows * kRun, kRun, kRun,
                                         kRows, cudaMemcpyHostToDevice, stream));
    }
  });
  BENCH_CUDA_CHECK(cudaFreeHost(host));
  const double h2d_gbps = kBytes / (plain_ms * 1e-3) / 1e9;
  const double restore_gbps = kBytes / (restore_ms * 1e-3) / 1e9;
  std::printf("host tier: pinned host-to-device copy of 256 MiB %.1f GB/s; %d block restores "
              "(2 MiB each, one 2D copy) %.1f GB/s = %.0f%% of it\n",
              h2d_gbps, kRestored, restore_gbps, 100.0 * restore_gbps / h2d_gbps);
  return {{"bytes", kBytes},
          {"block_bytes", kRows * kRun},
          {"h2d_gbps", h2d_gbps},
          {"restore_gbps", restore_gbps},
          {"restore_pct_of_h2d", 100.0 * restore_gbps / h2d_gbps}};
}

// TFLOP/s, or the reason the GEMM could not start (cuBLAS missing or failing to initialise).
absl::StatusOr<double> GemmTflops(cudaStream_t stream) {
  const size_t n = size_t{kGemmSize} * kGemmSize;
  DeviceArray<Bf16> w(n), x(n);
  DeviceArray<float> y(n);
  FillRandomBf16(w.get(), n, 1);
  FillRandomBf16(x.get(), n, 2);
  absl::StatusOr<cuda::Gemm> gemm = cuda::Gemm::Create(stream);
  if (!gemm.ok()) return gemm.status();
  const double ms = MedianMsPerCall(
      stream, [&](int) { gemm->Run(w.get(), kGemmSize, kGemmSize, x.get(), kGemmSize, y.get()); });
  return 2.0 * kGemmSize * static_cast<double>(kGemmSize) * kGemmSize / (ms * 1e-3) / 1e12;
}

// ---- attention inputs ----

// The shared K/V pool: kPoolPages pages of random bf16, for every decode and prefill case.
struct KvPool {
  KvPool() : k(size_t{kPoolPages} * kPageElems), v(size_t{kPoolPages} * kPageElems) {
    FillRandomBf16(k.get(), k.size(), 3);
    FillRandomBf16(v.get(), v.size(), 4);
  }
  cuda::PagedKv View(const int32_t* indptr, const int32_t* indices) const {
    return {.k_cache = k.get(),
            .v_cache = v.get(),
            .kv_indptr = indptr,
            .kv_indices = indices,
            .block_size = kPage,
            .n_kv_heads = kKvHeads,
            .head_dim = kHeadDim};
  }
  DeviceArray<Bf16> k, v;
};

// `n` distinct pool pages in random order.
std::vector<int32_t> ShuffledPages(int n, std::mt19937& rng) {
  std::vector<int32_t> pages(kPoolPages);
  std::iota(pages.begin(), pages.end(), 0);
  std::shuffle(pages.begin(), pages.end(), rng);
  pages.resize(n);
  return pages;
}

std::vector<int32_t> Tiles(int n_tokens, int first_pos, int group) {
  const int tile_tokens = cuda::PrefillTileTokens(group);
  std::vector<int32_t> tiles;
  for (int r = 0; r < n_tokens; r += tile_tokens) {
    tiles.insert(tiles.end(), {0, r, std::min(tile_tokens, n_tokens - r), first_pos + r});
  }
  return tiles;
}

double RelativeL2(const std::vector<float>& got, const std::vector<float>& want) {
  double diff = 0.0, ref = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    diff += (static_cast<double>(got[i]) - want[i]) * (static_cast<double>(got[i]) - want[i]);
    ref += static_cast<double>(want[i]) * want[i];
  }
  return std::sqrt(diff / ref);
}

// Prefill of a 300-token sequence and decode of its last token against ref::PagedAttention on
// the same (pool) values. Returns false on a mismatch (relative L2 > 5e-3).
bool Validate(const KvPool& pool, int num_sms, cudaStream_t stream) {
  constexpr int kLen = 300;
  std::mt19937 rng(5);
  const std::vector<int32_t> pages = ShuffledPages((kLen + kPage - 1) / kPage, rng);
  const std::vector<int32_t> indptr = {0, static_cast<int32_t>(pages.size())};
  const std::vector<Bf16> q = RandomBf16(size_t{kLen} * kHeads * kHeadDim, 6);
  const std::vector<int32_t> tiles = Tiles(kLen, 0, kHeads / kKvHeads);
  DeviceArray<int32_t> d_pages(pages), d_indptr(indptr), d_tiles(tiles);
  DeviceArray<Bf16> d_q(q), d_out(q.size());
  const cuda::PagedKv kv = pool.View(d_indptr.get(), d_pages.get());
  const float scale = 1.0f / std::sqrt(static_cast<float>(kHeadDim));
  cuda::PrefillAttention({.kv = kv,
                          .q = d_q.get(),
                          .out = d_out.get(),
                          .tiles = d_tiles.get(),
                          .n_tiles = static_cast<int>(tiles.size() / 4),
                          .n_heads = kHeads,
                          .scale = scale},
                         stream);
  const std::vector<Bf16> prefill = d_out.Download();
  const int splits =
      ChooseNumSplits(1, kKvHeads, kLen, num_sms, cuda::DecodeAttentionBlocksPerSm(kHeadDim),
                      kMinChunkKeys, kMaxSplits);
  const std::vector<int32_t> item = {kLen - 1, 0, kLen};  // row, sequence, length
  DeviceArray<int32_t> d_item(item);
  DeviceArray<Bf16> d_decode_out(q.size());
  BENCH_CUDA_CHECK(cudaMemset(d_decode_out.get(), 0xFF, q.size() * sizeof(Bf16)));  // NaN
  DeviceArray<float> partial_out(size_t{kHeads} * splits * kHeadDim),
      partial_lse(size_t{kHeads} * splits);
  cuda::DecodeAttention({.kv = kv,
                         .q = d_q.get(),
                         .out = d_decode_out.get(),
                         .item_row = d_item.get(),
                         .item_seq = d_item.get() + 1,
                         .item_len = d_item.get() + 2,
                         .n_items = 1,
                         .n_heads = kHeads,
                         .scale = scale,
                         .num_splits = splits,
                         .partial_out = partial_out.get(),
                         .partial_lse = partial_lse.get()},
                        stream);
  const std::vector<Bf16> decode = d_decode_out.Download();

  // Reference: the pages' values in f32, laid out contiguously (position p at row p).
  std::vector<Bf16> k(pages.size() * kPageElems), v(k.size());
  for (size_t i = 0; i < pages.size(); ++i) {
    const size_t from = static_cast<size_t>(pages[i]) * kPageElems, to = i * kPageElems;
    BENCH_CUDA_CHECK(cudaMemcpy(k.data() + to, pool.k.get() + from, kPageElems * sizeof(Bf16),
                                cudaMemcpyDeviceToHost));
    BENCH_CUDA_CHECK(cudaMemcpy(v.data() + to, pool.v.get() + from, kPageElems * sizeof(Bf16),
                                cudaMemcpyDeviceToHost));
  }
  std::vector<float> k_f32(k.size()), v_f32(v.size()), q_f32(q.size());
  for (size_t i = 0; i < k.size(); ++i) {
    k_f32[i] = Bf16ToFp32(k[i]);
    v_f32[i] = Bf16ToFp32(v[i]);
  }
  for (size_t i = 0; i < q.size(); ++i) q_f32[i] = Bf16ToFp32(q[i]);
  std::vector<int32_t> table((kLen + kPage - 1) / kPage), seq(kLen, 0), pos(kLen);
  std::iota(table.begin(), table.end(), 0);
  std::iota(pos.begin(), pos.end(), 0);
  std::vector<float> want(q.size());
  ref::PagedAttention({.q = q_f32.data(),
                       .k_cache = k_f32.data(),
                       .v_cache = v_f32.data(),
                       .cache_type = KvCacheType::kF32,
                       .out = want.data(),
                       .token_seq = seq.data(),
                       .token_pos = pos.data(),
                       .block_tables = table.data(),
                       .n_tokens = kLen,
                       .max_blocks_per_seq = static_cast<int>(table.size()),
                       .n_heads = kHeads,
                       .n_kv_heads = kKvHeads,
                       .head_dim = kHeadDim,
                       .block_size = kPage,
                       .scale = scale});
  std::vector<float> got_prefill(prefill.size());
  for (size_t i = 0; i < prefill.size(); ++i) got_prefill[i] = Bf16ToFp32(prefill[i]);
  const size_t last_row = size_t{kLen - 1} * kHeads * kHeadDim;
  const std::vector<float> want_last(want.begin() + last_row, want.end());
  std::vector<float> got_decode(want_last.size());
  for (size_t i = 0; i < got_decode.size(); ++i) got_decode[i] = Bf16ToFp32(decode[last_row + i]);
  const double prefill_err = RelativeL2(got_prefill, want),
               decode_err = RelativeL2(got_decode, want_last);
  std::printf(
      "validation vs ref::PagedAttention (300 tokens): prefill rel L2 %.2e, decode (%d splits) "
      "rel L2 %.2e\n",
      prefill_err, splits, decode_err);
  return prefill_err <= 5e-3 && decode_err <= 5e-3;
}

// ---- decode ----

json BenchDecode(const KvPool& pool, int batch, int context, int num_sms, double copy_gbps,
                 cudaStream_t stream) {
  const int pages_per_seq = context / kPage;
  const int pages_per_copy = batch * pages_per_seq;
  const double kv_bytes =
      2.0 * batch * static_cast<double>(context) * kKvHeads * kHeadDim * sizeof(Bf16);
  const int copies = std::clamp(static_cast<int>(std::ceil(kRotateBytes / kv_bytes)), 1,
                                kPoolPages / pages_per_copy);
  std::mt19937 rng(batch * 100003 + context);
  const std::vector<int32_t> pages = ShuffledPages(copies * pages_per_copy, rng);
  std::vector<int32_t> indptr(batch + 1), items(batch), lens(batch, context);
  for (int i = 0; i <= batch; ++i) indptr[i] = i * pages_per_seq;
  std::iota(items.begin(), items.end(), 0);
  DeviceArray<int32_t> d_pages(pages), d_indptr(indptr), d_items(items), d_lens(lens);
  DeviceArray<Bf16> q(static_cast<size_t>(batch) * kHeads * kHeadDim), out(q.size());
  FillRandomBf16(q.get(), q.size(), 7);
  const int splits =
      ChooseNumSplits(batch, kKvHeads, context, num_sms,
                      cuda::DecodeAttentionBlocksPerSm(kHeadDim), kMinChunkKeys, kMaxSplits);
  DeviceArray<float> partial_out(q.size() * splits),
      partial_lse(static_cast<size_t>(batch) * kHeads * splits);
  cuda::DecodeAttentionArgs args{.kv = pool.View(d_indptr.get(), d_pages.get()),
                                 .q = q.get(),
                                 .out = out.get(),
                                 .item_row = d_items.get(),
                                 .item_seq = d_items.get(),
                                 .item_len = d_lens.get(),
                                 .n_items = batch,
                                 .n_heads = kHeads,
                                 .scale = 1.0f / std::sqrt(static_cast<float>(kHeadDim)),
                                 .num_splits = splits,
                                 .partial_out = partial_out.get(),
                                 .partial_lse = partial_lse.get()};
  const double ms = MedianMsPerCall(stream, [&](int i) {
    args.kv.kv_indices = d_pages.get() + static_cast<size_t>(i % copies) * pages_per_copy;
    cuda::DecodeAttention(args, stream);
  });
  const double bytes = kv_bytes + 2.0 * q.size() * sizeof(Bf16);
  const double gbps = bytes / (ms * 1e-3) / 1e9;
  std::printf("  %5d %8d %6d %6d %9.1f %9.0f %7.1f%%\n", batch, context, splits, copies, ms * 1e3,
              gbps, 100.0 * gbps / copy_gbps);
  return {{"batch", batch},       {"context", context},
          {"num_splits", splits}, {"table_copies", copies},
          {"us", ms * 1e3},       {"bytes", bytes},
          {"gbps", gbps},         {"pct_of_copy", 100.0 * gbps / copy_gbps}};
}

// ---- prefill ----

json BenchPrefill(const KvPool& pool, int tokens, cudaStream_t stream) {
  std::mt19937 rng(tokens);
  const std::vector<int32_t> pages = ShuffledPages(tokens / kPage, rng);
  const std::vector<int32_t> indptr = {0, static_cast<int32_t>(pages.size())};
  const std::vector<int32_t> tiles = Tiles(tokens, 0, kHeads / kKvHeads);
  DeviceArray<int32_t> d_pages(pages), d_indptr(indptr), d_tiles(tiles);
  DeviceArray<Bf16> q(static_cast<size_t>(tokens) * kHeads * kHeadDim), out(q.size());
  FillRandomBf16(q.get(), q.size(), 8);
  const cuda::PrefillAttentionArgs args{.kv = pool.View(d_indptr.get(), d_pages.get()),
                                        .q = q.get(),
                                        .out = out.get(),
                                        .tiles = d_tiles.get(),
                                        .n_tiles = static_cast<int>(tiles.size() / 4),
                                        .n_heads = kHeads,
                                        .scale = 1.0f / std::sqrt(static_cast<float>(kHeadDim))};
  const double ms = MedianMsPerCall(stream, [&](int) { cuda::PrefillAttention(args, stream); });
  const double flops = 4.0 * kHeads * kHeadDim * static_cast<double>(tokens) * (tokens + 1) / 2.0;
  const double tflops = flops / (ms * 1e-3) / 1e12;
  std::printf("  %6d %9.2f %9.1f\n", tokens, ms, tflops);
  return {{"tokens", tokens}, {"ms", ms}, {"flops", flops}, {"tflops", tflops}};
}

// Writes the report so far (after every section, so a timeout or a crash later keeps what was
// measured). Returns false if the file cannot be written.
bool Save(const json& report, const std::string& path) {
  if (path.empty()) return true;
  std::ofstream out(path);
  out << report.dump(2) << "\n";
  if (!out.good()) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    return false;
  }
  return true;
}

// The sections --only names, in the order they run (see the file comment).
constexpr const char* kSections[] = {"copy", "decode", "prefill", "host", "gemm"};

// Parses "--only" 's comma-separated list into `selected`. Returns false on an unknown name.
bool ParseSections(const std::string& list, std::set<std::string>& selected) {
  selected.clear();
  size_t at = 0;
  while (at <= list.size()) {
    const size_t comma = std::min(list.find(',', at), list.size());
    const std::string name = list.substr(at, comma - at);
    if (std::find(std::begin(kSections), std::end(kSections), name) == std::end(kSections)) {
      std::fprintf(stderr, "unknown section '%s' (copy, decode, prefill, host, gemm)\n", name.c_str());
      return false;
    }
    selected.insert(name);
    at = comma + 1;
  }
  return true;
}

int Main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);  // each line reaches the log before a possible kill
  std::string json_path;
  std::set<std::string> sections(std::begin(kSections), std::end(kSections));
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    bool ok = true;
    if (arg.rfind("--json=", 0) == 0) {
      json_path = arg.substr(7);
    } else if (arg == "--json" && i + 1 < argc) {
      json_path = argv[++i];
    } else if (arg.rfind("--only=", 0) == 0) {
      ok = ParseSections(arg.substr(7), sections);
    } else if (arg == "--only" && i + 1 < argc) {
      ok = ParseSections(argv[++i], sections);
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "usage: %s [--json=PATH] [--only=copy,decode,prefill,host,gemm]\n",
                   argv[0]);
      return 2;
    }
  }
  const auto run = [&](const char* section) { return sections.count(section) > 0; };
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::fprintf(stderr, "bench_cuda_kernels: no CUDA device\n");
    return 1;
  }
  cudaStream_t stream;
  // A blocking stream: the uploads, memsets and downloads below are synchronous calls on the
  // legacy default stream, which waits for blocking streams' work (and they for it) but not for
  // a non-blocking stream's.
  BENCH_CUDA_CHECK(cudaStreamCreate(&stream));
  json report;
  report["device"] = DeviceInfo();
  report["ceilings"] = json::object();
  const int num_sms = report["device"]["sm_count"].get<int>();
  bool ok = true;

  double copy_gbps = std::nan("");  // "% copy" is NaN (null in the JSON) without the copy section
  if (run("copy")) {
    copy_gbps = CopyGbps(stream);
    std::printf(
        "ceiling: device-to-device copy, 1 GiB (read + write): %.0f GB/s (%.0f%% of the "
        "attribute bandwidth)\n",
        copy_gbps, 100.0 * copy_gbps / report["device"]["memory_spec_gbps"].get<double>());
    report["ceilings"]["copy_bytes"] = 2 * kCopyBytes;
    report["ceilings"]["copy_gbps"] = copy_gbps;
  }
  if (!Save(report, json_path)) return 1;

  if (run("decode") || run("prefill")) {
    // A mismatch is recorded and the timings still taken (a wrong kernel's speed is still worth
    // seeing in a single scarce run); the exit status says it failed.
    const KvPool pool;
    const bool valid = Validate(pool, num_sms, stream);
    report["validated"] = valid;
    if (!valid) {
      std::fprintf(stderr, "bench_cuda_kernels: attention kernels disagree with the reference\n");
      ok = false;
    }
    if (!Save(report, json_path)) return 1;
    if (run("decode")) {
      std::printf(
          "decode attention (32 q / 8 kv heads, dim 128, page 16; GB/s = (K + V + q + out) / "
          "time):\n  %5s %8s %6s %6s %9s %9s %8s\n",
          "batch", "context", "splits", "tables", "us", "GB/s", "% copy");
      report["decode"] = json::array();
      for (int batch : {1, 16, 64}) {
        for (int context : {1024, 4096, 16384}) {
          report["decode"].push_back(
              BenchDecode(pool, batch, context, num_sms, copy_gbps, stream));
        }
      }
      if (!Save(report, json_path)) return 1;
    }
    if (run("prefill")) {
      std::printf(
          "prefill attention (one sequence, causal, 32 q / 8 kv heads, dim 128; "
          "FLOPs = 4 * heads * dim * L(L+1)/2):\n  %6s %9s %9s\n",
          "tokens", "ms", "TFLOP/s");
      report["prefill"] = json::array();
      for (int tokens : {4096, 16384}) {
        report["prefill"].push_back(BenchPrefill(pool, tokens, stream));
      }
    }
    report["config"] = {
        {"heads", kHeads},
        {"kv_heads", kKvHeads},
        {"head_dim", kHeadDim},
        {"page", kPage},
        {"blocks_per_sm", cuda::DecodeAttentionBlocksPerSm(kHeadDim)},
        {"min_chunk_keys", kMinChunkKeys},
        {"max_splits", kMaxSplits},
        {"timing", "3 warm-up calls; median of 7 cudaEvent repetitions of >= 20 ms"}};
    if (!Save(report, json_path)) return 1;
  }  // the pool's 4 GiB are freed before the GEMM allocates

  if (run("host")) {
    report["host_tier"] = HostTier(stream);
    if (!Save(report, json_path)) return 1;
  }

  if (run("gemm")) {
    const absl::StatusOr<double> gemm_tflops = GemmTflops(stream);
    report["ceilings"]["gemm_shape"] = {kGemmSize, kGemmSize, kGemmSize};
    if (gemm_tflops.ok()) {
      std::printf("ceiling: bf16 GEMM 8192^3 (cuda::Gemm, f32 out): %.0f TFLOP/s\n", *gemm_tflops);
      report["ceilings"]["gemm_bf16_tflops"] = *gemm_tflops;
    } else {
      std::fprintf(stderr, "bench_cuda_kernels: no GEMM ceiling: %s\n",
                   gemm_tflops.status().ToString().c_str());
      report["ceilings"]["gemm_error"] = gemm_tflops.status().ToString();
      ok = false;
    }
  }
  BENCH_CUDA_CHECK(cudaStreamDestroy(stream));

  if (!Save(report, json_path)) return 1;
  if (!json_path.empty()) std::printf("wrote %s\n", json_path.c_str());
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace troupe

int main(int argc, char** argv) { return troupe::Main(argc, argv); }
