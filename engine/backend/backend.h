// The compute backend: runs the model's forward pass over one step's batch, reading and writing
// K/V through the paged block tables. The CPU backend is the reference; a CUDA backend is a new
// implementation of this interface (one file), chosen by name in CreateBackend. Every backend
// runs the same layer sequence, the model's LayerPlan (engine/model/layer_plan.h), with its own
// kernels.
//
// Not thread-safe; engine thread only (a backend may use its own worker threads inside Forward).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "engine/kv/host_kv_tier.h"
#include "engine/model/model_config.h"
#include "engine/model/weights.h"
#include "kernels/paged_attention.h"

namespace troupe {

class GgufFile;

// Sampling parameters of one logit row for a backend that samples on the device (the CPU
// sampler's order: top-k, softmax with temperature, top-p, min-p; no penalties, no logprobs).
struct RowSampling {
  float temperature = 1.0f;  // 0 = greedy
  int top_k = 0;             // 0 = off
  float top_p = 1.0f;        // 1 = off
  float min_p = 0.0f;        // 0 = off
  uint64_t seed = 0;
  uint64_t counter = 0;      // tokens the request generated so far: (seed, counter) fixes the draw
};

// One step's batch, flattened over sequences. Tokens of one sequence are contiguous and in
// position order.
struct ForwardBatch {
  std::span<const int32_t> tokens;        // [n_tokens]
  std::span<const int32_t> positions;     // [n_tokens]
  std::span<const int32_t> token_seq;     // [n_tokens] row of block_tables
  std::span<const int64_t> slots;         // [n_tokens] KV slot to write (block*block_size+off)
  std::span<const int32_t> block_tables;  // [n_seqs, max_blocks_per_seq], -1 padded
  int n_seqs = 0;
  int max_blocks_per_seq = 0;
  std::span<const int32_t> logit_rows;    // token indices whose next-token logits are wanted
  // Optional: receives the final-norm hidden state of each logit row, [logit_rows.size(), dim]
  // (what the output projection reads; embed-only requests use it as their embedding).
  float* hidden_out = nullptr;
  // Optional, only for a backend with samples_on_device(): one entry per logit row; the
  // backend samples each row on the device and writes the ids to sampled_ids
  // [logit_rows.size()], so only the ids cross to the host (logits may then be nullptr).
  std::span<const RowSampling> sampling;
  int32_t* sampled_ids = nullptr;
};

struct KvCacheSpec {
  int num_blocks = 0;
  int block_size = 16;
  KvCacheType type = KvCacheType::kF16;
};

// Bytes one KV block takes for this model (K and V, all layers); num_blocks is ignored. Every
// backend keeps, per layer, K and V as [num_blocks * block_size, kv_dim] of KvElementBytes(type),
// so this holds for each (backend.cc).
int64_t KvBlockBytes(const ModelConfig& config, const KvCacheSpec& spec);

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;

  // Runs the forward pass; writes logits [batch.logit_rows.size(), vocab_size] row-major
  // (unless logits is nullptr, allowed only with batch.sampling).
  // REQUIRES: every slot and block id is within the KV cache; positions < max context;
  // batch.sampling is empty unless samples_on_device().
  virtual void Forward(const ForwardBatch& batch, float* logits) = 0;

  // Whether Forward honours batch.sampling.
  virtual bool samples_on_device() const { return false; }

  // Bytes of weights this backend holds outside the file mapping (repacked copies).
  virtual int64_t owned_weight_bytes() const = 0;

  // ---- the host tier of the KV cache (docs/kv_cache.md, "Host tier") ----
  // Allocates `num_slots` host blocks of KvBlockBytes each (page-locked on CUDA), once.
  // kUnimplemented for a backend without a host tier; kResourceExhausted when they do not fit.
  [[nodiscard]] virtual absl::Status AllocateHostKv(int64_t num_slots);
  // Runs the copies in order, each moving one block's K and V of every layer between the KV
  // cache and a host slot. They come after every forward pass issued before (an offload reads
  // what those wrote) and before the next one (which may overwrite an offloaded block or read a
  // restored one): the CPU backend copies at once; the CUDA backend copies on its own stream,
  // which waits for the compute stream's work so far, and the compute stream waits for them.
  // REQUIRES: AllocateHostKv succeeded; blocks and slots within their allocations.
  virtual void CopyKvBlocks(std::span<const KvBlockCopy> copies);
};

struct BackendOptions {
  std::string device = "cpu";  // "cpu", "cuda", or "auto" (ResolveDevice)
  int num_threads = 0;  // CPU compute threads; 0 = one per core
  KvCacheSpec kv;
};

// "auto" becomes "cuda" in a CUDA build when a GPU answers, else "cpu"; other names are
// returned as they are.
std::string ResolveDevice(std::string_view requested);

// Builds the named backend. `file` is the mapping the weights point into, and must outlive the
// backend; nullptr = the weights are not from a file (e.g. dummy weights), and whatever owns
// them must outlive the backend instead. kInvalidArgument for an unknown or unavailable device.
[[nodiscard]] absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(
    const BackendOptions& options, const ModelConfig& config, const ModelWeights& weights,
    const GgufFile* file);

}  // namespace troupe
