// bench_memory_retrieval: latency of one MemoryIndex::Search (the emotional-RAG retriever) per
// strategy, over one scope of random memories: unit 384-d embeddings, integer emotions 1..10,
// 10% timeless, story times 1..100.
//
//   bench_memory_retrieval [--memories=10000] [--dim=384] [--queries=2000] [--k=10] [--pool=20]
//                          [--time_filter] [--cpu_time] [--seed=7]
//
// Each strategy first runs 20 queries against RetrieveReference (exit 1 if a score differs by
// more than 1e-4), then 50 untimed warm-up queries, then --queries timed ones, one at a time on
// the calling thread. Queries have no point in time (every memory is scored) unless
// --time_filter gives each one a random point in time in 50..100. Figures: mean, p50, p99 and
// max wall time per query; GB/s = memories * dim * 4 bytes of embeddings / mean time (the
// matrix one search streams; kEmotionFirst reads only its pool's rows, so it has no GB/s).
// --cpu_time times the thread's CPU time instead of wall time, leaving out the time it was
// preempted: on a shared 2-core machine that is the better estimate of an idle one.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "engine/memory/memory_index.h"
#include "engine/memory/retriever.h"

namespace troupe {
namespace {

struct Flags {
  int memories = 10000;
  int dim = 384;
  int queries = 2000;
  int k = 10;
  int pool = 20;
  bool time_filter = false;
  bool cpu_time = false;
  unsigned seed = 7;
};

bool ParseFlags(int argc, char** argv, Flags& f) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&](const char* flag) -> const char* {
      const size_t len = std::strlen(flag);
      return arg.compare(0, len, flag) == 0 ? arg.c_str() + len : nullptr;
    };
    if (const char* v = value("--memories=")) {
      f.memories = std::atoi(v);
    } else if (const char* v = value("--dim=")) {
      f.dim = std::atoi(v);
    } else if (const char* v = value("--queries=")) {
      f.queries = std::atoi(v);
    } else if (const char* v = value("--k=")) {
      f.k = std::atoi(v);
    } else if (const char* v = value("--pool=")) {
      f.pool = std::atoi(v);
    } else if (const char* v = value("--seed=")) {
      f.seed = static_cast<unsigned>(std::atoi(v));
    } else if (arg == "--time_filter") {
      f.time_filter = true;
    } else if (arg == "--cpu_time") {
      f.cpu_time = true;
    } else {
      std::fprintf(stderr, "unknown flag %s\n", arg.c_str());
      return false;
    }
  }
  return f.memories > 0 && f.dim > 0 && f.queries > 0;
}

class Generator {
 public:
  Generator(unsigned seed, int dim) : rng_(seed), dim_(dim) {}

  std::vector<float> UnitVector() {
    std::vector<float> v(dim_);
    double norm_sq = 0.0;
    for (float& x : v) {
      x = normal_(rng_);
      norm_sq += double{x} * x;
    }
    const double inv = 1.0 / std::sqrt(norm_sq);
    for (float& x : v) x = static_cast<float>(x * inv);
    return v;
  }
  EmotionVector Emotion() {
    EmotionVector v;
    for (float& x : v) x = static_cast<float>(Uniform(1, 10));
    return v;
  }
  int Uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

 private:
  std::mt19937 rng_;
  std::normal_distribution<float> normal_;
  const int dim_;
};

struct QuerySpec {
  std::vector<float> embedding;
  EmotionVector emotion;
  std::optional<int64_t> point_in_time;
};

// Checks the fast path against the reference on the first `n` queries; false on a mismatch.
bool Validate(const MemoryIndex& index, const std::vector<MemoryUnit>& units,
              const std::vector<QuerySpec>& queries, const RetrievalOptions& options, int n) {
  int id_swaps = 0;
  for (int i = 0; i < n && i < static_cast<int>(queries.size()); ++i) {
    const RetrievalQuery q{.embedding = queries[i].embedding,
                           .emotion = queries[i].emotion,
                           .point_in_time = queries[i].point_in_time,
                           .now_ms = 0};
    absl::StatusOr<std::vector<RetrievalHit>> fast = index.Search(q, options);
    absl::StatusOr<std::vector<RetrievalHit>> ref = RetrieveReference(units, q, options);
    if (!fast.ok() || !ref.ok() || fast->size() != ref->size()) return false;
    for (size_t r = 0; r < ref->size(); ++r) {
      if (std::abs((*fast)[r].score - (*ref)[r].score) > 1e-4f) {
        std::fprintf(stderr, "%s: query %d rank %zu: score %g, reference %g\n",
                     std::string(StrategyName(options.strategy)).c_str(), i, r, (*fast)[r].score,
                     (*ref)[r].score);
        return false;
      }
      id_swaps += (*fast)[r].id != (*ref)[r].id;  // near-ties only, given equal scores
    }
  }
  if (id_swaps > 0) std::printf("  (%d near-tie swaps against the reference)\n", id_swaps);
  return true;
}

// Microseconds on the wall clock, or of this thread's CPU time.
double NowUs(bool cpu_time) {
  if (cpu_time) {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
  }
  return std::chrono::duration<double, std::micro>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

double Percentile(const std::vector<double>& sorted, double p) {
  const size_t i = static_cast<size_t>(std::ceil(p * sorted.size()));
  return sorted[std::min(sorted.size() - 1, i == 0 ? 0 : i - 1)];
}

int Main(int argc, char** argv) {
  Flags f;
  if (!ParseFlags(argc, argv, f)) return 2;
  Generator gen(f.seed, f.dim);
  std::vector<MemoryUnit> units;
  MemoryIndex index(f.dim);
  index.Reserve(f.memories);
  for (int i = 0; i < f.memories; ++i) {
    MemoryUnit m;
    m.id = i;
    m.embedding = gen.UnitVector();
    m.emotion = gen.Emotion();
    m.importance = static_cast<float>(gen.Uniform(1, 10));
    m.wall_time_ms = int64_t{gen.Uniform(0, 1'000'000)} * 1000;
    if (gen.Uniform(1, 10) > 1) m.story_time = gen.Uniform(1, 100);
    if (!index.Add(m).ok()) return 1;
    units.push_back(std::move(m));
  }
  std::vector<QuerySpec> queries;
  for (int i = 0; i < f.queries + 50; ++i) {
    QuerySpec q{.embedding = gen.UnitVector(), .emotion = gen.Emotion(), .point_in_time = {}};
    if (f.time_filter) q.point_in_time = gen.Uniform(50, 100);
    queries.push_back(std::move(q));
  }

  const double matrix_gb = double(f.memories) * f.dim * sizeof(float) / 1e9;
  std::printf("memories=%d dim=%d queries=%d k=%d pool=%d time_filter=%s, one thread, %s time\n",
              f.memories, f.dim, f.queries, f.k, f.pool, f.time_filter ? "on" : "off",
              f.cpu_time ? "thread CPU" : "wall");
  std::printf("%-24s %9s %9s %9s %9s %7s\n", "strategy", "mean us", "p50 us", "p99 us", "max us",
              "GB/s");
  for (RetrievalStrategy s :
       {RetrievalStrategy::kSemantic, RetrievalStrategy::kCombinedAdditive,
        RetrievalStrategy::kCombinedMultiplicative, RetrievalStrategy::kSemanticFirst,
        RetrievalStrategy::kEmotionFirst, RetrievalStrategy::kWeighted}) {
    RetrievalOptions options{
        .strategy = s, .k = f.k, .pool = std::max(f.pool, f.k), .weighted = {}};
    options.weighted.w_rec = 0.5f;  // every weighted term in play
    options.weighted.w_imp = 0.5f;
    if (!Validate(index, units, queries, options, 20)) {
      std::fprintf(stderr, "%s: fast path disagrees with the reference\n",
                   std::string(StrategyName(s)).c_str());
      return 1;
    }
    std::vector<double> us;
    size_t checksum = 0;
    for (int i = 0; i < f.queries + 50; ++i) {
      const RetrievalQuery q{.embedding = queries[i].embedding,
                             .emotion = queries[i].emotion,
                             .point_in_time = queries[i].point_in_time,
                             .now_ms = 1'000'000'000};
      const double start = NowUs(f.cpu_time);
      absl::StatusOr<std::vector<RetrievalHit>> hits = index.Search(q, options);
      const double end = NowUs(f.cpu_time);
      if (!hits.ok()) return 1;
      checksum += hits->empty() ? 0 : static_cast<size_t>(hits->front().id);
      if (i >= 50) us.push_back(end - start);
    }
    std::sort(us.begin(), us.end());
    double mean = 0.0;
    for (double x : us) mean += x;
    mean /= us.size();
    char gbs[16] = "-";
    if (s != RetrievalStrategy::kEmotionFirst) {
      std::snprintf(gbs, sizeof(gbs), "%.1f", matrix_gb / (mean * 1e-6));
    }
    std::printf("%-24s %9.1f %9.1f %9.1f %9.1f %7s   (checksum %zu)\n",
                std::string(StrategyName(s)).c_str(), mean, Percentile(us, 0.5),
                Percentile(us, 0.99), us.back(), gbs, checksum);
  }
  return 0;
}

}  // namespace
}  // namespace troupe

int main(int argc, char** argv) { return troupe::Main(argc, argv); }
