// cuda_cpu itself: what it must expose (a missing barrier, a divergent one, a bad copy, a race
// between streams, legacy or non-blocking) and what it must emulate faithfully (shuffles, graph
// capture and replay; the tensor-core primitives are checked by
// tests/kernels/tensor_core_cuda_test.cu, on a GPU and here alike).
// Built only for the CPU: it is translated like the kernels (translate.py) and runs in every CUDA
// build's tests.
#include <cuda_pipeline.h>
#include <gtest/gtest.h>

#include <numeric>
#include <vector>

namespace troupe::cuda_cpu {
namespace {

constexpr int kThreads = 64;  // two warps

// Thread 0 sums what every thread of the block stored; correct only with the barrier.
__global__ void BlockSumKernel(const float* in, float* out, bool barrier) {
  __shared__ float staged[kThreads];
  staged[threadIdx.x] = in[blockIdx.x * kThreads + threadIdx.x];
  if (barrier) __syncthreads();
  if (threadIdx.x == 0) {
    float sum = 0.0f;
    for (int i = 0; i < kThreads; ++i) sum += staged[i];
    out[blockIdx.x] = sum;
  }
}

__global__ void WarpSumKernel(const float* in, float* out) {
  float v = in[threadIdx.x];
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  out[threadIdx.x] = v;
}

__global__ void IncrementKernel(int* counter) {
  if (threadIdx.x == 0) *counter += 1;
}

__global__ void DivergentBarrierKernel() {
  if (threadIdx.x < 32) __syncthreads();
}

// Each thread stages 4 floats (16 bytes) with cp.async in two commit groups (even threads in
// the first, odd in the second), then every thread writes out what another warp's thread staged.
// waits_left: how many of the newest groups may still be in flight at the wait; 2 = no wait.
__global__ void AsyncStageKernel(const float* in, float* out, int waits_left) {
  __shared__ __align__(16) float staged[kThreads * 4];
  const int t = threadIdx.x;
  for (int i = 0; i < 4; ++i) staged[t * 4 + i] = -1.0f;
  __syncthreads();
  if (t % 2 == 0) __pipeline_memcpy_async(&staged[t * 4], &in[t * 4], 16);
  __pipeline_commit();
  if (t % 2 == 1) __pipeline_memcpy_async(&staged[t * 4], &in[t * 4], 16);
  __pipeline_commit();
  if (waits_left < 2) __pipeline_wait_prior(waits_left);
  __syncthreads();
  const int other = (t + 32) % kThreads;
  for (int i = 0; i < 4; ++i) out[t * 4 + i] = staged[other * 4 + i];
}

// out[t * 4 + i] as AsyncStageKernel(waits_left) leaves it.
std::vector<float> AsyncStage(int waits_left) {
  std::vector<float> in(kThreads * 4);
  std::iota(in.begin(), in.end(), 1.0f);
  float *d_in, *d_out;
  EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&d_in), in.size() * sizeof(float)), cudaSuccess);
  EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&d_out), in.size() * sizeof(float)), cudaSuccess);
  cudaMemcpy(d_in, in.data(), in.size() * sizeof(float), cudaMemcpyHostToDevice);
  AsyncStageKernel<<<1, kThreads>>>(d_in, d_out, waits_left);
  std::vector<float> out(in.size());
  cudaMemcpy(out.data(), d_out, out.size() * sizeof(float), cudaMemcpyDeviceToHost);
  cudaFree(d_in);
  cudaFree(d_out);
  return out;
}

std::vector<float> SumBlocks(bool barrier, int blocks) {
  std::vector<float> in(blocks * kThreads);
  std::iota(in.begin(), in.end(), 1.0f);
  float *d_in, *d_out;
  EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&d_in), in.size() * sizeof(float)), cudaSuccess);
  EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&d_out), blocks * sizeof(float)), cudaSuccess);
  cudaMemcpy(d_in, in.data(), in.size() * sizeof(float), cudaMemcpyHostToDevice);
  BlockSumKernel<<<blocks, kThreads>>>(d_in, d_out, barrier);
  std::vector<float> out(blocks);
  cudaMemcpy(out.data(), d_out, blocks * sizeof(float), cudaMemcpyDeviceToHost);
  cudaFree(d_in);
  cudaFree(d_out);
  return out;
}

float ExpectedSum(int block) {
  const float first = 1.0f + block * kThreads;
  return kThreads * first + kThreads * (kThreads - 1) / 2.0f;
}

TEST(CudaCpuTest, BlockSumIsRightWithItsBarrier) {
  const std::vector<float> out = SumBlocks(/*barrier=*/true, 4);
  for (int b = 0; b < 4; ++b) EXPECT_EQ(out[b], ExpectedSum(b)) << "block " << b;
}

// Without the barrier thread 0 reads before the other threads have stored (ascending order, in
// even blocks): the emulator must turn the race into a wrong sum, not hide it.
TEST(CudaCpuTest, MissingBarrierGivesAWrongSum) {
  const std::vector<float> out = SumBlocks(/*barrier=*/false, 2);
  EXPECT_NE(out[0], ExpectedSum(0));
}

// The staged value thread t reads: that of thread (t + 32) % 64, or -1 when its copy is pending.
float Staged(int t, int i, bool landed) {
  const int other = (t + 32) % kThreads;
  return landed ? static_cast<float>(other * 4 + i + 1) : -1.0f;
}

TEST(CudaCpuTest, AsyncCopiesLandWhenAWaitRetiresTheirGroup) {
  const std::vector<float> all = AsyncStage(/*waits_left=*/0);
  const std::vector<float> first = AsyncStage(/*waits_left=*/1);
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < 4; ++i) {
      EXPECT_EQ(all[t * 4 + i], Staged(t, i, true)) << "thread " << t;
      // Only the older group (even threads' copies) is retired by wait_prior(1).
      EXPECT_EQ(first[t * 4 + i], Staged(t, i, (t + 32) % 2 == 0)) << "thread " << t;
    }
  }
}

// A kernel that reads its cp.async destination without waiting reads what was there before:
// the emulator must not perform the copy early and hide the missing wait.
TEST(CudaCpuTest, MissingAsyncWaitReadsStaleData) {
  const std::vector<float> out = AsyncStage(/*waits_left=*/2);
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(out[t * 4], -1.0f) << "thread " << t;
}

void LaunchDivergentBarrier() {
  DivergentBarrierKernel<<<1, kThreads>>>();
}

TEST(CudaCpuTest, DivergentBarrierAborts) {
  EXPECT_DEATH(LaunchDivergentBarrier(), "divergent barrier");
}

TEST(CudaCpuTest, ShuffleXorSumsTheWarp) {
  std::vector<float> in(32);
  std::iota(in.begin(), in.end(), 0.0f);
  float *d_in, *d_out;
  ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&d_in), 32 * sizeof(float)), cudaSuccess);
  ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&d_out), 32 * sizeof(float)), cudaSuccess);
  cudaMemcpy(d_in, in.data(), 32 * sizeof(float), cudaMemcpyHostToDevice);
  WarpSumKernel<<<1, 32>>>(d_in, d_out);
  std::vector<float> out(32);
  cudaMemcpy(out.data(), d_out, 32 * sizeof(float), cudaMemcpyDeviceToHost);
  for (float v : out) EXPECT_EQ(v, 496.0f);
  cudaFree(d_in);
  cudaFree(d_out);
}

TEST(CudaCpuTest, CaptureRecordsAndGraphLaunchesReplay) {
  int* counter;
  ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&counter), sizeof(int)), cudaSuccess);
  ASSERT_EQ(cudaMemset(counter, 0, sizeof(int)), cudaSuccess);
  cudaStream_t stream;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  IncrementKernel<<<1, 32, 0, stream>>>(counter);
  IncrementKernel<<<1, 32, 0, stream>>>(counter);
  void* scratch = nullptr;
  EXPECT_EQ(cudaMalloc(&scratch, 16), cudaErrorStreamCaptureUnsupported);
  EXPECT_EQ(cudaStreamSynchronize(stream), cudaErrorStreamCaptureUnsupported);
  cudaGraph_t graph;
  ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
  int host = -1;
  cudaMemcpy(&host, counter, sizeof(int), cudaMemcpyDeviceToHost);
  EXPECT_EQ(host, 0) << "captured work must not run";
  cudaGraphExec_t exec;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  cudaMemcpy(&host, counter, sizeof(int), cudaMemcpyDeviceToHost);
  EXPECT_EQ(host, 6);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
  cudaFree(counter);
}

// The legacy default stream (synchronous copies, stream 0) and a non-blocking stream do not
// wait for each other: touching the same memory from both without a synchronisation between is
// a race on a GPU, and aborts here.
void UploadThenIncrementOnNonBlockingStream(bool synchronize) {
  int* counter;
  cudaMalloc(reinterpret_cast<void**>(&counter), sizeof(int));
  cudaStream_t stream;
  cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
  const int zero = 0;
  cudaMemcpy(counter, &zero, sizeof(int), cudaMemcpyHostToDevice);  // pageable: may still run
  if (synchronize) cudaDeviceSynchronize();
  IncrementKernel<<<1, 32, 0, stream>>>(counter);
  cudaStreamSynchronize(stream);
  cudaStreamDestroy(stream);
  cudaFree(counter);
}

void IncrementOnNonBlockingStreamThenDownload(bool synchronize) {
  int* counter;
  cudaMalloc(reinterpret_cast<void**>(&counter), sizeof(int));
  cudaMemset(counter, 0, sizeof(int));
  cudaDeviceSynchronize();
  cudaStream_t stream;
  cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
  IncrementKernel<<<1, 32, 0, stream>>>(counter);
  if (synchronize) cudaStreamSynchronize(stream);
  int host = 0;
  cudaMemcpy(&host, counter, sizeof(int), cudaMemcpyDeviceToHost);
  cudaStreamDestroy(stream);
  cudaFree(counter);
}

TEST(CudaCpuTest, LegacyAndNonBlockingStreamsMustBeSynchronised) {
  UploadThenIncrementOnNonBlockingStream(/*synchronize=*/true);
  IncrementOnNonBlockingStreamThenDownload(/*synchronize=*/true);
  EXPECT_DEATH(UploadThenIncrementOnNonBlockingStream(/*synchronize=*/false), "stream race");
  EXPECT_DEATH(IncrementOnNonBlockingStreamThenDownload(/*synchronize=*/false), "stream race");
}

// Two non-blocking streams do not wait for each other either: a copy on one stream (a host KV
// tier's restore on its copy stream) and a kernel on another (the compute stream) over the same
// memory race unless the kernel's stream waits for an event recorded after the copy.
enum class Order { kNone, kEvent, kEventBeforeCopy };
void RestoreOnCopyStreamThenIncrement(Order order) {
  int* counter;
  cudaMalloc(reinterpret_cast<void**>(&counter), 4 * sizeof(int));
  cudaMemset(counter, 0, 4 * sizeof(int));
  cudaDeviceSynchronize();
  int* pinned;
  cudaHostAlloc(reinterpret_cast<void**>(&pinned), 4 * sizeof(int), cudaHostAllocDefault);
  for (int i = 0; i < 4; ++i) pinned[i] = 40 + i;
  cudaStream_t compute, copy;
  cudaStreamCreateWithFlags(&compute, cudaStreamNonBlocking);
  cudaStreamCreateWithFlags(&copy, cudaStreamNonBlocking);
  cudaEvent_t copied;
  cudaEventCreateWithFlags(&copied, cudaEventDisableTiming);
  if (order == Order::kEventBeforeCopy) cudaEventRecord(copied, copy);  // marks nothing useful
  // Two rows of two ints, pitch 2 both sides: the 2D form the backend's block copies take.
  cudaMemcpy2DAsync(counter, 2 * sizeof(int), pinned, 2 * sizeof(int), 2 * sizeof(int), 2,
                    cudaMemcpyHostToDevice, copy);
  if (order == Order::kEvent) cudaEventRecord(copied, copy);
  if (order != Order::kNone) cudaStreamWaitEvent(compute, copied, 0);
  IncrementKernel<<<1, 32, 0, compute>>>(counter);
  cudaStreamSynchronize(compute);
  int host[4] = {};
  cudaMemcpy(host, counter, sizeof host, cudaMemcpyDeviceToHost);
  EXPECT_EQ(host[0], 41);
  EXPECT_EQ(host[3], 43);
  cudaEventDestroy(copied);
  cudaStreamDestroy(copy);
  cudaStreamDestroy(compute);
  cudaFreeHost(pinned);
  cudaFree(counter);
}

// And the other way: an offload on the copy stream reads what the compute stream wrote.
void IncrementThenOffloadOnCopyStream(bool wait) {
  int* counter;
  cudaMalloc(reinterpret_cast<void**>(&counter), sizeof(int));
  cudaMemset(counter, 0, sizeof(int));
  cudaDeviceSynchronize();
  int* pinned;
  cudaHostAlloc(reinterpret_cast<void**>(&pinned), sizeof(int), cudaHostAllocDefault);
  cudaStream_t compute, copy;
  cudaStreamCreateWithFlags(&compute, cudaStreamNonBlocking);
  cudaStreamCreateWithFlags(&copy, cudaStreamNonBlocking);
  cudaEvent_t computed;
  cudaEventCreateWithFlags(&computed, cudaEventDisableTiming);
  IncrementKernel<<<1, 32, 0, compute>>>(counter);
  cudaEventRecord(computed, compute);
  if (wait) cudaStreamWaitEvent(copy, computed, 0);
  cudaMemcpy2DAsync(pinned, sizeof(int), counter, sizeof(int), sizeof(int), 1, cudaMemcpyDeviceToHost, copy);
  cudaStreamSynchronize(copy);
  EXPECT_EQ(*pinned, 1);
  cudaEventDestroy(computed);
  cudaStreamDestroy(copy);
  cudaStreamDestroy(compute);
  cudaFreeHost(pinned);
  cudaFree(counter);
}

TEST(CudaCpuTest, NonBlockingStreamsMustWaitForEachOthersEvents) {
  RestoreOnCopyStreamThenIncrement(Order::kEvent);
  IncrementThenOffloadOnCopyStream(/*wait=*/true);
  EXPECT_DEATH(RestoreOnCopyStreamThenIncrement(Order::kNone), "another non-blocking stream");
  EXPECT_DEATH(RestoreOnCopyStreamThenIncrement(Order::kEventBeforeCopy), "another non-blocking stream");
  EXPECT_DEATH(IncrementThenOffloadOnCopyStream(/*wait=*/false), "another non-blocking stream");
}

// A stream's synchronisation also ends the work it waited for on another stream, and an event's
// synchronisation the work before it: the legacy stream may then touch that memory.
TEST(CudaCpuTest, SynchronisingAWaitingStreamEndsWhatItWaitedFor) {
  int* counter;
  cudaMalloc(reinterpret_cast<void**>(&counter), sizeof(int));
  cudaMemset(counter, 0, sizeof(int));
  cudaDeviceSynchronize();
  cudaStream_t a, b;
  cudaStreamCreateWithFlags(&a, cudaStreamNonBlocking);
  cudaStreamCreateWithFlags(&b, cudaStreamNonBlocking);
  cudaEvent_t done;
  cudaEventCreateWithFlags(&done, cudaEventDisableTiming);
  IncrementKernel<<<1, 32, 0, a>>>(counter);
  cudaEventRecord(done, a);
  cudaStreamWaitEvent(b, done, 0);
  IncrementKernel<<<1, 32, 0, b>>>(counter);
  cudaStreamSynchronize(b);
  int host = 0;
  cudaMemcpy(&host, counter, sizeof(int), cudaMemcpyDeviceToHost);  // a's work ended with b's
  EXPECT_EQ(host, 2);
  IncrementKernel<<<1, 32, 0, a>>>(counter);
  cudaEventRecord(done, a);
  cudaEventSynchronize(done);
  cudaMemcpy(&host, counter, sizeof(int), cudaMemcpyDeviceToHost);
  EXPECT_EQ(host, 3);
  cudaEventDestroy(done);
  cudaStreamDestroy(b);
  cudaStreamDestroy(a);
  cudaFree(counter);
}

TEST(CudaCpuTest, CopiesAreCheckedAgainstAllocationsAndKinds) {
  char* dev;
  ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&dev), 100), cudaSuccess);
  std::vector<char> host(200);
  EXPECT_EQ(cudaMemcpy(dev, host.data(), 100, cudaMemcpyHostToDevice), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(dev, host.data(), 101, cudaMemcpyHostToDevice), cudaErrorInvalidValue)
      << "past the end of the allocation";
  EXPECT_EQ(cudaMemcpy(dev + 50, host.data(), 60, cudaMemcpyHostToDevice), cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemcpy(host.data(), dev, 100, cudaMemcpyHostToDevice), cudaErrorInvalidValue)
      << "kind disagrees with the pointers";
  EXPECT_EQ(cudaMemcpy(host.data(), host.data() + 100, 100, cudaMemcpyDeviceToHost),
            cudaErrorInvalidValue);
  EXPECT_EQ(cudaFree(host.data()), cudaErrorInvalidValue);
  EXPECT_EQ(cudaFree(dev), cudaSuccess);
}

}  // namespace
}  // namespace troupe::cuda_cpu
