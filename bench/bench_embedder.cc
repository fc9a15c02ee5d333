// bench_embedder: BertEmbedder (all-MiniLM-L6-v2) latency and throughput on CPU.
//
//   bench_embedder [--model=models/all-MiniLM-L6-v2] [--tokens=16,64] [--seconds=1]
//                  [--threads=1] [--batch=32] [--cpu_time]
//
// For each length N it builds an English text that tokenizes to exactly N tokens ([CLS] and
// [SEP] included) and reports: Embed latency (median and p90 of single calls, tokenization
// included) and sentences/s for back-to-back calls on one thread; EmbedBatch sentences/s for
// --batch texts per call; and, with --threads=T > 1, sentences/s with T threads calling Embed
// concurrently (the embedder is const and thread-safe; each call runs on its caller's core).
// --cpu_time times the single-thread figures (1 and 2) in the calling thread's CPU time instead
// of wall time: on a shared, oversubscribed machine it leaves out the time the thread was
// preempted (but not the cache and core sharing). Work per sentence: ~2 * 10.6 M * N FLOP in the
// linear layers (6 layers x (4 * 384^2 + 2 * 384 * 1536) weights), plus attention; GFLOP/s below
// counts the linear layers only.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#include "engine/embedding/bert_embedder.h"

namespace troupe {
namespace {

using Clock = std::chrono::steady_clock;

bool g_cpu_time = false;

// Seconds on the wall clock, or of this thread's CPU time with --cpu_time.
double Now() {
  if (!g_cpu_time) return std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

struct Flags {
  std::string model = "models/all-MiniLM-L6-v2";
  std::vector<int> tokens = {16, 64};
  double seconds = 1.0;
  int threads = 1;
  int batch = 32;
};

std::vector<int> ParseInts(const std::string& s) {
  std::vector<int> out;
  size_t start = 0;
  while (start < s.size()) {
    const size_t end = std::min(s.find(',', start), s.size());
    out.push_back(std::atoi(s.substr(start, end - start).c_str()));
    start = end + 1;
  }
  return out;
}

bool ParseFlags(int argc, char** argv, Flags* f) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto value = [&](const char* name) -> const char* {
      const std::string prefix = std::string("--") + name + "=";
      return a.rfind(prefix, 0) == 0 ? argv[i] + prefix.size() : nullptr;
    };
    if (const char* v = value("model")) {
      f->model = v;
    } else if (const char* v = value("tokens")) {
      f->tokens = ParseInts(v);
    } else if (const char* v = value("seconds")) {
      f->seconds = std::atof(v);
    } else if (const char* v = value("threads")) {
      f->threads = std::max(1, std::atoi(v));
    } else if (const char* v = value("batch")) {
      f->batch = std::max(1, std::atoi(v));
    } else if (a == "--cpu_time") {
      g_cpu_time = true;
    } else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return false;
    }
  }
  return true;
}

// A role-play-ish text of exactly `n` tokens (each word below is one wordpiece).
std::string TextOfTokens(const WordpieceTokenizer& tokenizer, int n) {
  static const char* kWords[] = {"she",    "smiled", "and",  "said", "the",   "old",  "lighthouse",
                                 "keeper", "had",    "seen", "many", "ships", "pass", "in",
                                 "night",  "while",  "rain", "fell", "on",    "sea"};
  std::string text;
  for (int i = 0; static_cast<int>(tokenizer.Encode(text).size()) < n; ++i) {
    if (!text.empty()) text.push_back(' ');
    text.append(kWords[i % std::size(kWords)]);
  }
  return text;
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

void BenchLength(const BertEmbedder& embedder, const Flags& f, int n) {
  const std::string text = TextOfTokens(embedder.tokenizer(), n);
  if (static_cast<int>(embedder.tokenizer().Encode(text).size()) != n) {
    std::printf("%4d tokens: cannot build such a text (max_seq_length %d)\n", n,
                embedder.config().max_seq_length);
    return;
  }
  const double gflop = 2.0 * 6 * (4.0 * 384 * 384 + 2.0 * 384 * 1536) * n / 1e9;
  (void)embedder.Embed(text);  // warm-up

  // 1) single calls, one thread
  std::vector<double> lat;
  const double t0 = Now();
  while (Now() - t0 < f.seconds || lat.size() < 5) {
    const double s = Now();
    (void)embedder.Embed(text);
    lat.push_back(Now() - s);
  }
  const double total = Now() - t0;
  std::sort(lat.begin(), lat.end());
  const double median = lat[lat.size() / 2];
  std::printf(
      "%4d tokens  Embed: median %7.2f ms  p90 %7.2f ms  best %7.2f ms  %7.1f sent/s"
      "  %5.1f GFLOP/s\n",
      n, median * 1e3, lat[lat.size() * 9 / 10] * 1e3, lat[0] * 1e3, lat.size() / total,
      gflop / median);

  // 2) batches, one thread
  const std::vector<std::string> batch(static_cast<size_t>(f.batch), text);
  int batches = 0;
  const double t1 = Now();
  while (Now() - t1 < f.seconds || batches < 2) {
    (void)embedder.EmbedBatch(batch);
    ++batches;
  }
  const double per_sent = (Now() - t1) / (batches * f.batch);
  std::printf("%4d tokens  EmbedBatch(%d): %7.2f ms/sentence  %7.1f sent/s  %5.1f GFLOP/s\n", n,
              f.batch, per_sent * 1e3, 1.0 / per_sent, gflop / per_sent);

  // 3) concurrent callers
  if (f.threads > 1) {
    std::atomic<int64_t> done{0};
    std::vector<std::thread> threads;
    const auto t2 = Clock::now();
    for (int k = 0; k < f.threads; ++k) {
      threads.emplace_back([&] {
        while (Seconds(Clock::now() - t2) < f.seconds) {
          (void)embedder.Embed(text);
          done.fetch_add(1);
        }
      });
    }
    for (std::thread& t : threads) t.join();
    std::printf("%4d tokens  Embed x %d threads: %7.1f sent/s\n", n, f.threads,
                done.load() / Seconds(Clock::now() - t2));
  }
}

}  // namespace
}  // namespace troupe

int main(int argc, char** argv) {
  troupe::Flags flags;
  if (!troupe::ParseFlags(argc, argv, &flags)) return 2;
  const auto t0 = troupe::Clock::now();
  auto embedder = troupe::BertEmbedder::Load(flags.model);
  if (!embedder.ok()) {
    std::fprintf(stderr, "bench_embedder: %s\n(run scripts/fetch-embedder.sh, or pass --model)\n",
                 embedder.status().ToString().c_str());
    return 1;
  }
  std::printf("bench_embedder: %s loaded in %.0f ms; dim %d, %d threads, %s time\n",
              flags.model.c_str(), troupe::Seconds(troupe::Clock::now() - t0) * 1e3,
              (*embedder)->dim(), flags.threads, troupe::g_cpu_time ? "thread CPU" : "wall");
  for (const int n : flags.tokens) troupe::BenchLength(**embedder, flags, n);
  return 0;
}
