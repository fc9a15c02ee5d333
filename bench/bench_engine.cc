// In-process engine benchmark: prefill and decode tokens/s at several batch sizes, a burst of
// mixed-length requests, chat sessions taking turns over a small KV cache, and the process's
// resident memory against the budget (GGUF size + KV budget + host KV budget + 150 MB).
//
//   bench_engine [--model PATH] [--threads N] [--prompt-len 512] [--gen-len 64]
//                [--batches 1,8,32] [--kv-cache-mb 1024] [--kv-cache-type f16] [--repeat 3]
//                [--decode-context 16] [--load-format gguf|dummy] [--dummy-seed 0]
//                [--device cpu|cuda|auto] [--roofline-gbs GB/s] [--max-batched-tokens N]
//                [--mix-requests N] [--sessions S [--turns 4] [--turn-tokens 256]
//                [--host-kv-cache-mb MB]]
//
// With --load-format dummy, --model names a shape (e.g. llama-3-8b) and the weights are random
// bf16 (engine/model/dummy_model.h); the memory budget then counts their bytes for the GGUF's.
//
// Prefill: B requests of prompt-len random tokens, max_tokens 1, all submitted at once; the
// figure is B * prompt-len / wall time.
// Decode: B prompts of decode-context tokens are computed first (untimed), then submitted again
// generating gen-len tokens each: served from the prefix cache, the whole batch is admitted in
// one step (the default --max-batched-tokens leaves room for every prompt's uncached tail). The
// figure counts only the steps in which all B sequences decode: from the step where the last one
// got its first token to the step where the first one got its last (FullBatchDecodeTokS). A run
// that never decoded as a whole batch, or that preempted, says so beside its figure.
// Length mix (--mix-requests N): N requests with long-tailed prompt and reply lengths submitted
// at once (LengthMix); output and total tokens over the wall time.
// Multi-turn (--sessions S, with --turns, --turn-tokens, --host-kv-cache-mb): S chat sessions
// take turns one at a time, each resending its history plus turn-tokens new tokens; with a KV
// budget too small for every history, the TTFT of turns 2+ is reported by what their prompt
// found: restored from the host KV tier, still in the KV cache, or recomputed (MultiTurn).
// The best of --repeat runs is reported (a shared machine only ever makes a run slower). With
// --roofline-gbs (a measured copy bandwidth), each decode figure is also given as a share of the
// weight-streaming bound: bandwidth / streamed weight bytes tokens/s per sequence (bf16: 2 bytes
// per parameter; the embedding table is gathered, not streamed, unless it is tied to the output
// projection), times the batch.
#include <algorithm>
#include <atomic>
#include <cmath>
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

// Records when each token reached the client side.
class TimingSink : public TokenSink {
 public:
  bool Push(TokenDelta delta) override {
    const absl::Time now = absl::Now();
    absl::MutexLock lock(&mu_);
    token_times_.insert(token_times_.end(), delta.token_ids.size(), now);
    token_ids_.insert(token_ids_.end(), delta.token_ids.begin(), delta.token_ids.end());
    return true;
  }
  void Finish(const absl::Status& status, const Completion& completion) override {
    {
      absl::MutexLock lock(&mu_);
      finish_ = absl::Now();
      status_ = status;
      completion_ = completion;
    }
    done_.Notify();
  }
  void Wait() { done_.WaitForNotification(); }
  std::vector<absl::Time> token_times() { absl::MutexLock l(&mu_); return token_times_; }
  absl::Time finish() { absl::MutexLock l(&mu_); return finish_; }
  absl::Status status() { absl::MutexLock l(&mu_); return status_; }
  Completion completion() { absl::MutexLock l(&mu_); return completion_; }
  std::vector<TokenId> token_ids() { absl::MutexLock l(&mu_); return token_ids_; }

 private:
  absl::Mutex mu_;
  Completion completion_;
  std::vector<absl::Time> token_times_;
  std::vector<TokenId> token_ids_;
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
  double roofline_gbs = 0;     // 0 = no roofline column
  int max_batched_tokens = 0;  // 0 = enough for every batch's uncached prompt tails at once
  int mix_requests = 0;        // 0 = no length-mix run
  int sessions = 0;            // 0 = no multi-turn run
  int turns = 4;
  int turn_tokens = 256;       // new prompt tokens per turn
  int host_kv_cache_mb = 0;    // the host KV tier's budget (0 = off)
};

std::vector<TokenId> RandomPrompt(std::mt19937& rng, int len, int vocab, TokenId bos) {
  std::uniform_int_distribution<int> pick(std::min(1000, vocab / 2), vocab - 1);
  std::vector<TokenId> p;
  if (bos >= 0) p.push_back(bos);
  while (static_cast<int>(p.size()) < len) p.push_back(pick(rng));
  return p;
}

std::vector<std::vector<TokenId>> RandomPrompts(Engine& engine, std::mt19937& rng, int count, int len) {
  const Tokenizer& tok = engine.tokenizer();
  std::vector<std::vector<TokenId>> prompts;
  for (int i = 0; i < count; ++i) {
    prompts.push_back(RandomPrompt(rng, len, tok.vocab_size(), tok.add_bos() ? tok.bos_id() : -1));
  }
  return prompts;
}

// What one batch left behind: when it started and ended, and every sequence's token times.
struct BatchRun {
  absl::Time start;
  absl::Time end;  // the last finish
  std::vector<std::vector<absl::Time>> token_times;
  std::vector<std::vector<TokenId>> token_ids;
  std::vector<Completion> completions;
  int64_t preemptions = 0;

  int64_t tokens() const {
    int64_t n = 0;
    for (const auto& t : token_times) n += static_cast<int64_t>(t.size());
    return n;
  }
};

// Submits one request per prompt at once (greedy, ignoring EOS, max_tokens[i] tokens) and waits
// for all of them.
BatchRun RunBatch(Engine& engine, const std::vector<std::vector<TokenId>>& prompts,
                  const std::vector<int>& max_tokens) {
  std::vector<std::shared_ptr<TimingSink>> sinks;
  BatchRun run;
  const int64_t preemptions_before = engine.Stats().num_preemptions;
  run.start = absl::Now();
  for (size_t i = 0; i < prompts.size(); ++i) {
    Request r;
    r.id = engine.NewRequestId();
    r.prompt = prompts[i];
    r.sampling.temperature = 0.0f;
    r.sampling.max_tokens = max_tokens[i];
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
  run.end = absl::InfinitePast();
  for (auto& s : sinks) {
    s->Wait();
    if (!s->status().ok()) {
      std::fprintf(stderr, "request failed: %s\n", s->status().ToString().c_str());
      std::exit(1);
    }
    run.end = std::max(run.end, s->finish());
    run.token_times.push_back(s->token_times());
    run.token_ids.push_back(s->token_ids());
    run.completions.push_back(s->completion());
  }
  run.preemptions = engine.Stats().num_preemptions - preemptions_before;
  return run;
}

BatchRun RunBatch(Engine& engine, const std::vector<std::vector<TokenId>>& prompts, int max_tokens) {
  return RunBatch(engine, prompts, std::vector<int>(prompts.size(), max_tokens));
}

// Decode tokens/s while all B sequences decode together: from the step in which the last of
// them got its first token to the step in which the first of them got its last. Every step in
// that window produced one token per sequence, so the figure is B times the steps the
// first-finishing sequence saw there, over their time. 0 when the batch never decoded as a
// whole (a prompt was still waiting when a sequence finished).
double FullBatchDecodeTokS(const BatchRun& run) {
  const size_t batch = run.token_times.size();
  absl::Time all_decoding = absl::InfinitePast();
  size_t first_done = 0;
  for (size_t i = 0; i < batch; ++i) {
    const auto& t = run.token_times[i];
    if (t.empty()) return 0;
    all_decoding = std::max(all_decoding, t.front());
    if (t.back() < run.token_times[first_done].back()) first_done = i;
  }
  const auto& t = run.token_times[first_done];
  // Its last token at or before the window opened, and how many it got after.
  auto after = std::upper_bound(t.begin(), t.end(), all_decoding);
  if (after == t.begin() || after == t.end()) return 0;
  const absl::Time from = *(after - 1);
  const int64_t steps = t.end() - after;
  const double seconds = absl::ToDoubleSeconds(t.back() - from);
  return seconds > 0 ? static_cast<double>(batch) * steps / seconds : 0;
}

// Long-tailed prompt and reply lengths, as in chat logs such as ShareGPT (lognormal; medians 256
// prompt and 128 reply tokens, clipped to [16, 2048] and [8, 1024]): a made-up mix of that
// shape, not the dataset.
void LengthMix(std::mt19937& rng, int count, std::vector<int>* prompt_lens, std::vector<int>* reply_lens) {
  std::lognormal_distribution<double> prompt(std::log(256.0), 1.0), reply(std::log(128.0), 0.8);
  for (int i = 0; i < count; ++i) {
    prompt_lens->push_back(std::clamp(static_cast<int>(prompt(rng)), 16, 2048));
    reply_lens->push_back(std::clamp(static_cast<int>(reply(rng)), 8, 1024));
  }
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Chat sessions taking turns one at a time, round robin, so that each session idles while the
// others run: every turn resends the session's history plus turn-tokens new ones and generates
// gen-len tokens. With a KV budget too small for all histories, a session's blocks are evicted
// between its turns; its next turn then finds them in the host tier (restored) or recomputes
// them. Time to first token of turns 2+ by what their prompt found, medians.
void MultiTurn(Engine& engine, std::mt19937& rng, const Flags& f) {
  std::vector<std::vector<TokenId>> history(f.sessions);
  std::vector<double> restored, device_hit, recomputed;
  int64_t restored_tokens = 0;
  for (int turn = 0; turn < f.turns; ++turn) {
    for (int s = 0; s < f.sessions; ++s) {
      std::vector<TokenId> prompt = history[s];
      // [BOS] and the turn's tokens; only the first turn keeps the BOS.
      const std::vector<TokenId> added = RandomPrompts(engine, rng, 1, f.turn_tokens + 1).front();
      prompt.insert(prompt.end(), added.begin() + (turn == 0 ? 0 : 1), added.end());
      if (static_cast<int>(prompt.size()) + f.gen_len > engine.model_info().max_model_len) {
        std::fprintf(stderr, "multi-turn: turn %d of session %d passes the context; lower --turns\n", turn, s);
        return;
      }
      const BatchRun run = RunBatch(engine, {prompt}, f.gen_len);
      const Completion& c = run.completions.front();
      if (turn > 0) {
        const double ttft_ms = absl::ToDoubleMilliseconds(c.time_to_first_token);
        if (c.usage.restored_prompt_tokens > 0) {
          restored.push_back(ttft_ms);
          restored_tokens += c.usage.restored_prompt_tokens;
        } else if (c.usage.cached_prompt_tokens >=
                   static_cast<int>(history[s].size()) - engine.options().block_size) {
          device_hit.push_back(ttft_ms);
        } else {
          recomputed.push_back(ttft_ms);
        }
      }
      // The reply joins the history, as a chat client resends it.
      history[s] = std::move(prompt);
      history[s].insert(history[s].end(), run.token_ids.front().begin(), run.token_ids.front().end());
    }
  }
  std::printf("multi-turn: %d sessions x %d turns, %d new tokens a turn, host tier %d MiB: TTFT of "
              "turns 2+ (median ms): restored %.1f (%zu turns, %lld tokens restored), in the KV "
              "cache %.1f (%zu), recomputed %.1f (%zu)\n",
              f.sessions, f.turns, f.turn_tokens, f.host_kv_cache_mb, Median(restored),
              restored.size(), static_cast<long long>(restored_tokens), Median(device_hit),
              device_hit.size(), Median(recomputed), recomputed.size());
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
    else if (k == "--max-batched-tokens") f.max_batched_tokens = std::atoi(v.c_str());
    else if (k == "--mix-requests") f.mix_requests = std::atoi(v.c_str());
    else if (k == "--sessions") f.sessions = std::atoi(v.c_str());
    else if (k == "--turns") f.turns = std::atoi(v.c_str());
    else if (k == "--turn-tokens") f.turn_tokens = std::atoi(v.c_str());
    else if (k == "--host-kv-cache-mb") f.host_kv_cache_mb = std::atoi(v.c_str());
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
  if (f.batches.empty() || f.gen_len < 2 || f.decode_context < 1 || f.prompt_len < 1) {
    std::fprintf(stderr, "--batches, --gen-len >= 2, --decode-context and --prompt-len are needed\n");
    return 2;
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
  options.host_kv_cache_bytes = static_cast<int64_t>(f.host_kv_cache_mb) << 20;
  const int max_batch = *std::max_element(f.batches.begin(), f.batches.end());
  options.max_running = std::max(max_batch, f.mix_requests);
  // The decode run's prompts are in the prefix cache (see below): what each still computes is
  // under a block and one token, so this budget admits the whole batch in one step.
  options.max_batched_tokens = f.max_batched_tokens > 0
                                   ? f.max_batched_tokens
                                   : std::max(f.prompt_len, max_batch * (options.block_size + 1));
  options.max_waiting = 4 * options.max_running;
  auto engine_or = Engine::Create(options);
  if (!engine_or.ok()) {
    std::fprintf(stderr, "%s\n", engine_or.status().ToString().c_str());
    return 1;
  }
  Engine& engine = **engine_or;
  const long rss_loaded = ResidentKiB();
  std::mt19937 rng(1234);
  RunBatch(engine, RandomPrompts(engine, rng, 1, 32), 4);  // warm-up: page faults, scratch buffers

  std::printf("model %s, device %s, threads %d, prompt %d, decode context %d, gen %d, max batched "
              "tokens %d, best of %d\n",
              f.model.c_str(), f.device.c_str(), f.threads, f.prompt_len, f.decode_context, f.gen_len,
              options.max_batched_tokens, f.repeat);
  // Batch-1 decode cannot beat streaming every weight once per token. The embedding table is
  // gathered a row per token, not streamed, unless it is also the output projection.
  const ModelInfo& info = engine.model_info();
  const double streamed_parameters =
      static_cast<double>(info.num_parameters) -
      (info.tied_embeddings ? 0.0 : static_cast<double>(info.vocab_size) * info.hidden_dim);
  const double roofline_tok_s = f.roofline_gbs > 0 ? f.roofline_gbs * 1e9 / (2.0 * streamed_parameters) : 0;
  std::printf("%6s %16s %16s%s\n", "batch", "prefill tok/s", "decode tok/s",
              roofline_tok_s > 0 ? "   % of roofline" : "");
  for (int batch : f.batches) {
    double best_prefill = 0, best_decode = 0;
    int64_t preemptions = 0;
    for (int r = 0; r < f.repeat; ++r) {
      const BatchRun prefill = RunBatch(engine, RandomPrompts(engine, rng, batch, f.prompt_len), 1);
      best_prefill = std::max(best_prefill, batch * f.prompt_len / absl::ToDoubleSeconds(prefill.end - prefill.start));
      // Decode: the prompts are computed first (one token each, not timed), so that the timed
      // run admits all B sequences at once from the prefix cache and decodes them together.
      const auto prompts = RandomPrompts(engine, rng, batch, f.decode_context);
      RunBatch(engine, prompts, 1);
      const BatchRun decode = RunBatch(engine, prompts, f.gen_len);
      best_decode = std::max(best_decode, FullBatchDecodeTokS(decode));
      preemptions += decode.preemptions;
    }
    std::printf("%6d %16.1f %16.1f", batch, best_prefill, best_decode);
    if (roofline_tok_s > 0) std::printf(" %16.1f", 100.0 * best_decode / (batch * roofline_tok_s));
    if (best_decode == 0) std::printf("   (never decoded as a whole batch: raise --kv-cache-mb)");
    if (preemptions > 0) std::printf("   (%lld preemptions: raise --kv-cache-mb)", static_cast<long long>(preemptions));
    std::printf("\n");
    std::fflush(stdout);
  }
  if (f.mix_requests > 0) {
    // All at once, prompts computed in the run (nothing cached): what a burst of chat turns of
    // mixed lengths gets, as output tokens over the wall time.
    double best_output = 0, best_total = 0;
    int64_t prompt_tokens = 0, output_tokens = 0;
    for (int r = 0; r < f.repeat; ++r) {
      std::vector<int> prompt_lens, reply_lens;
      LengthMix(rng, f.mix_requests, &prompt_lens, &reply_lens);
      std::vector<std::vector<TokenId>> prompts;
      prompt_tokens = 0;
      for (int i = 0; i < f.mix_requests; ++i) {
        const int room = info.max_model_len - reply_lens[i];
        prompts.push_back(RandomPrompts(engine, rng, 1, std::max(1, std::min(prompt_lens[i], room))).front());
        prompt_tokens += static_cast<int64_t>(prompts.back().size());
      }
      const BatchRun run = RunBatch(engine, prompts, reply_lens);
      output_tokens = run.tokens();
      const double seconds = absl::ToDoubleSeconds(run.end - run.start);
      best_output = std::max(best_output, output_tokens / seconds);
      best_total = std::max(best_total, (prompt_tokens + output_tokens) / seconds);
    }
    std::printf("length mix: %d requests at once, %lld prompt and %lld output tokens (last run): "
                "%.1f output tok/s, %.1f total tok/s\n",
                f.mix_requests, static_cast<long long>(prompt_tokens), static_cast<long long>(output_tokens),
                best_output, best_total);
  }
  if (f.sessions > 0) MultiTurn(engine, rng, f);
  const long rss_end = ResidentKiB();
  // Dummy weights: bf16, 2 bytes per parameter, in place of the GGUF.
  const bool dummy = f.load_format == "dummy";
  const double weights_mib =
      (dummy ? 2.0 * info.num_parameters : static_cast<double>(info.file_bytes)) / 1048576.0;
  const double budget_mib = weights_mib + f.kv_cache_mb + f.host_kv_cache_mb + 150;
  std::printf("resident: start %.1f MiB, loaded %.1f MiB, after runs %.1f MiB; budget (%s %.1f + "
              "kv %d + host kv %d + 150) = %.1f MiB -> %s\n",
              rss_start / 1024.0, rss_loaded / 1024.0, rss_end / 1024.0, dummy ? "bf16" : "gguf",
              weights_mib, f.kv_cache_mb, f.host_kv_cache_mb, budget_mib,
              rss_end / 1024.0 <= budget_mib ? "within" : "OVER");
  return 0;
}

}  // namespace
}  // namespace troupe

int main(int argc, char** argv) { return troupe::Main(argc, argv); }
