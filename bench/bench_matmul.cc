// bench_matmul: cpu::Matmul on the SmolLM2-135M shapes, per weight type and token count.
// Validates every (type, shape) against ref::Matmul first (exit 1 on a mismatch), then times.
//
//   bench_matmul [--types=Q4_1,Q8_0,...] [--threads=2] [--tokens=1,8,32,128,512] [--seconds=0.3]
//                [--cpu_time]
//
// --cpu_time (with --threads=1) times the calling thread's CPU time instead of wall time: on a
// shared, oversubscribed machine it leaves out the time the thread was preempted.
// Each timed call uses the next of several packed copies of the matrix, together larger than
// 2x the L3, so the weights stream from DRAM as in a real forward pass (each weight is read once
// per step). Figures: GFLOP/s = 2 * rows * cols * n_tokens / time; GB/s = packed weight bytes /
// time (activations and outputs, which stay in cache, are not counted), from the median call;
// "best us" is the fastest call, the better estimate of an idle machine when others share it.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "common/thread_pool.h"
#include "kernels/cpu/packed_matrix.h"
#include "kernels/matmul.h"

namespace troupe {
namespace {

struct Shape {
  const char* name;
  int64_t cols, rows;  // input features -> output features
};
// SmolLM2-135M: q/o, k/v, gate/up, down, tied output.
constexpr Shape kShapes[] = {{"576->576", 576, 576},
                             {"576->192", 576, 192},
                             {"576->1536", 576, 1536},
                             {"1536->576", 1536, 576},
                             {"576->49152", 576, 49152}};
constexpr size_t kColdBytes = size_t{128} << 20;  // > 2x the 48 MiB L3

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t end = std::min(s.find(',', start), s.size());
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

bool ParseType(const std::string& name, GgmlType* type) {
  for (uint32_t id : {0u, 1u, 2u, 3u, 6u, 7u, 8u, 10u, 11u, 12u, 13u, 14u, 30u}) {
    if (TraitsOf(id)->name == name) {
      *type = static_cast<GgmlType>(id);
      return true;
    }
  }
  return false;
}

// Random but well-formed weights: scales ~0.02, values uniform.
std::vector<uint8_t> RandomWeights(GgmlType type, int64_t rows, int64_t cols, std::mt19937& rng) {
  const auto traits = *TraitsOf(static_cast<uint32_t>(type));
  std::vector<uint8_t> data(RowBytes(traits, cols) * rows);
  for (auto& b : data) b = static_cast<uint8_t>(rng());
  const int64_t n = rows * cols;
  std::normal_distribution<float> normal(0.0f, 0.05f);
  const Fp16 scale = Fp32ToFp16(0.02f), min = Fp32ToFp16(-0.16f);
  switch (type) {
    case GgmlType::kF32:
      for (int64_t i = 0; i < n; ++i) reinterpret_cast<float*>(data.data())[i] = normal(rng);
      break;
    case GgmlType::kF16:
      for (int64_t i = 0; i < n; ++i)
        reinterpret_cast<Fp16*>(data.data())[i] = Fp32ToFp16(normal(rng));
      break;
    case GgmlType::kBF16:
      for (int64_t i = 0; i < n; ++i)
        reinterpret_cast<Bf16*>(data.data())[i] = Fp32ToBf16(normal(rng));
      break;
    case GgmlType::kQ8_0:
      for (int64_t i = 0; i < n / kQK; ++i) reinterpret_cast<BlockQ8_0*>(data.data())[i].d = scale;
      break;
    case GgmlType::kQ4_0:
      for (int64_t i = 0; i < n / kQK; ++i) reinterpret_cast<BlockQ4_0*>(data.data())[i].d = scale;
      break;
    case GgmlType::kQ4_1:
      for (int64_t i = 0; i < n / kQK; ++i) {
        reinterpret_cast<BlockQ4_1*>(data.data())[i].d = scale;
        reinterpret_cast<BlockQ4_1*>(data.data())[i].m = min;
      }
      break;
    case GgmlType::kQ5_0:
      for (int64_t i = 0; i < n / kQK; ++i) reinterpret_cast<BlockQ5_0*>(data.data())[i].d = scale;
      break;
    case GgmlType::kQ5_1:
      for (int64_t i = 0; i < n / kQK; ++i) {
        reinterpret_cast<BlockQ5_1*>(data.data())[i].d = scale;
        reinterpret_cast<BlockQ5_1*>(data.data())[i].m = min;
      }
      break;
    case GgmlType::kQ4_K:  // random six-bit scales and minimums times d, dmin ~ 0.001
    case GgmlType::kQ5_K:
      for (int64_t i = 0; i < n / kQKK; ++i) {
        uint8_t* blk = data.data() + i * traits.block_bytes;
        const Fp16 d = Fp32ToFp16(0.001f);
        std::memcpy(blk, &d, 2);
        std::memcpy(blk + 2, &d, 2);
      }
      break;
    case GgmlType::kQ6_K:
      for (int64_t i = 0; i < n / kQKK; ++i) {
        reinterpret_cast<BlockQ6_K*>(data.data())[i].d = Fp32ToFp16(0.0005f);
      }
      break;
    case GgmlType::kQ3_K:
      for (int64_t i = 0; i < n / kQKK; ++i) {
        reinterpret_cast<BlockQ3_K*>(data.data())[i].d = Fp32ToFp16(0.001f);
      }
      break;
    case GgmlType::kQ2_K:
      for (int64_t i = 0; i < n / kQKK; ++i) {
        reinterpret_cast<BlockQ2_K*>(data.data())[i].d = Fp32ToFp16(0.002f);
        reinterpret_cast<BlockQ2_K*>(data.data())[i].dmin = Fp32ToFp16(0.001f);
      }
      break;
  }
  return data;
}

// Normalised mean squared error of cpu::Matmul against ref::Matmul at 7 tokens.
double ValidationNmse(const MatrixView& view, const cpu::PackedMatrix& packed, ThreadPool& pool,
                      std::mt19937& rng) {
  constexpr int64_t kTokens = 7;
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(kTokens * view.cols), got(kTokens * view.rows), want(kTokens * view.rows);
  for (float& v : x) v = normal(rng);
  cpu::Matmul(packed, x.data(), kTokens, got.data(), pool);
  ref::Matmul({.w = view, .x = x.data(), .y = want.data(), .n_tokens = kTokens});
  double err = 0, sig = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    err += (got[i] - want[i]) * static_cast<double>(got[i] - want[i]);
    sig += static_cast<double>(want[i]) * want[i];
  }
  return sig > 0 ? err / sig : err;
}

double Now(bool cpu_time) {
  if (cpu_time) {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Timing {
  double median;  // seconds per call
  double best;
};

// Seconds per call of cpu::Matmul over n_tokens, rotating through `copies`.
Timing TimeCall(const std::vector<cpu::PackedMatrix>& copies, int64_t n_tokens, ThreadPool& pool,
                double min_seconds, bool cpu_time) {
  const int64_t cols = copies[0].cols(), rows = copies[0].rows();
  std::vector<float> x(n_tokens * cols, 0.5f), y(n_tokens * rows);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.1f * static_cast<float>(i));
  cpu::Matmul(copies[0], x.data(), n_tokens, y.data(), pool);  // warm-up (scratch, pool)
  std::vector<double> times;
  double total = 0;
  size_t next = 1 % copies.size();
  while (total < min_seconds || times.size() < 5) {
    const double start = Now(cpu_time);
    cpu::Matmul(copies[next], x.data(), n_tokens, y.data(), pool);
    const double s = Now(cpu_time) - start;
    times.push_back(s);
    total += s;
    next = (next + 1) % copies.size();
  }
  std::sort(times.begin(), times.end());
  return {times[times.size() / 2], times[0]};
}

int Main(int argc, char** argv) {
  std::vector<std::string> type_names = {"Q4_1", "Q8_0", "Q4_0", "F16", "BF16", "F32"};
  std::vector<int64_t> token_counts = {1, 8, 32, 128, 512};
  int threads = 2;
  double seconds = 0.3;
  bool cpu_time = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&](const char* flag) -> const char* {
      const size_t len = std::strlen(flag);
      return arg.compare(0, len, flag) == 0 ? arg.c_str() + len : nullptr;
    };
    if (const char* v = value("--types=")) {
      type_names = Split(v);
    } else if (const char* v = value("--threads=")) {
      threads = std::atoi(v);
    } else if (const char* v = value("--seconds=")) {
      seconds = std::atof(v);
    } else if (arg == "--cpu_time") {
      cpu_time = true;
    } else if (const char* v = value("--tokens=")) {
      token_counts.clear();
      for (const auto& s : Split(v)) token_counts.push_back(std::atoll(s.c_str()));
    } else {
      std::fprintf(stderr, "unknown flag %s\n", arg.c_str());
      return 2;
    }
  }
  if (cpu_time && threads != 1) {
    std::fprintf(stderr, "--cpu_time counts the calling thread only; use --threads=1\n");
    return 2;
  }
  ThreadPool pool(threads);
  std::mt19937 rng(1234);
  // seconds_per_call[type][shape][n_tokens]
  std::map<std::string, std::map<std::string, std::map<int64_t, Timing>>> results;
  std::printf("threads=%d, %s time (GB/s counts packed weight bytes; weights cold, > 2x L3)\n",
              threads, cpu_time ? "thread CPU" : "wall");
  std::printf("%-5s %-11s %6s %10s %9s %8s %10s\n", "type", "shape", "tokens", "us/call", "GFLOP/s",
              "GB/s", "best us");
  for (const std::string& name : type_names) {
    GgmlType type;
    if (!ParseType(name, &type)) {
      std::fprintf(stderr, "unknown type %s\n", name.c_str());
      return 2;
    }
    for (const Shape& shape : kShapes) {
      if (shape.cols % TraitsOf(static_cast<uint32_t>(type))->block_elems != 0) {
        std::printf("%-5s %-11s  (rows not a multiple of the block size: skipped)\n",
                    name.c_str(), shape.name);
        continue;
      }
      const auto source = RandomWeights(type, shape.rows, shape.cols, rng);
      const MatrixView view{type, source.data(), shape.rows, shape.cols};
      std::vector<cpu::PackedMatrix> copies;
      copies.push_back(cpu::PackedMatrix::Pack(view));
      const double nmse = ValidationNmse(view, copies[0], pool, rng);
      if (!(nmse < 1e-3)) {
        std::fprintf(stderr, "%s %s: cpu::Matmul disagrees with ref::Matmul (nmse %g)\n",
                     name.c_str(), shape.name, nmse);
        return 1;
      }
      // Float matrices are borrowed, so their copies need copies of the source.
      std::vector<std::vector<uint8_t>> sources;
      const size_t bytes = source.size();
      const size_t num_copies = std::max<size_t>(2, (kColdBytes + bytes - 1) / bytes);
      for (size_t c = 1; c < num_copies; ++c) {
        if (copies[0].borrows_source()) {
          sources.push_back(source);
          copies.push_back(
              cpu::PackedMatrix::Pack({type, sources.back().data(), shape.rows, shape.cols}));
        } else {
          copies.push_back(cpu::PackedMatrix::Pack(view));
        }
      }
      for (int64_t n : token_counts) {
        const Timing timing = TimeCall(copies, n, pool, seconds, cpu_time);
        results[name][shape.name][n] = timing;
        const double s = timing.median;
        const double flops = 2.0 * static_cast<double>(shape.rows * shape.cols * n);
        std::printf("%-5s %-11s %6ld %10.1f %9.1f %8.1f %10.1f\n", name.c_str(), shape.name,
                    static_cast<long>(n), s * 1e6, flops / s * 1e-9,
                    static_cast<double>(bytes) / s * 1e-9, timing.best * 1e6);
        std::fflush(stdout);
      }
    }
  }
  // SmolLM2-135M estimate, matmuls only: 30 layers of Q4_1 (q, o: 576->576; k, v: 576->192;
  // gate, up: 576->1536; down: 1536->576) and the Q8_0 tied output (576->49152), which a prompt
  // needs for its last token only.
  if (results.count("Q4_1") && results.count("Q8_0")) {
    auto& q41 = results["Q4_1"];
    auto& out = results["Q8_0"]["576->49152"];
    for (int64_t n : token_counts) {
      // Estimates from the median and from the best calls.
      for (const bool best : {false, true}) {
        const auto t = [&](Timing x) { return best ? x.best : x.median; };
        const double layer = 2 * t(q41["576->576"][n]) + 2 * t(q41["576->192"][n]) +
                             2 * t(q41["576->1536"][n]) + t(q41["1536->576"][n]);
        const double decode_step = 30 * layer + t(out[n]);  // every token needs logits
        const double prefill = 30 * layer + t(out[1]);      // only the last token needs logits
        std::printf("SmolLM2 matmuls at n=%ld (%s): decode-batch %.0f tok/s, prefill %.0f tok/s\n",
                    static_cast<long>(n), best ? "best" : "median", n / decode_step, n / prefill);
      }
    }
  }
  return 0;
}

}  // namespace
}  // namespace troupe

int main(int argc, char** argv) { return troupe::Main(argc, argv); }
