// The engine: loads the model, owns the engine thread, and serves requests by continuous
// batching over a paged KV cache.
//
// Thread-safety: Submit, Cancel, Stats, Shutdown and the const accessors are safe from any thread
// and never block on model work (they touch only the inbox and atomics). Everything else
// (scheduler, block pool, model, backend) lives on the engine thread; see docs/threading.md.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/histogram.h"
#include "engine/kv/kv_event.h"
#include "engine/request/request.h"
#include "engine/tokenizer/chat_template.h"
#include "engine/tokenizer/tokenizer.h"
#include "kernels/paged_attention.h"

namespace troupe {

// Fault injection, for tests only (production leaves both empty): each hook, when set, runs on
// the engine thread at its point, and an exception it throws is handled as a fault of the engine
// at that point would be (docs/threading.md, "Faults on the engine thread").
struct EngineFaultHooks {
  // Before a request's next token is sampled: a fault in one request's own work.
  std::function<void(const Request& request)> before_sample;
  // Before a forward pass, with the ids of the requests in its batch: a fault of a batched step.
  std::function<void(std::span<const RequestId> batch)> before_forward;
};

struct EngineOptions {
  std::string model_path;            // a GGUF file, a Hugging Face model folder, or the shape
                                     // name when load_format is "dummy"
  // "auto": "hf" when model_path is a folder holding config.json, else "gguf". "gguf": weights,
  // config and tokenizer from the file at model_path. "hf": a Hugging Face folder (config.json,
  // safetensors, tokenizer.json; engine/model/hf_checkpoint.h). "dummy": random bf16
  // weights of the named real shape (DummyModelShapes(), e.g. "llama-3-8b") and a byte-level
  // tokenizer, for serving and benchmarking real shapes without weight files (vLLM's
  // --load-format dummy).
  std::string load_format = "auto";
  uint64_t dummy_seed = 0;           // seed of the dummy weights; same seed, same weights
  std::string device = "cpu";        // "cpu" (the reference), "cuda", or "auto" (ResolveDevice)
  int num_threads = 0;               // compute threads; 0 = one per core
  int64_t kv_cache_bytes = 256ll << 20;  // byte budget of the paged KV cache (K and V, all layers)
  int block_size = 16;               // tokens per KV block
  KvCacheType kv_cache_type = KvCacheType::kF16;  // f16 halves the KV memory per token
  int max_running = 32;              // max sequences in the running batch
  int max_batched_tokens = 512;      // per-step token budget (prefill chunks + decodes)
  int max_prefill_tokens_while_decoding = 0;  // prefill chunk cap while streams decode; 0 = none
  // Prefill chunks may add at most this multiple of the decodes' estimated cost to a step while
  // streams decode (SchedulerOptions; costs estimated from the model's shape); 0 = no limit.
  double max_prefill_cost_ratio_while_decoding = 1.0;
  int max_waiting = 256;             // inbox + waiting queue capacity; past it Submit fails
  int max_model_len = 0;             // context limit in tokens; 0 = the model's own (capped by KV)
  bool enable_prefix_caching = true; // reuse cached KV blocks of equal prompt prefixes
  // Host tier of the prefix cache (docs/kv_cache.md, "Host tier"): byte budget of host memory
  // (page-locked on CUDA) that full blocks evicted from the KV cache are copied to, least
  // recently used out first, and restored from when a prompt needs them. 0 = off.
  int64_t host_kv_cache_bytes = 0;
  // KV-cache events (engine/kv/kv_event.h), when set: called on the engine thread with the
  // events of each step that stored or evicted full blocks, with one kCleared event when the
  // engine starts and when it shuts down. Must not block (queue and return).
  std::function<void(std::vector<KvEvent> events)> on_kv_events;
  EngineFaultHooks fault_hooks_for_testing;
};

// Read by the server's metrics (gauges) and the integration tests. Counters only grow.
struct EngineStats {
  int num_running = 0;
  int num_waiting = 0;
  int kv_blocks_used = 0;
  int kv_blocks_total = 0;
  int64_t prompt_tokens_total = 0;       // prompt tokens computed (not served from cache)
  int64_t generation_tokens_total = 0;
  int64_t num_steps = 0;
  int64_t num_preemptions = 0;
  int64_t prefix_cache_queries_total = 0;  // prompt tokens looked up in the prefix cache
  int64_t prefix_cache_hits_total = 0;     // of those, served from it
  int64_t prefix_cache_host_hits_total = 0;  // of the hits, restored from the host tier
  // Host tier (EngineOptions::host_kv_cache_bytes); all 0 when it is off.
  int64_t kv_offloaded_blocks_total = 0;   // blocks copied from the KV cache to host memory
  int64_t kv_restored_blocks_total = 0;    // blocks copied back
  int64_t kv_offloaded_bytes_total = 0;
  int64_t kv_restored_bytes_total = 0;
  int host_kv_blocks_used = 0;
  int host_kv_blocks_total = 0;
  // Per engine step that ran a forward pass.
  HistogramSnapshot step_seconds;    // wall time of the step (schedule, forward, sampling)
  HistogramSnapshot step_tokens;     // tokens computed (prefill chunks + decodes)
  HistogramSnapshot step_sequences;  // sequences in the batch
};

// Everything the server needs to know about the loaded model.
struct ModelInfo {
  std::string name;            // general.name or the file name; "dummy-<shape>" for dummy
  std::string architecture;    // "llama"
  int vocab_size = 0;
  int hidden_dim = 0;          // embedding_length: the size of embed-only results
  int max_model_len = 0;       // effective context limit (tokens)
  ChatFamily chat_family = ChatFamily::kRaw;
  int64_t num_parameters = 0;
  bool tied_embeddings = false;  // the output projection is the embedding table
  uint64_t file_bytes = 0;     // size of the weight file(s); 0 for dummy weights
};

class Engine {
 public:
  // Loads the model, sizes the KV cache and starts the engine thread. Errors name the file and
  // the problem (missing, truncated, corrupt, unsupported architecture or tensor type);
  // kInvalidArgument for an unknown load_format or dummy shape.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Engine>> Create(const EngineOptions& options);
  ~Engine();  // Shutdown() then join
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const Tokenizer& tokenizer() const;
  const ModelInfo& model_info() const;
  const EngineOptions& options() const;

  RequestId NewRequestId() { return next_id_.fetch_add(1) + 1; }

  // Validates `request` and queues it for the engine thread. Never blocks.
  // A fault while the engine serves the request (an exception from its sampler, detokenizer or
  // sink, an allocation failure, a failed forward pass of a batch it is in) ends it with
  // kInternal, its KV blocks freed; the engine goes on serving the others.
  //  kInvalidArgument: empty prompt, prompt of max_model_len tokens or more (the message says the
  //                    limit), token id out of range, bad sampling parameters.
  //  kResourceExhausted: the waiting queue is full.  kUnavailable: shutting down.
  // On error the sink is not called; on success Finish will be called exactly once.
  [[nodiscard]] absl::Status Submit(Request request);

  // Cancels a request if it is still live; its KV blocks are freed within one engine step and
  // its sink gets Finish(kCancelled). Unknown or finished ids are ignored. Never blocks.
  void Cancel(RequestId id);

  EngineStats Stats() const;

  // Stops accepting requests, finishes live ones with kUnavailable and joins the engine thread.
  // Idempotent.
  void Shutdown();

  class Impl;

 private:
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::atomic<uint64_t> next_id_{0};
};

}  // namespace troupe
