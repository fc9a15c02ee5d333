// cuda_cpu's scheduler (fibers for CUDA threads, barriers) and the subset of the CUDA runtime
// API the kernel tests call: memory is host memory, launches and copies are synchronous.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "common/check.h"
#include "tests/cuda_cpu/cuda_cpu.h"

uint3 threadIdx;
uint3 blockIdx;
dim3 blockDim;
dim3 gridDim;

// Saves the callee-saved registers, MXCSR and the x87 control word on the current stack, stores
// the stack pointer in *save and continues on the stack `load` (a stack saved the same way, or
// a fresh one prepared by PrepareStack). System V x86-64.
extern "C" void troupe_cuda_cpu_switch(void** save, void* load);
asm(R"(
  .text
  .globl troupe_cuda_cpu_switch
  .type troupe_cuda_cpu_switch, @function
troupe_cuda_cpu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size troupe_cuda_cpu_switch, .-troupe_cuda_cpu_switch
  .section .note.GNU-stack,"",@progbits
  .text
)");

namespace troupe::cuda_cpu {
namespace {

constexpr size_t kStackBytes = 256 * 1024;
constexpr size_t kGuardBytes = 4096;
constexpr size_t kStaggerBytes = 64 * 1024;

enum class State { kReady, kWarpWait, kBlockWait, kDone };

// A cp.async the thread has issued and no wait has retired yet.
struct PendingCopy {
  void* dst;
  const void* src;
  size_t bytes;  // read from src; the rest, up to `size`, is zero-filled
  size_t size;
  int group;     // commit groups issued before it: the group it joins
};

struct Fiber {
  void* sp = nullptr;
  unsigned char* stack = nullptr;  // guard page, then kStackBytes
  State state = State::kDone;
  uint3 tid{};
  int exchange_parity = 0;
  std::vector<PendingCopy> pending_copies;  // in issue order
  int committed_groups = 0;
};

// Words each lane may publish per exchange (a shuffle uses one, an mma.sync three).
constexpr int kExchangeWords = 3;

struct Warp {
  uint64_t exchange[2][kExchangeWords * 32] = {};
  // An mma.sync's product A B for every lane (32 x 4), computed by the first lane that runs
  // after the exchange, per exchange parity; `product_ready` is cleared when lanes publish.
  float product[2][32][4] = {};
  bool product_ready[2] = {};
};

struct Scheduler {
  std::mutex mu;  // one grid at a time
  std::vector<Fiber> fibers;
  std::vector<Warp> warps;
  std::vector<unsigned char> shared;
  unsigned char* shared_aligned = nullptr;
  const std::function<void()>* body = nullptr;
  void* scheduler_sp = nullptr;
  int current = -1;
};

Scheduler& S() {
  static Scheduler* s = new Scheduler;
  return *s;
}

Fiber& Current() {
  TROUPE_CHECK_MSG(S().current >= 0, "cuda_cpu: a device function ran outside a kernel");
  return S().fibers[S().current];
}

void SwitchToScheduler() {
  Fiber& f = Current();
  troupe_cuda_cpu_switch(&f.sp, S().scheduler_sp);
}

[[noreturn]] void FiberMain() {
  (*S().body)();
  Current().state = State::kDone;
  SwitchToScheduler();
  std::abort();  // a finished fiber is never resumed
}

void PrepareStack(Fiber& f, int t) {
  if (f.stack == nullptr) {
    void* mem = mmap(nullptr, kGuardBytes + kStackBytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    TROUPE_CHECK_MSG(mem != MAP_FAILED, "cuda_cpu: cannot map a fiber stack");
    TROUPE_CHECK(mprotect(mem, kGuardBytes, PROT_NONE) == 0);  // overflow faults
    f.stack = static_cast<unsigned char*>(mem);
  }
  // Top down: a zero return address for FiberMain (it never returns), FiberMain as the address
  // troupe_cuda_cpu_switch returns to, six zeroed registers, then MXCSR and the x87 control word
  // copied from the scheduler so the kernel sees the same rounding and exception masks.
  // Stacks are kStackBytes apart, so their tops would all fall in the same cache sets; a
  // per-thread offset spreads the fibers' frames over the caches.
  const size_t stagger = static_cast<size_t>(t % 512) * 320 % kStaggerBytes / 16 * 16;
  auto* top = reinterpret_cast<uint64_t*>(f.stack + kGuardBytes + kStackBytes - stagger);
  uint64_t* sp = top;
  *--sp = 0;
  *--sp = reinterpret_cast<uint64_t>(&FiberMain);
  for (int i = 0; i < 6; ++i) *--sp = 0;
  --sp;
  uint32_t mxcsr;
  uint16_t fpucw;
  asm volatile("stmxcsr %0" : "=m"(mxcsr));
  asm volatile("fnstcw %0" : "=m"(fpucw));
  std::memcpy(reinterpret_cast<unsigned char*>(sp), &mxcsr, 4);
  std::memcpy(reinterpret_cast<unsigned char*>(sp) + 4, &fpucw, 2);
  f.sp = sp;
}

// Resumes thread t until it waits at a barrier or returns.
void Resume(int t) {
  Scheduler& s = S();
  Fiber& f = s.fibers[t];
  s.current = t;
  threadIdx = f.tid;
  troupe_cuda_cpu_switch(&s.scheduler_sp, f.sp);
  s.current = -1;
}

// Runs the live lanes of warp w until each waits at __syncthreads or has returned; warp
// barriers release as soon as every live lane of the warp waits at one.
void RunWarp(int w, int num_threads, bool reverse) {
  Scheduler& s = S();
  const int begin = w * 32, end = std::min(num_threads, begin + 32);
  for (;;) {
    for (int i = begin; i < end; ++i) {
      const int t = reverse ? begin + end - 1 - i : i;
      if (s.fibers[t].state == State::kReady) Resume(t);
    }
    int live = 0, at_warp = 0;
    for (int t = begin; t < end; ++t) {
      if (s.fibers[t].state == State::kDone) continue;
      ++live;
      if (s.fibers[t].state == State::kWarpWait) ++at_warp;
    }
    if (at_warp == 0) return;
    TROUPE_CHECK_MSG(live == end - begin,
                     "cuda_cpu: divergent barrier in block (%u, %u, %u) warp %d: %d lanes wait at "
                     "a full-warp barrier or shuffle after %d lanes returned",
                     blockIdx.x, blockIdx.y, blockIdx.z, w, at_warp, end - begin - live);
    TROUPE_CHECK_MSG(at_warp == live,
                     "cuda_cpu: divergent barrier in block (%u, %u, %u) warp %d: %d of %d live "
                     "lanes wait at a warp barrier, the rest at __syncthreads",
                     blockIdx.x, blockIdx.y, blockIdx.z, w, at_warp, live);
    for (int t = begin; t < end; ++t) {
      if (s.fibers[t].state == State::kWarpWait) s.fibers[t].state = State::kReady;
    }
  }
}

// Runs one block to completion. Between two __syncthreads each warp runs alone, as far as it
// can, before the next starts: warps in ascending order (lanes too) in even blocks, descending
// in odd ones, so a warp that reads shared memory before another warp has written it, or
// overwrites it before another has read it, gets stale or poisoned data in one of the orders.
void RunBlock(int num_threads, int num_warps, bool reverse) {
  Scheduler& s = S();
  for (int t = 0; t < num_threads; ++t) {
    Fiber& f = s.fibers[t];
    PrepareStack(f, t);
    f.state = State::kReady;
    f.exchange_parity = 0;
    f.pending_copies.clear();  // a thread that returned with copies in flight loses them
    f.committed_groups = 0;
    f.tid = uint3{static_cast<unsigned>(t % blockDim.x),
                  static_cast<unsigned>((t / blockDim.x) % blockDim.y),
                  static_cast<unsigned>(t / (blockDim.x * blockDim.y))};
  }
  if (s.shared_aligned != nullptr) std::memset(s.shared_aligned, 0xFF, s.shared.size() - 128);
  for (;;) {
    for (int i = 0; i < num_warps; ++i) RunWarp(reverse ? num_warps - 1 - i : i, num_threads, reverse);
    int live = 0;
    for (int t = 0; t < num_threads; ++t) {
      if (s.fibers[t].state == State::kDone) continue;
      ++live;
      s.fibers[t].state = State::kReady;  // every live thread waits at __syncthreads
    }
    if (live == 0) return;
    // A __syncthreads that part of the block never reaches is undefined behaviour in CUDA (the
    // condition around it must be the same for the whole block), even if the rest returned.
    TROUPE_CHECK_MSG(live == num_threads,
                     "cuda_cpu: divergent barrier in block (%u, %u, %u): %d threads wait at "
                     "__syncthreads after %d returned",
                     blockIdx.x, blockIdx.y, blockIdx.z, live, num_threads - live);
  }
}

}  // namespace

void RunGrid(dim3 grid, dim3 block, size_t dynamic_shared_bytes, const std::function<void()>& body) {
  Scheduler& s = S();
  std::lock_guard<std::mutex> lock(s.mu);
  const int num_threads = static_cast<int>(block.x * block.y * block.z);
  TROUPE_CHECK_MSG(num_threads >= 1 && num_threads <= 1024, "cuda_cpu: block of %d threads",
                   num_threads);
  TROUPE_CHECK_MSG(dynamic_shared_bytes <= 227 * 1024, "cuda_cpu: %zu bytes of shared memory",
                   dynamic_shared_bytes);
  const int num_warps = (num_threads + 31) / 32;
  if (static_cast<int>(s.fibers.size()) < num_threads) s.fibers.resize(num_threads);
  s.warps.assign(num_warps, Warp{});
  s.shared.assign(dynamic_shared_bytes > 0 ? dynamic_shared_bytes + 128 : 0, 0);
  s.shared_aligned = s.shared.empty() ? nullptr
                                      : s.shared.data() + (128 - reinterpret_cast<uintptr_t>(
                                                                     s.shared.data()) % 128);
  s.body = &body;
  blockDim = block;
  gridDim = grid;
  for (unsigned z = 0; z < grid.z; ++z) {
    for (unsigned y = 0; y < grid.y; ++y) {
      for (unsigned x = 0; x < grid.x; ++x) {
        blockIdx = uint3{x, y, z};
        RunBlock(num_threads, num_warps, (x + y + z) % 2 == 1);
      }
    }
  }
  s.body = nullptr;
}

void SyncThreads() {
  Current().state = State::kBlockWait;
  SwitchToScheduler();
}

void SyncWarp(unsigned mask) {
  TROUPE_CHECK_MSG(mask == 0xffffffffu, "cuda_cpu: __syncwarp with a partial mask");
  WarpBarrier();
}

int CurrentThread() {
  TROUPE_CHECK_MSG(S().current >= 0, "cuda_cpu: a device function ran outside a kernel");
  return S().current;
}

void WarpBarrier() {
  Current().state = State::kWarpWait;
  SwitchToScheduler();
}

unsigned char* DynamicShared() {
  TROUPE_CHECK_MSG(S().shared_aligned != nullptr, "cuda_cpu: no dynamic shared memory launched");
  return S().shared_aligned;
}

uint64_t* NextExchangeBuffer() {
  Fiber& f = Current();
  const int warp = S().current / 32;
  uint64_t* slots = S().warps[warp].exchange[f.exchange_parity];
  f.exchange_parity ^= 1;
  return slots;
}

void AsyncCopy(void* dst, const void* src, size_t size, size_t zfill) {
  TROUPE_CHECK_MSG(size == 4 || size == 8 || size == 16, "cuda_cpu: cp.async of %zu bytes", size);
  TROUPE_CHECK_MSG(zfill <= size, "cuda_cpu: cp.async zero-fills %zu of %zu bytes", zfill, size);
  TROUPE_CHECK_MSG(reinterpret_cast<uintptr_t>(dst) % size == 0 &&
                       reinterpret_cast<uintptr_t>(src) % size == 0,
                   "cuda_cpu: cp.async of %zu bytes from %p to %p is misaligned", size, src, dst);
  Fiber& f = Current();
  f.pending_copies.push_back({dst, src, size - zfill, size, f.committed_groups});
}

void AsyncCommit() { ++Current().committed_groups; }

void AsyncWaitPrior(size_t prior) {
  Fiber& f = Current();
  const int retire_below = f.committed_groups - static_cast<int>(prior);
  size_t kept = 0;
  for (size_t i = 0; i < f.pending_copies.size(); ++i) {
    const PendingCopy& c = f.pending_copies[i];
    if (c.group < retire_below) {
      std::memcpy(c.dst, c.src, c.bytes);
      std::memset(static_cast<unsigned char*>(c.dst) + c.bytes, 0, c.size - c.bytes);
    } else {
      f.pending_copies[kept++] = c;
    }
  }
  f.pending_copies.resize(kept);
}

namespace {

float Bf16BitsToFloat(uint32_t bits16) { return UintAsFloat(bits16 << 16); }

// Publishes this lane's kWords 64-bit values and returns, after one warp barrier, every lane's:
// slots[w * 32 + lane] = lane's values[w]. They stay valid until the warp's next barrier.
template <int kWords>
const uint64_t* ExchangeAll(const uint64_t (&values)[kWords]) {
  static_assert(kWords <= kExchangeWords);
  uint64_t* slots = NextExchangeBuffer();
  const int lane = CurrentThread() % 32;
  for (int w = 0; w < kWords; ++w) slots[w * 32 + lane] = values[w];
  WarpBarrier();
  return slots;
}

}  // namespace

void LdMatrixX4(uint32_t (&r)[4], const void* row, bool trans) {
  TROUPE_CHECK_MSG(reinterpret_cast<uintptr_t>(row) % 16 == 0,
                   "cuda_cpu: ldmatrix row address %p is not 16-byte aligned", row);
  const uint64_t* rows = ExchangeAll<1>({reinterpret_cast<uintptr_t>(row)});
  const int lane = CurrentThread() % 32, g = lane / 4, t = lane % 4;
  auto element = [&](int matrix, int i, int j) {  // matrix's row i, column j
    uint16_t v;
    std::memcpy(&v, reinterpret_cast<const unsigned char*>(rows[8 * matrix + i]) + 2 * j, 2);
    return static_cast<uint32_t>(v);
  };
  for (int m = 0; m < 4; ++m) {
    r[m] = trans ? element(m, 2 * t, g) | element(m, 2 * t + 1, g) << 16
                 : element(m, g, 2 * t) | element(m, g, 2 * t + 1) << 16;
  }
}

void MmaM16N8K16Bf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  Warp& warp = S().warps[CurrentThread() / 32];
  const int parity = Current().exchange_parity;  // the buffer ExchangeAll is about to use
  warp.product_ready[parity] = false;  // every lane read the last product of this parity
  const uint64_t* all = ExchangeAll<3>(
      {a[0] | uint64_t{a[1]} << 32, a[2] | uint64_t{a[3]} << 32, b[0] | uint64_t{b[1]} << 32});
  float(&product)[32][4] = warp.product[parity];
  if (!warp.product_ready[parity]) {
    // The whole A (16x16) and B (16x8) from the lanes holding them (layouts in
    // tensor_core.cuh): lane 4g + q holds A[g][2q..], A[g+8][2q..] in word 0 and the same at
    // column 8 + 2q in word 1; lane 4c + q holds B[2q..][c] and B[8 + 2q..][c] in word 2.
    float a_full[16][16], b_full[16][8];
    auto unpack = [](uint64_t regs, int half, float& lo, float& hi) {
      const auto reg = static_cast<uint32_t>(regs >> (32 * half));
      lo = Bf16BitsToFloat(reg & 0xffff);
      hi = Bf16BitsToFloat(reg >> 16);
    };
    for (int g = 0; g < 8; ++g) {
      for (int q = 0; q < 4; ++q) {
        const int lane = 4 * g + q;
        for (int half = 0; half < 2; ++half) {
          const int row = g + 8 * half, k = 8 * half + 2 * q;
          unpack(all[lane], half, a_full[row][2 * q], a_full[row][2 * q + 1]);
          unpack(all[32 + lane], half, a_full[row][8 + 2 * q], a_full[row][9 + 2 * q]);
          unpack(all[64 + lane], half, b_full[k][g], b_full[k + 1][g]);
        }
      }
    }
    float c[16][8] = {};  // summed in k order
    for (int k = 0; k < 16; ++k) {
      for (int r = 0; r < 16; ++r) {
        for (int col = 0; col < 8; ++col) c[r][col] += a_full[r][k] * b_full[k][col];
      }
    }
    for (int lane = 0; lane < 32; ++lane) {
      const int g = lane / 4, t = lane % 4;
      for (int i = 0; i < 4; ++i) product[lane][i] = c[g + (i / 2) * 8][2 * t + i % 2];
    }
    warp.product_ready[parity] = true;
  }
  const int lane = CurrentThread() % 32;
  for (int i = 0; i < 4; ++i) d[i] += product[lane][i];
}

void RequireFullWarp(unsigned mask, int width) {
  TROUPE_CHECK_MSG(mask == 0xffffffffu && width == 32,
                   "cuda_cpu: shuffles with a partial mask or width are not emulated");
}

}  // namespace troupe::cuda_cpu

// ---- The CUDA runtime API subset. ----
//
// Device memory is host memory from aligned_alloc, recorded so that copies can be checked: a
// copy whose kind disagrees with where its pointers are, or that runs past the end of a device
// allocation, fails with cudaErrorInvalidValue, as does anything but kernels and async copies
// issued while a stream captures (cudaErrorStreamCaptureUnsupported). Work on a stream runs when
// issued; a captured graph replays its work in order.
//
// Stream order. Everything runs when issued, so a real race between streams would pass unseen;
// instead each operation's device ranges are remembered as unfinished until a synchronisation
// that covers them, per side: the legacy default stream (stream 0, the synchronous cudaMemcpy and
// cudaMemset, and blocking streams, which wait for it and it for them) and each non-blocking
// stream (which does not wait for stream 0, nor it for them). An operation that touches ranges
// still unfinished on the other side aborts. Synchronisation: cudaDeviceSynchronize and cudaFree
// end everything; cudaStreamSynchronize its stream (stream 0: the legacy side); a synchronous
// device-to-host copy, or host-to-device from pinned memory, returns when the legacy side is done;
// one from pageable memory only after the legacy side's earlier work (its own DMA may still run).
//
// Two non-blocking streams do not wait for each other either: an operation on one that touches
// ranges still unfinished on another aborts, unless it comes after a cudaStreamWaitEvent on an
// event recorded on that other stream after them (events mark a point in their stream's order:
// the operations issued to it so far). cudaEventSynchronize ends the work before its event, and
// cudaStreamSynchronize of a stream also ends the work of others that it had waited for.

namespace troupe::cuda_cpu {
namespace {

struct Op {
  std::vector<Range> touched;
  std::function<void()> run;
};

}  // namespace
}  // namespace troupe::cuda_cpu

struct CUstream_st {
  bool non_blocking = false;
  bool capturing = false;
  std::vector<troupe::cuda_cpu::Op> captured;
  // Non-blocking streams only: the ranges of unfinished work, each with its operation's number
  // in this stream (1, 2, ...; next_op counts them).
  struct Unfinished {
    troupe::cuda_cpu::Range range;
    uint64_t op = 0;
  };
  std::vector<Unfinished> unfinished;
  uint64_t next_op = 0;
  // Per other non-blocking stream: its operations up to this number come before this stream's
  // later work (cudaStreamWaitEvent).
  std::map<CUstream_st*, uint64_t> waited;
};
struct CUevent_st {
  CUstream_st* stream = nullptr;  // recorded on a non-blocking stream; null = not (or legacy)
  uint64_t op = 0;                // the last operation of `stream` before it
};
struct CUgraph_st {
  std::vector<troupe::cuda_cpu::Op> ops;
};
struct CUgraphExec_st {
  std::vector<troupe::cuda_cpu::Op> ops;
};

namespace troupe::cuda_cpu {
namespace {

struct Memory {
  std::mutex mu;
  std::map<uintptr_t, size_t> device;  // begin -> bytes
  std::map<uintptr_t, size_t> pinned;
  int capturing = 0;                   // streams now capturing
  std::vector<CUstream_st*> non_blocking;
  std::vector<Range> legacy_unfinished;
};

Memory& M() {
  static Memory* m = new Memory;
  return *m;
}

// The allocation holding p, as a range; {0, 0} when none does. REQUIRES: M().mu held.
Range AllocationOf(const std::map<uintptr_t, size_t>& allocations, uintptr_t p) {
  auto it = allocations.upper_bound(p);
  if (it == allocations.begin()) return {0, 0};
  --it;
  return p < it->first + it->second ? Range{it->first, it->first + it->second} : Range{0, 0};
}

// True when [p, p + bytes) lies inside one allocation of `allocations`.
bool Inside(const std::map<uintptr_t, size_t>& allocations, const void* p, size_t bytes) {
  const auto at = reinterpret_cast<uintptr_t>(p);
  const Range r = AllocationOf(allocations, at);
  return r.end > 0 && at + bytes <= r.end;
}

bool IsDevice(const void* p) {
  std::lock_guard<std::mutex> lock(M().mu);
  return Inside(M().device, p, 1);
}

// Checks a copy's pointers against its kind; logs what is wrong.
bool CopyOk(void* dst, const void* src, size_t count, cudaMemcpyKind kind) {
  if (count == 0) return true;
  const bool src_device = IsDevice(src), dst_device = IsDevice(dst);
  bool src_ok = true, dst_ok = true;
  {
    std::lock_guard<std::mutex> lock(M().mu);
    if (src_device) src_ok = Inside(M().device, src, count);
    if (dst_device) dst_ok = Inside(M().device, dst, count);
  }
  const bool kind_ok =
      kind == cudaMemcpyDefault ||
      (kind == cudaMemcpyHostToDevice && !src_device && dst_device) ||
      (kind == cudaMemcpyDeviceToHost && src_device && !dst_device) ||
      (kind == cudaMemcpyDeviceToDevice && src_device && dst_device) ||
      (kind == cudaMemcpyHostToHost && !src_device && !dst_device);
  if (kind_ok && src_ok && dst_ok) return true;
  std::fprintf(stderr,
               "cuda_cpu: bad copy of %zu bytes, kind %d: src %s, dst %s%s%s\n", count,
               static_cast<int>(kind), src_device ? "device" : "host", dst_device ? "device" : "host",
               src_ok ? "" : "; src runs past its allocation", dst_ok ? "" : "; dst runs past its allocation");
  return false;
}

// The device parts of a copy or memset: its source and destination where they are device memory.
std::vector<Range> CopyRanges(const void* dst, const void* src, size_t count) {
  std::vector<Range> ranges;
  if (count == 0) return ranges;
  for (const void* p : {dst, src}) {
    if (p != nullptr && IsDevice(p)) {
      const auto at = reinterpret_cast<uintptr_t>(p);
      ranges.push_back({at, at + count});
    }
  }
  return ranges;
}

bool Overlap(const std::vector<Range>& a, const std::vector<Range>& b) {
  for (const Range& x : a) {
    for (const Range& y : b) {
      if (x.begin < y.end && y.begin < x.end) return true;
    }
  }
  return false;
}

bool Capturing() {
  std::lock_guard<std::mutex> lock(M().mu);
  return M().capturing > 0;
}

// The stream-order check (see above) for an operation on `stream` touching `touched`, which
// then stays unfinished on its side. `what` names it in the abort message.
void CheckOrder(cudaStream_t stream, const std::vector<Range>& touched, const char* what) {
  Memory& m = M();
  std::lock_guard<std::mutex> lock(m.mu);
  if (stream != nullptr && stream->non_blocking) {
    TROUPE_CHECK_MSG(!Overlap(touched, m.legacy_unfinished),
                     "cuda_cpu: stream race: %s on a non-blocking stream touches device memory "
                     "that work on the legacy default stream (a synchronous cudaMemcpy or "
                     "cudaMemset, or a launch on stream 0) may still be using; a non-blocking "
                     "stream does not wait for it: synchronise first",
                     what);
    for (CUstream_st* other : m.non_blocking) {
      if (other == stream) continue;
      auto w = stream->waited.find(other);
      const uint64_t waited = w == stream->waited.end() ? 0 : w->second;
      for (const CUstream_st::Unfinished& u : other->unfinished) {
        TROUPE_CHECK_MSG(u.op <= waited || !Overlap(touched, {u.range}),
                         "cuda_cpu: stream race: %s on a non-blocking stream touches device "
                         "memory that another non-blocking stream's unfinished work uses; "
                         "streams do not wait for each other: record an event after that work "
                         "and cudaStreamWaitEvent on it first",
                         what);
      }
    }
    const uint64_t op = ++stream->next_op;
    for (const Range& r : touched) stream->unfinished.push_back({r, op});
    return;
  }
  for (CUstream_st* other : m.non_blocking) {
    std::vector<Range> ranges;
    for (const CUstream_st::Unfinished& u : other->unfinished) ranges.push_back(u.range);
    TROUPE_CHECK_MSG(!Overlap(touched, ranges),
                     "cuda_cpu: stream race: %s on the legacy default stream touches device "
                     "memory that a non-blocking stream's unfinished work uses; the legacy stream "
                     "does not wait for it: cudaStreamSynchronize that stream first",
                     what);
  }
  m.legacy_unfinished.insert(m.legacy_unfinished.end(), touched.begin(), touched.end());
}

void FinishLegacy() {
  std::lock_guard<std::mutex> lock(M().mu);
  M().legacy_unfinished.clear();
}

void FinishAll() {
  std::lock_guard<std::mutex> lock(M().mu);
  M().legacy_unfinished.clear();
  for (CUstream_st* s : M().non_blocking) s->unfinished.clear();
}

}  // namespace

std::vector<Range> AllocationsReferencedBy(const void* args, size_t bytes) {
  std::vector<Range> ranges;
  std::lock_guard<std::mutex> lock(M().mu);
  for (size_t at = 0; at + sizeof(uintptr_t) <= bytes; at += sizeof(uintptr_t)) {
    uintptr_t word;
    std::memcpy(&word, static_cast<const char*>(args) + at, sizeof word);
    const Range r = AllocationOf(M().device, word);
    if (r.end == 0) continue;
    bool seen = false;
    for (const Range& x : ranges) seen = seen || x.begin == r.begin;
    if (!seen) ranges.push_back(r);
  }
  return ranges;
}

void Enqueue(cudaStream_t stream, std::vector<Range> touched, std::function<void()> op) {
  if (stream != nullptr && stream->capturing) {
    stream->captured.push_back(Op{std::move(touched), std::move(op)});
    return;
  }
  CheckOrder(stream, touched, "a kernel, GEMM or async copy");
  op();
}

}  // namespace troupe::cuda_cpu

namespace troupe::cuda_cpu {
namespace {

// Ends the work of `stream` up to its operation `op`. REQUIRES: M().mu held.
void FinishUpTo(CUstream_st* stream, uint64_t op) {
  auto& u = stream->unfinished;
  u.erase(std::remove_if(u.begin(), u.end(), [&](const CUstream_st::Unfinished& x) { return x.op <= op; }),
          u.end());
}

}  // namespace
}  // namespace troupe::cuda_cpu

using troupe::cuda_cpu::FinishUpTo;
using troupe::cuda_cpu::Capturing;
using troupe::cuda_cpu::CheckOrder;
using troupe::cuda_cpu::CopyRanges;
using troupe::cuda_cpu::FinishAll;
using troupe::cuda_cpu::FinishLegacy;
using troupe::cuda_cpu::CopyOk;
using troupe::cuda_cpu::M;

extern "C" {

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : cudaErrorInvalidDevice; }

// An H100 SXM's 132 multiprocessors, so that split-KV choices match the GPU's, and its
// maximum copy pitch (2^31 - 1 bytes).
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (device != 0) return cudaErrorInvalidDevice;
  if (attr == cudaDevAttrMultiProcessorCount) {
    *value = 132;
  } else if (attr == cudaDevAttrMaxPitch) {
    *value = 2147483647;
  } else {
    return cudaErrorInvalidValue;
  }
  return cudaSuccess;
}

// What cudaOccupancyMaxActiveBlocksPerMultiprocessor answers. The emulator knows no register or
// shared-memory use; it answers as if 512 threads fit on a multiprocessor (4 blocks of 128, what
// the decode attention kernel's __launch_bounds__ asks for), at least one block.
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(int* num_blocks, const void*,
                                                                   int block_size, size_t,
                                                                   unsigned int) {
  if (block_size <= 0 || block_size > 1024) return cudaErrorInvalidValue;
  *num_blocks = std::max(1, 512 / block_size);
  return cudaSuccess;
}

cudaError_t cudaGetLastError() { return cudaSuccess; }
cudaError_t cudaPeekAtLastError() { return cudaSuccess; }

const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument (cuda_cpu)";
    case cudaErrorMemoryAllocation: return "out of memory (cuda_cpu)";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing (cuda_cpu)";
    default: return "cuda_cpu: error";
  }
}

cudaError_t cudaMalloc(void** ptr, size_t size) {
  if (Capturing()) return cudaErrorStreamCaptureUnsupported;
  *ptr = std::aligned_alloc(256, (size + 255) / 256 * 256);
  if (*ptr == nullptr) return cudaErrorMemoryAllocation;
  std::lock_guard<std::mutex> lock(M().mu);
  M().device[reinterpret_cast<uintptr_t>(*ptr)] = size;
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  if (ptr == nullptr) return cudaSuccess;
  if (Capturing()) return cudaErrorStreamCaptureUnsupported;
  {
    std::lock_guard<std::mutex> lock(M().mu);
    if (M().device.erase(reinterpret_cast<uintptr_t>(ptr)) == 0) return cudaErrorInvalidValue;
  }
  FinishAll();  // cudaFree waits for the device
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMallocHost(void** ptr, size_t size) {
  if (Capturing()) return cudaErrorStreamCaptureUnsupported;
  *ptr = std::aligned_alloc(256, (size + 255) / 256 * 256);
  if (*ptr == nullptr) return cudaErrorMemoryAllocation;
  std::lock_guard<std::mutex> lock(M().mu);
  M().pinned[reinterpret_cast<uintptr_t>(*ptr)] = size;
  return cudaSuccess;
}

cudaError_t cudaFreeHost(void* ptr) {
  if (ptr == nullptr) return cudaSuccess;
  {
    std::lock_guard<std::mutex> lock(M().mu);
    if (M().pinned.erase(reinterpret_cast<uintptr_t>(ptr)) == 0) return cudaErrorInvalidValue;
  }
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t count, cudaMemcpyKind kind) {
  if (Capturing()) return cudaErrorStreamCaptureUnsupported;
  if (!CopyOk(dst, src, count, kind)) return cudaErrorInvalidValue;
  const bool to_host = !troupe::cuda_cpu::IsDevice(dst);
  bool pinned_source = false;
  {
    std::lock_guard<std::mutex> lock(M().mu);
    pinned_source = troupe::cuda_cpu::Inside(M().pinned, src, count);
  }
  if (!to_host && !pinned_source && !troupe::cuda_cpu::IsDevice(src)) FinishLegacy();
  CheckOrder(nullptr, CopyRanges(dst, src, count), "a synchronous cudaMemcpy");
  if (count > 0) std::memmove(dst, src, count);
  if (to_host || pinned_source) FinishLegacy();  // returns when the copy is done
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, cudaMemcpyKind kind,
                            cudaStream_t stream) {
  if (!CopyOk(dst, src, count, kind)) return cudaErrorInvalidValue;
  troupe::cuda_cpu::Enqueue(stream, CopyRanges(dst, src, count), [=] {
    if (count > 0) std::memmove(dst, src, count);
  });
  return cudaSuccess;
}

// Row by row, each row checked and ordered like a copy of its own.
cudaError_t cudaMemcpy2DAsync(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width,
                              size_t height, cudaMemcpyKind kind, cudaStream_t stream) {
  if (width > dpitch || width > spitch) return cudaErrorInvalidValue;
  std::vector<troupe::cuda_cpu::Range> ranges;
  for (size_t r = 0; r < height; ++r) {
    char* d = static_cast<char*>(dst) + r * dpitch;
    const char* s = static_cast<const char*>(src) + r * spitch;
    if (!CopyOk(d, s, width, kind)) return cudaErrorInvalidValue;
    const std::vector<troupe::cuda_cpu::Range> row = CopyRanges(d, s, width);
    ranges.insert(ranges.end(), row.begin(), row.end());
  }
  troupe::cuda_cpu::Enqueue(stream, std::move(ranges), [=] {
    for (size_t r = 0; r < height; ++r) {
      std::memmove(static_cast<char*>(dst) + r * dpitch, static_cast<const char*>(src) + r * spitch, width);
    }
  });
  return cudaSuccess;
}

cudaError_t cudaHostAlloc(void** ptr, size_t size, unsigned int) { return cudaMallocHost(ptr, size); }

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int) {
  *event = new CUevent_st;
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, 0); }

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  delete event;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  if (stream != nullptr && stream->capturing) return cudaErrorStreamCaptureUnsupported;
  std::lock_guard<std::mutex> lock(M().mu);
  const bool tracked = stream != nullptr && stream->non_blocking;
  event->stream = tracked ? stream : nullptr;
  event->op = tracked ? stream->next_op : 0;
  return cudaSuccess;
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int) {
  if (stream != nullptr && stream->capturing) return cudaErrorStreamCaptureUnsupported;
  std::lock_guard<std::mutex> lock(M().mu);
  // Only waits of a non-blocking stream on another's event are modelled; others change nothing
  // (so a race they would have prevented still aborts: conservative).
  if (stream == nullptr || !stream->non_blocking || event->stream == nullptr || event->stream == stream) {
    return cudaSuccess;
  }
  const auto& live = M().non_blocking;
  if (std::find(live.begin(), live.end(), event->stream) == live.end()) return cudaSuccess;  // destroyed
  uint64_t& waited = stream->waited[event->stream];
  waited = std::max(waited, event->op);
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  std::lock_guard<std::mutex> lock(M().mu);
  const auto& live = M().non_blocking;
  if (event->stream != nullptr && std::find(live.begin(), live.end(), event->stream) != live.end()) {
    FinishUpTo(event->stream, event->op);
  }
  return cudaSuccess;
}

// Work runs when issued, so every event has completed; the query does not end anything for the
// order checks (the host did not wait).
cudaError_t cudaEventQuery(cudaEvent_t) { return cudaSuccess; }

cudaError_t cudaMemset(void* ptr, int value, size_t count) {
  if (Capturing()) return cudaErrorStreamCaptureUnsupported;
  if (!CopyOk(ptr, ptr, count, cudaMemcpyDeviceToDevice)) return cudaErrorInvalidValue;
  CheckOrder(nullptr, CopyRanges(ptr, nullptr, count), "a cudaMemset");
  std::memset(ptr, value, count);
  return cudaSuccess;
}

cudaError_t cudaFuncSetAttribute(const void*, cudaFuncAttribute, int) { return cudaSuccess; }

cudaError_t cudaDeviceSynchronize() {
  if (Capturing()) return cudaErrorStreamCaptureUnsupported;
  FinishAll();
  return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags) {
  *stream = new CUstream_st;
  (*stream)->non_blocking = (flags & cudaStreamNonBlocking) != 0;
  if ((*stream)->non_blocking) {
    std::lock_guard<std::mutex> lock(M().mu);
    M().non_blocking.push_back(*stream);
  }
  return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) {
  return cudaStreamCreateWithFlags(stream, cudaStreamDefault);
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  {
    std::lock_guard<std::mutex> lock(M().mu);
    auto& v = M().non_blocking;
    v.erase(std::remove(v.begin(), v.end(), stream), v.end());
    for (CUstream_st* other : v) other->waited.erase(stream);
  }
  delete stream;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  if (stream != nullptr && stream->capturing) return cudaErrorStreamCaptureUnsupported;
  if (stream != nullptr && stream->non_blocking) {
    std::lock_guard<std::mutex> lock(M().mu);
    stream->unfinished.clear();
    // What it waited for on other streams came before, so that is done too.
    for (const auto& [other, op] : stream->waited) FinishUpTo(other, op);
  } else {
    FinishLegacy();
  }
  return cudaSuccess;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode) {
  if (stream == nullptr || stream->capturing) return cudaErrorInvalidValue;
  stream->capturing = true;
  stream->captured.clear();
  std::lock_guard<std::mutex> lock(M().mu);
  ++M().capturing;
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  if (stream == nullptr || !stream->capturing) return cudaErrorInvalidValue;
  stream->capturing = false;
  {
    std::lock_guard<std::mutex> lock(M().mu);
    --M().capturing;
  }
  *graph = new CUgraph_st{std::move(stream->captured)};
  stream->captured.clear();
  return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
  *exec = new CUgraphExec_st{graph->ops};
  return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  for (const auto& op : exec->ops) troupe::cuda_cpu::Enqueue(stream, op.touched, op.run);
  return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete exec;
  return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete graph;
  return cudaSuccess;
}

}  // extern "C"
