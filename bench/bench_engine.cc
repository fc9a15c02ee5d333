// In-process engine benchmark: prefill and decode tokens/s at several batch sizes, and the
// process's resident memory against the budget (GGUF size + KV budget + 150 MB).
//
//   bench_engine [--model PATH] [--threads N] [--prompt-len 512] [--gen-len 64]
//                [--batches 1,8,32] [--kv-cache-mb 1024] [--kv-cache-type f16] [--repeat 3]
//                [--decode-context 16] [--load-format gguf|dummy] [--dummy-seed 0]
//                [--device cpu|cuda|auto] [--roofline-gbs GB/s]
//
// With --load-format dummy, --model names a shape (e.g. llama-3-8b) and the weights are random
// bf16 (engine/model/dummy_model.h); the memory budget then counts their bytes for the GGUF's.
//
// Prefill: B requests of prompt-len random tokens, max_tokens 1, all submitted at once; the
// figure is B * prompt-len / wall time. Decode: B requests of decode-context-token prompts generating
// gen-len tokens; the figure is B * (gen-len - 1) / (last finish - last first token), i.e. only
// steps where all B sequences decode. The best of --repeat runs is reported (a shared machine
// only ever makes a run slower). With --roofline-gbs (a measured copy bandwidth), each decode
// figure is also given as a share of the weight-streaming bound: bandwidth / weight bytes
// tokens/s per sequence (bf16 weights: 2 bytes per parameter), times the batch.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "engine/engine.h"

namespace troupe {
namespace {

class TimingSink : public TokenSink {
 public:
  bool Push(TokenDelta) override {
    absl::MutexLock lock(&mu_);
    if (first_token_ == absl::InfinitePast()) first_token_ = absl::Now();
    return true;
  }
  void Finish(const absl::Status& status, const Completion&) override {
    {
      absl::MutexLock lock(&mu_);
      finish_ = absl::Now();
      status_ = status;
      if (first_token_ == absl::InfinitePast()) first_token_ = finish_;
    }
    done_.Notify();
  }
  void Wait() { done_.WaitForNotification(); }
  absl::Time first_token() { absl::MutexLock l(&mu_); return first_token_; }
  absl::Time finish() { absl::MutexLock l(&mu_); return finish_; }
  absl::Status status() { absl::MutexLock l(&mu_); return status_; }

 private:
  absl::Mutex mu_;
  absl::Time first_token_ = absl::InfinitePast();
  absl::Time finish_;
  absl::Status status_;
  absl::Notification done_;
};

long ResidentKiB() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

struct Flags {
  std::string model = "models/SmolLM2-135M-Instruct.Q4_1.gguf";
  int threads = 0;
  int prompt_len = 512;
  int gen_len = 64;
  std::vector<int> batches = {1, 8, 32};
  int kv_cache_mb = 1024;
  KvCacheType kv_cache_type = KvCacheType::kF16;
  int decode_context = 16;  // prompt tokens before the decode phase
  int repeat = 3;
  std::string load_format = "gguf";
  uint64_t dummy_seed = 0;
  std::string device = "cpu";
  double roofline_gbs = 0;  // 0 = no roofline column
};

std::vector<TokenId> RandomPrompt(std::mt19937& rng, int len, int vocab, TokenId bos) {
  std::uniform_int_distribution<int> pick(std::min(1000, vocab / 2), vocab - 1);
  std::vector<TokenId> p;
  if (bos >= 0) p.push_back(bos);
  while (static_cast<int>(p.size()) < len) p.push_back(pick(rng));
  return p;
}

// Runs B requests at once; returns (wall seconds, decode-phase seconds).
std::pair<double, double> RunBatch(Engine& engine, std::mt19937& rng, int batch, int prompt_len,
                                   int max_tokens) {
  const Tokenizer& tok = engine.tokenizer();
  std::vector<std::shared_ptr<TimingSink>> sinks;
  const absl::Time start = absl::Now();
  for (int i = 0; i < batch; ++i) {
    Request r;
    r.id = engine.NewRequestId();
    r.prompt = RandomPrompt(rng, prompt_len, tok.vocab_size(), tok.add_bos() ? tok.bos_id() : -1);
    r.sampling.temperature = 0.0f;
    r.sampling.max_tokens = max_tokens;
    r.sampling.ignore_eos = true;
    auto sink = std::make_shared<TimingSink>();
    r.sink = sink;
    absl::Status s = engine.Submit(std::move(r));
    if (!s.ok()) {
      std::fprintf(stderr, "submit failed: %s\n", s.ToString().c_str());
      std::exit(1);
    }
    sinks.push_back(sink);
  }
  absl::Time last_first = absl::InfinitePast(), last_finish = absl::InfinitePast();
  for (auto& s : sinks) {
    s->Wait();
    if (!s->status().ok()) {
      std::fprintf(stderr, "request failed: %s\n", s->status().ToString().c_str());
      std::exit(1);
    }
    last_first = std::max(last_first, s->first_token());
    last_finish = std::max(last_finish, s->finish());
  }
  return {absl::ToDoubleSeconds(last_finish - start), absl::ToDoubleSeconds(last_finish - last_first)};
}

int Main(int argc, char** argv) {
  Flags f;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--model") f.model = v;
    else if (k == "--threads") f.threads = std::atoi(v.c_str());
    else if (k == "--prompt-len") f.prompt_len = std::atoi(v.c_str());
    else if (k == "--gen-len") f.gen_len = std::atoi(v.c_str());
    else if (k == "--kv-cache-mb") f.kv_cache_mb = std::atoi(v.c_str());
    else if (k == "--repeat") f.repeat = std::atoi(v.c_str());
    else if (k == "--decode-context") f.decode_context = std::atoi(v.c_str());
    else if (k == "--load-format") f.load_format = v;
    else if (k == "--device") f.device = v;
    else if (k == "--roofline-gbs") f.roofline_gbs = std::atof(v.c_str());
    else if (k == "--dummy-seed") f.dummy_seed = std::strtoull(v.c_str(), nullptr, 10);
    else if (k == "--kv-cache-type" && KvCacheTypeFromName(v)) f.kv_cache_type = *KvCacheTypeFromName(v);
    else if (k == "--batches") {
      f.batches.clear();
      for (auto part : absl::StrSplit(v, ',')) f.batches.push_back(std::atoi(std::string(part).c_str()));
    } else {
      std::fprintf(stderr, "unknown flag %s\n", k.c_str());
      return 2;
    }
  }
  const long rss_start = ResidentKiB();
  EngineOptions options;
  options.model_path = f.model;
  options.load_format = f.load_format;
  options.dummy_seed = f.dummy_seed;
  options.device = f.device;
  options.num_threads = f.threads;
  options.kv_cache_bytes = static_cast<int64_t>(f.kv_cache_mb) << 20;
  options.kv_cache_type = f.kv_cache_type;
  options.max_running = *std::max_element(f.batches.begin(), f.batches.end());
  options.max_batched_tokens = std::max(f.prompt_len, options.max_running);
  options.max_waiting = 4 * options.max_running;
  auto engine_or = Engine::Create(options);
  if (!engine_or.ok()) {
    std::fprintf(stderr, "%s\n", engine_or.status().ToString().c_str());
    return 1;
  }
  Engine& engine = **engine_or;
  const long rss_loaded = ResidentKiB();
  std::mt19937 rng(1234);
  RunBatch(engine, rng, 1, 32, 4);  // warm-up: page faults, scratch buffers

  std::printf("model %s, device %s, threads %d, prompt %d, gen %d, best of %d\n", f.model.c_str(),
              f.device.c_str(), f.threads, f.prompt_len, f.gen_len, f.repeat);
  // Batch-1 decode cannot beat streaming every weight once per token.
  const double weight_bytes = 2.0 * engine.model_info().num_parameters;
  const double roofline_tok_s = f.roofline_gbs > 0 ? f.roofline_gbs * 1e9 / weight_bytes : 0;
  std::printf("%6s %16s %16s%s\n", "batch", "prefill tok/s", "decode tok/s",
              roofline_tok_s > 0 ? "   % of roofline" : "");
  for (int batch : f.batches) {
    double best_prefill = 0, best_decode = 0;
    for (int r = 0; r < f.repeat; ++r) {
      auto [prefill_s, unused] = RunBatch(engine, rng, batch, f.prompt_len, 1);
      best_prefill = std::max(best_prefill, batch * f.prompt_len / prefill_s);
      auto [wall_s, decode_s] = RunBatch(engine, rng, batch, f.decode_context, f.gen_len);
      best_decode = std::max(best_decode, batch * (f.gen_len - 1) / decode_s);
    }
    if (roofline_tok_s > 0) {
      std::printf("%6d %16.1f %16.1f %16.1f\n", batch, best_prefill, best_decode,
                  100.0 * best_decode / (batch * roofline_tok_s));
    } else {
      std::printf("%6d %16.1f %16.1f\n", batch, best_prefill, best_decode);
    }
    std::fflush(stdout);
  }
  const long rss_end = ResidentKiB();
  const ModelInfo& info = engine.model_info();
  // Dummy weights: bf16, 2 bytes per parameter, in place of the GGUF.
  const bool dummy = f.load_format == "dummy";
  const double weights_mib =
      (dummy ? 2.0 * info.num_parameters : static_cast<double>(info.file_bytes)) / 1048576.0;
  const double budget_mib = weights_mib + f.kv_cache_mb + 150;
  std::printf("resident: start %.1f MiB, loaded %.1f MiB, after runs %.1f MiB; budget (%s %.1f + "
              "kv %d + 150) = %.1f MiB -> %s\n",
              rss_start / 1024.0, rss_loaded / 1024.0, rss_end / 1024.0, dummy ? "bf16" : "gguf",
              weights_mib, f.kv_cache_mb, budget_mib,
              rss_end / 1024.0 <= budget_mib ? "within" : "OVER");
  return 0;
}

}  // namespace
}  // namespace troupe

int main(int argc, char** argv) { return troupe::Main(argc, argv); }
