// CUDA backend (cuda_backend.h): weight upload, per-step metadata, and the layer plan's ops
// (engine/model/layer_plan.h) on the kernels in kernels/cuda/.
#include "engine/backend/cuda_backend.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "engine/backend/attention_plan.h"
#include "engine/model/layer_plan.h"
#include "kernels/cuda/activation.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/decode_attention.h"
#include "kernels/cuda/embedding.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/norm.h"
#include "kernels/cuda/prefill_attention.h"
#include "kernels/cuda/rope_kv.h"
#include "kernels/cuda/sampling.h"
#include "kernels/ggml_types.h"
#include "kernels/matmul.h"
#include "kernels/paged_index.h"
#include "kernels/rope.h"

namespace troupe {
namespace {

absl::Status CudaError(cudaError_t e, std::string_view what) {
  const std::string text = absl::StrCat(std::string(what), ": ", cudaGetErrorString(e));
  return e == cudaErrorMemoryAllocation ? absl::ResourceExhaustedError(text)
                                        : absl::InternalError(text);
}

constexpr size_t kAlign = 256;
size_t AlignUp(size_t n, size_t a = kAlign) { return (n + a - 1) / a * a; }

// One device allocation, freed on destruction.
class DeviceMemory {
 public:
  DeviceMemory() = default;
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;
  ~DeviceMemory() { Free(); }

  [[nodiscard]] absl::Status Allocate(size_t bytes, std::string_view what) {
    Free();
    if (bytes == 0) return absl::OkStatus();
    if (const cudaError_t e = cudaMalloc(&ptr_, bytes); e != cudaSuccess) {
      ptr_ = nullptr;
      return CudaError(e, absl::StrCat("allocating ", bytes >> 20, " MiB for ", std::string(what)));
    }
    bytes_ = bytes;
    return absl::OkStatus();
  }
  // Grows to at least `bytes` (contents are not kept). Aborts on failure: called in the step.
  void Reserve(size_t bytes, std::string_view what) {
    if (bytes <= bytes_) return;
    const absl::Status s = Allocate(std::max(bytes, bytes_ + bytes_ / 2), what);
    TROUPE_CHECK_MSG(s.ok(), "%s", std::string(s.message()).c_str());
  }
  template <typename T>
  T* as(size_t byte_offset = 0) const {
    return reinterpret_cast<T*>(static_cast<char*>(ptr_) + byte_offset);
  }
  size_t bytes() const { return bytes_; }

 private:
  void Free() {
    if (ptr_ != nullptr) cudaFree(ptr_);
    ptr_ = nullptr;
    bytes_ = 0;
  }
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// Page-locked host memory for the per-step metadata upload.
class PinnedMemory {
 public:
  PinnedMemory() = default;
  PinnedMemory(const PinnedMemory&) = delete;
  PinnedMemory& operator=(const PinnedMemory&) = delete;
  ~PinnedMemory() {
    if (ptr_ != nullptr) cudaFreeHost(ptr_);
  }
  void Reserve(size_t bytes) {
    if (bytes <= bytes_) return;
    if (ptr_ != nullptr) cudaFreeHost(ptr_);
    bytes_ = std::max(bytes, bytes_ * 2);
    TROUPE_CUDA_CHECK(cudaMallocHost(&ptr_, bytes_));
  }
  char* data() const { return static_cast<char*>(ptr_); }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

struct DeviceLayer {
  Bf16* wqkv = nullptr;       // [q_dim + 2 kv_dim, dim]
  Bf16* wo = nullptr;         // [dim, q_dim]
  Bf16* w_gate_up = nullptr;  // [2 ffn, dim]
  Bf16* w_down = nullptr;     // [dim, ffn]
  float* attn_norm = nullptr;
  float* ffn_norm = nullptr;
  float* qkv_bias = nullptr;  // [q_dim + 2 kv_dim] when ModelConfig::qkv_bias, else null
  Bf16* k_cache = nullptr;    // [num_blocks * block_size, kv_dim]
  Bf16* v_cache = nullptr;
};

// Where each array of a step's metadata sits, as byte offsets into the staging buffers.
struct MetaLayout {
  size_t tokens = 0, positions = 0, slots = 0, logit_rows = 0, kv_indptr = 0, kv_indices = 0,
         item_row = 0, item_seq = 0, item_len = 0, tiles = 0, sampling = 0, total = 0;
};

// Device pointers and sizes of one step, as the kernels read them.
struct StepArgs {
  const int32_t* tokens = nullptr;
  const int32_t* positions = nullptr;
  const int64_t* slots = nullptr;
  const int32_t* logit_rows = nullptr;
  const int32_t* kv_indptr = nullptr;
  const int32_t* kv_indices = nullptr;
  const int32_t* item_row = nullptr;
  const int32_t* item_seq = nullptr;
  const int32_t* item_len = nullptr;
  const int32_t* tiles = nullptr;
  const cuda::SampleRowParams* sampling = nullptr;  // nullptr = no sampling kernel
  int n = 0, m = 0, n_items = 0, n_tiles = 0, num_splits = 1;
  bool hidden_f32 = false;
};

}  // namespace

struct CudaBackend::State {
  ModelConfig config;
  KvCacheSpec kv;
  LayerPlan layer_plan;
  cudaStream_t stream = nullptr;
  std::optional<cuda::Gemm> gemm;
  // The host KV tier (AllocateHostKv): page-locked slots, [num_slots][2 * num_layers]
  // [block_size, kv_dim] bf16, and the copy stream with its two events: compute_done orders
  // the copies after the forward passes issued so far, copies_done the next pass after them.
  void* host_kv = nullptr;
  int64_t host_kv_slots = 0;
  cudaStream_t copy_stream = nullptr;
  cudaEvent_t compute_done = nullptr, copies_done = nullptr;
  int num_sms = 0;
  int decode_blocks_per_sm = 0;  // cuda::DecodeAttentionBlocksPerSm, asked once at load
  bool prefill_kernel = false;  // head_dim / group covered by PrefillAttention
  int max_pages_per_seq = 0;    // pages of a sequence at the context limit
  int max_seq_len = 0;          // min(context length, KV cache tokens): graph split counts

  DeviceMemory weights;  // every matrix, norm and the RoPE table, in one allocation
  int64_t weight_bytes = 0;
  DeviceMemory kv_cache;
  std::vector<DeviceLayer> layers;
  Bf16* token_embd = nullptr;
  Bf16* output = nullptr;
  float* output_norm = nullptr;
  float* inv_freq = nullptr;

  // Scratch, grown to the largest step seen; any move bumps scratch_generation, which
  // invalidates the captured graphs (they hold the old pointers).
  DeviceMemory x, xb, qkv, q, att, delta, gate_up, h, hidden, hidden_f32, logits, sampled_ids;
  DeviceMemory partial_out, partial_lse;
  int64_t scratch_tokens = 0, scratch_rows = 0, partial_floats = 0;
  int64_t scratch_generation = 0;

  // Per-step metadata: built in host vectors, packed into pinned memory, one upload. Eager
  // steps pack it densely into meta_dev; graph steps into graph_meta at fixed offsets.
  AttentionPlan plan;
  GraphItems graph_items;
  std::vector<cuda::SampleRowParams> sampling;
  PinnedMemory meta_host;
  DeviceMemory meta_dev, graph_meta;
  MetaLayout graph_layout;
  struct Graph {
    cudaGraphExec_t exec = nullptr;
    int64_t generation = -1;
  };
  // By (bucket, decode split count): GraphIndex.
  std::vector<Graph> graphs = std::vector<Graph>((kMaxGraphBatch + 1) * (kMaxSplits + 1));
  int64_t graph_partial = 0;  // split-KV workspace (partials) every graph step fits in

  ~State() {
    for (Graph& g : graphs) {
      if (g.exec != nullptr) cudaGraphExecDestroy(g.exec);
    }
    gemm.reset();
    if (copy_stream != nullptr) cudaStreamSynchronize(copy_stream);
    if (compute_done != nullptr) cudaEventDestroy(compute_done);
    if (copies_done != nullptr) cudaEventDestroy(copies_done);
    if (copy_stream != nullptr) cudaStreamDestroy(copy_stream);
    if (host_kv != nullptr) cudaFreeHost(host_kv);
    if (stream != nullptr) cudaStreamDestroy(stream);
  }

  int q_dim() const { return config.num_heads * config.head_dim; }
  int kv_dim() const { return config.num_kv_heads * config.head_dim; }
  // Decode attention's split count: whole waves of the split kernel at its real occupancy.
  static constexpr int kMaxSplits = 32;
  int NumSplits(int n_items, int max_len) const {
    return ChooseNumSplits(n_items, config.num_kv_heads, max_len, num_sms, decode_blocks_per_sm,
                           /*min_chunk_keys=*/256, kMaxSplits);
  }
  static int GraphIndex(int bucket, int num_splits) { return bucket * (kMaxSplits + 1) + num_splits; }

  absl::Status UploadWeights(const ModelWeights& w);
  void EnsureScratch(int64_t n, int64_t m, int64_t partial_floats);
  MetaLayout PackDense(const ForwardBatch& batch);
  void PackGraph(const ForwardBatch& batch, int bucket);
  StepArgs Pointers(const DeviceMemory& meta, const MetaLayout& l) const;
  void EnqueueStep(const StepArgs& a);
};


namespace {

// Copies `m` into dst as bf16 rows: BF16 tensors as they are, other types dequantized row by
// row on the host (kernels/matmul.h DequantizeRow) and rounded to nearest even.
absl::Status UploadMatrix(const MatrixView& m, Bf16* dst, cudaStream_t stream) {
  const size_t elements = static_cast<size_t>(m.rows) * m.cols;
  if (m.type == GgmlType::kBF16) {
    if (const cudaError_t e = cudaMemcpyAsync(dst, m.data, elements * sizeof(Bf16),
                                              cudaMemcpyHostToDevice, stream);
        e != cudaSuccess) {
      return CudaError(e, "uploading weights");
    }
    return absl::OkStatus();
  }
  const auto traits = TraitsOf(static_cast<uint32_t>(m.type));
  if (!traits) return absl::InvalidArgumentError("weight matrix of an unknown type");
  const size_t row_bytes = RowBytes(*traits, m.cols);
  const int64_t rows_per_chunk = std::max<int64_t>(1, (16 << 20) / m.cols);
  std::vector<float> row(m.cols);
  std::vector<Bf16> chunk;
  for (int64_t r0 = 0; r0 < m.rows; r0 += rows_per_chunk) {
    const int64_t r1 = std::min(m.rows, r0 + rows_per_chunk);
    chunk.resize(static_cast<size_t>(r1 - r0) * m.cols);
    for (int64_t r = r0; r < r1; ++r) {
      DequantizeRow(m.type, static_cast<const uint8_t*>(m.data) + row_bytes * r, row.data(), m.cols);
      Bf16* out = chunk.data() + (r - r0) * m.cols;
      for (int64_t c = 0; c < m.cols; ++c) out[c] = Fp32ToBf16(row[c]);
    }
    // Synchronous: `chunk` is reused for the next rows.
    if (const cudaError_t e = cudaMemcpy(dst + r0 * m.cols, chunk.data(), chunk.size() * sizeof(Bf16),
                                         cudaMemcpyHostToDevice);
        e != cudaSuccess) {
      return CudaError(e, "uploading weights");
    }
  }
  return absl::OkStatus();
}

absl::Status UploadFloats(const std::vector<float>& v, float* dst) {
  if (const cudaError_t e = cudaMemcpy(dst, v.data(), v.size() * sizeof(float), cudaMemcpyHostToDevice);
      e != cudaSuccess) {
    return CudaError(e, "uploading norms");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CudaBackend::State::UploadWeights(const ModelWeights& w) {
  const ModelConfig& c = config;
  const size_t dim = c.dim, ffn = c.ffn_dim, vocab = c.vocab_size;
  const size_t qkv_rows = q_dim() + 2 * kv_dim();
  // Layout: per layer wqkv, wo, w_gate_up, w_down, two norms, the q/k/v bias; then embeddings, output, norm, RoPE.
  std::vector<size_t> offsets;
  size_t total = 0;
  auto reserve = [&](size_t bytes) {
    offsets.push_back(total);
    total += AlignUp(bytes);
  };
  for (int l = 0; l < c.num_layers; ++l) {
    reserve(qkv_rows * dim * sizeof(Bf16));
    reserve(dim * q_dim() * sizeof(Bf16));
    reserve(2 * ffn * dim * sizeof(Bf16));
    reserve(dim * ffn * sizeof(Bf16));
    reserve(dim * sizeof(float));
    reserve(dim * sizeof(float));
    reserve(c.qkv_bias ? qkv_rows * sizeof(float) : 0);
  }
  reserve(vocab * dim * sizeof(Bf16));
  reserve(c.tied_embeddings ? 0 : vocab * dim * sizeof(Bf16));
  reserve(dim * sizeof(float));
  const std::vector<float> inv_freq_host = RopeInvFreq(c.rope);
  reserve(inv_freq_host.size() * sizeof(float));
  TROUPE_RETURN_IF_ERROR(weights.Allocate(total, "weights"));
  weight_bytes = static_cast<int64_t>(total);

  size_t i = 0;
  layers.resize(c.num_layers);
  for (int l = 0; l < c.num_layers; ++l) {
    const LayerWeights& lw = w.layers[l];
    DeviceLayer& d = layers[l];
    d.wqkv = weights.as<Bf16>(offsets[i++]);
    d.wo = weights.as<Bf16>(offsets[i++]);
    d.w_gate_up = weights.as<Bf16>(offsets[i++]);
    d.w_down = weights.as<Bf16>(offsets[i++]);
    d.attn_norm = weights.as<float>(offsets[i++]);
    d.ffn_norm = weights.as<float>(offsets[i++]);
    const size_t bias_offset = offsets[i++];
    if (c.qkv_bias) {
      d.qkv_bias = weights.as<float>(bias_offset);
      std::vector<float> bias(lw.bq);
      bias.insert(bias.end(), lw.bk.begin(), lw.bk.end());
      bias.insert(bias.end(), lw.bv.begin(), lw.bv.end());
      TROUPE_RETURN_IF_ERROR(UploadFloats(bias, d.qkv_bias));
    }
    TROUPE_RETURN_IF_ERROR(UploadMatrix(lw.wq, d.wqkv, stream));
    TROUPE_RETURN_IF_ERROR(UploadMatrix(lw.wk, d.wqkv + q_dim() * dim, stream));
    TROUPE_RETURN_IF_ERROR(UploadMatrix(lw.wv, d.wqkv + (q_dim() + kv_dim()) * dim, stream));
    TROUPE_RETURN_IF_ERROR(UploadMatrix(lw.wo, d.wo, stream));
    TROUPE_RETURN_IF_ERROR(UploadMatrix(lw.w_gate, d.w_gate_up, stream));
    TROUPE_RETURN_IF_ERROR(UploadMatrix(lw.w_up, d.w_gate_up + ffn * dim, stream));
    TROUPE_RETURN_IF_ERROR(UploadMatrix(lw.w_down, d.w_down, stream));
    TROUPE_RETURN_IF_ERROR(UploadFloats(lw.attn_norm, d.attn_norm));
    TROUPE_RETURN_IF_ERROR(UploadFloats(lw.ffn_norm, d.ffn_norm));
  }
  token_embd = weights.as<Bf16>(offsets[i++]);
  TROUPE_RETURN_IF_ERROR(UploadMatrix(w.token_embd, token_embd, stream));
  const size_t output_offset = offsets[i++];
  if (c.tied_embeddings) {
    output = token_embd;
  } else {
    output = weights.as<Bf16>(output_offset);
    TROUPE_RETURN_IF_ERROR(UploadMatrix(w.output, output, stream));
  }
  output_norm = weights.as<float>(offsets[i++]);
  TROUPE_RETURN_IF_ERROR(UploadFloats(w.output_norm, output_norm));
  inv_freq = weights.as<float>(offsets[i++]);
  TROUPE_RETURN_IF_ERROR(UploadFloats(inv_freq_host, inv_freq));
  // The whole device, not just `stream`: the synchronous cudaMemcpy calls above run on the
  // legacy default stream, which a non-blocking stream does not wait for, and a pageable copy
  // may return before its DMA has landed.
  if (const cudaError_t e = cudaDeviceSynchronize(); e != cudaSuccess) {
    return CudaError(e, "uploading weights");
  }
  return absl::OkStatus();
}


void CudaBackend::State::EnsureScratch(int64_t n, int64_t m, int64_t partial) {
  if (n > scratch_tokens) {
    const size_t tokens = static_cast<size_t>(n);
    x.Reserve(tokens * config.dim * sizeof(float), "activations");
    xb.Reserve(tokens * config.dim * sizeof(Bf16), "activations");
    qkv.Reserve(tokens * (q_dim() + 2 * kv_dim()) * sizeof(float), "activations");
    q.Reserve(tokens * q_dim() * sizeof(Bf16), "activations");
    att.Reserve(tokens * q_dim() * sizeof(Bf16), "activations");
    delta.Reserve(tokens * config.dim * sizeof(float), "activations");
    gate_up.Reserve(tokens * 2 * config.ffn_dim * sizeof(float), "activations");
    h.Reserve(tokens * config.ffn_dim * sizeof(Bf16), "activations");
    scratch_tokens = n;
    ++scratch_generation;
  }
  if (m > scratch_rows) {
    const size_t rows = static_cast<size_t>(m);
    hidden.Reserve(rows * config.dim * sizeof(Bf16), "activations");
    hidden_f32.Reserve(rows * config.dim * sizeof(float), "activations");
    logits.Reserve(rows * config.vocab_size * sizeof(float), "logits");
    sampled_ids.Reserve(rows * sizeof(int32_t), "sampled ids");
    scratch_rows = m;
    ++scratch_generation;
  }
  if (partial > partial_floats) {
    partial_out.Reserve(static_cast<size_t>(partial) * config.head_dim * sizeof(float),
                        "split-KV workspace");
    partial_lse.Reserve(static_cast<size_t>(partial) * sizeof(float), "split-KV workspace");
    partial_floats = partial;
    ++scratch_generation;
  }
}

namespace {

// Assigns 16-byte aligned offsets in order of the calls.
class Placer {
 public:
  size_t Place(size_t bytes) {
    const size_t at = end_;
    end_ += AlignUp(bytes, 16);
    return at;
  }
  size_t end() const { return end_; }

 private:
  size_t end_ = 0;
};

void Put(char* base, size_t at, const void* src, size_t bytes) {
  if (bytes > 0) std::memcpy(base + at, src, bytes);
}

template <typename T>
size_t Bytes(const std::vector<T>& v) {
  return v.size() * sizeof(T);
}

}  // namespace

MetaLayout CudaBackend::State::PackDense(const ForwardBatch& batch) {
  const size_t n = batch.tokens.size(), m = batch.logit_rows.size();
  Placer p;
  MetaLayout l;
  l.tokens = p.Place(n * sizeof(int32_t));
  l.positions = p.Place(n * sizeof(int32_t));
  l.slots = p.Place(n * sizeof(int64_t));
  l.logit_rows = p.Place(m * sizeof(int32_t));
  l.kv_indptr = p.Place(Bytes(plan.kv_indptr));
  l.item_row = p.Place(Bytes(plan.item_row));
  l.item_seq = p.Place(Bytes(plan.item_seq));
  l.item_len = p.Place(Bytes(plan.item_len));
  l.tiles = p.Place(Bytes(plan.tiles));
  l.sampling = p.Place(Bytes(sampling));
  l.kv_indices = p.Place(Bytes(plan.kv_indices));
  l.total = p.end();
  meta_host.Reserve(l.total);
  meta_dev.Reserve(l.total, "step metadata");
  char* h = meta_host.data();
  Put(h, l.tokens, batch.tokens.data(), n * sizeof(int32_t));
  Put(h, l.positions, batch.positions.data(), n * sizeof(int32_t));
  Put(h, l.slots, batch.slots.data(), n * sizeof(int64_t));
  Put(h, l.logit_rows, batch.logit_rows.data(), m * sizeof(int32_t));
  Put(h, l.kv_indptr, plan.kv_indptr.data(), Bytes(plan.kv_indptr));
  Put(h, l.item_row, plan.item_row.data(), Bytes(plan.item_row));
  Put(h, l.item_seq, plan.item_seq.data(), Bytes(plan.item_seq));
  Put(h, l.item_len, plan.item_len.data(), Bytes(plan.item_len));
  Put(h, l.tiles, plan.tiles.data(), Bytes(plan.tiles));
  Put(h, l.sampling, sampling.data(), Bytes(sampling));
  Put(h, l.kv_indices, plan.kv_indices.data(), Bytes(plan.kv_indices));
  return l;
}

// A graph step's inputs (PadGraphItems: padded to `bucket`) at the fixed offsets of
// graph_layout, in meta_host up to the used part of kv_indices (the last array).
void CudaBackend::State::PackGraph(const ForwardBatch& batch, int bucket) {
  PadGraphItems(batch, plan, bucket, graph_items);
  const GraphItems& g = graph_items;
  const MetaLayout& l = graph_layout;
  meta_host.Reserve(l.total);
  char* h = meta_host.data();
  Put(h, l.tokens, g.tokens.data(), Bytes(g.tokens));
  Put(h, l.positions, g.positions.data(), Bytes(g.positions));
  Put(h, l.slots, g.slots.data(), Bytes(g.slots));
  Put(h, l.logit_rows, g.logit_rows.data(), Bytes(g.logit_rows));
  Put(h, l.item_row, g.item_row.data(), Bytes(g.item_row));
  Put(h, l.item_seq, g.item_seq.data(), Bytes(g.item_seq));
  Put(h, l.item_len, g.item_len.data(), Bytes(g.item_len));
  Put(h, l.kv_indptr, g.kv_indptr.data(), Bytes(g.kv_indptr));
  // Padding rows sample greedily from rows nobody reads.
  auto* params = reinterpret_cast<cuda::SampleRowParams*>(h + l.sampling);
  for (int i = 0; i < bucket; ++i) {
    params[i] = i < static_cast<int>(sampling.size()) ? sampling[i]
                                                      : cuda::SampleRowParams{.temperature = 0.0f};
  }
  Put(h, l.kv_indices, plan.kv_indices.data(), Bytes(plan.kv_indices));
}

StepArgs CudaBackend::State::Pointers(const DeviceMemory& meta, const MetaLayout& l) const {
  StepArgs a;
  a.tokens = meta.as<int32_t>(l.tokens);
  a.positions = meta.as<int32_t>(l.positions);
  a.slots = meta.as<int64_t>(l.slots);
  a.logit_rows = meta.as<int32_t>(l.logit_rows);
  a.kv_indptr = meta.as<int32_t>(l.kv_indptr);
  a.kv_indices = meta.as<int32_t>(l.kv_indices);
  a.item_row = meta.as<int32_t>(l.item_row);
  a.item_seq = meta.as<int32_t>(l.item_seq);
  a.item_len = meta.as<int32_t>(l.item_len);
  a.tiles = meta.as<int32_t>(l.tiles);
  a.sampling = meta.as<cuda::SampleRowParams>(l.sampling);
  return a;
}

namespace {

// The layer plan's ops as kernel launches on the backend's stream. The plan's activations:
// residual = x (f32), normed = xb (bf16), q/k/v = qkv (f32 rows [q | k | v]; RoPE writes the
// rotated q to q, bf16), attn = att (bf16), delta = delta (f32), gate/up = gate_up (f32 rows
// [gate | up]), act = h (bf16), hidden = hidden (bf16, and hidden_f32 when asked for), logits.
class StepOps final : public LayerOps {
 public:
  StepOps(CudaBackend::State& s, const StepArgs& a) : s_(s), a_(a), c_(s.config) {}

  void Embed(const PlanStep&) override {
    cuda::Embed({.table = s_.token_embd, .tokens = a_.tokens, .out = s_.x.as<float>(),
                 .n_tokens = a_.n, .dim = c_.dim},
                s_.stream);
  }

  void AttentionNorm(const PlanStep& step) override {
    Norm(step, s_.layers[step.layer].attn_norm);
  }

  void QkvProjection(const PlanStep& step) override {
    s_.gemm->Run(s_.layers[step.layer].wqkv, s_.q_dim() + 2 * s_.kv_dim(), c_.dim,
                 s_.xb.as<Bf16>(), a_.n, s_.qkv.as<float>());
  }

  void RopeKvWrite(const PlanStep& step) override {
    const DeviceLayer& w = s_.layers[step.layer];
    cuda::RopeKvWrite({.qkv = s_.qkv.as<float>(), .bias = w.qkv_bias, .q_out = s_.q.as<Bf16>(),
                       .k_cache = w.k_cache, .v_cache = w.v_cache, .positions = a_.positions,
                       .slots = a_.slots, .inv_freq = s_.inv_freq, .n_tokens = a_.n,
                       .n_heads = c_.num_heads, .n_kv_heads = c_.num_kv_heads,
                       .head_dim = c_.head_dim, .rot_dim = c_.rope.rot_dim,
                       .neox = c_.rope.neox},
                      s_.stream);
  }

  // Decode attention for the single-token items, prefill attention for the tiles.
  void Attention(const PlanStep& step) override {
    const DeviceLayer& w = s_.layers[step.layer];
    const cuda::PagedKv paged{.k_cache = w.k_cache,
                              .v_cache = w.v_cache,
                              .kv_indptr = a_.kv_indptr,
                              .kv_indices = a_.kv_indices,
                              .block_size = s_.kv.block_size,
                              .n_kv_heads = c_.num_kv_heads,
                              .head_dim = c_.head_dim};
    const float scale = 1.0f / std::sqrt(static_cast<float>(c_.head_dim));
    cuda::DecodeAttention({.kv = paged, .q = s_.q.as<Bf16>(), .out = s_.att.as<Bf16>(),
                           .item_row = a_.item_row, .item_seq = a_.item_seq,
                           .item_len = a_.item_len, .n_items = a_.n_items,
                           .n_heads = c_.num_heads, .scale = scale,
                           .num_splits = a_.num_splits,
                           .partial_out = s_.partial_out.as<float>(),
                           .partial_lse = s_.partial_lse.as<float>()},
                          s_.stream);
    cuda::PrefillAttention({.kv = paged, .q = s_.q.as<Bf16>(), .out = s_.att.as<Bf16>(),
                            .tiles = a_.tiles, .n_tiles = a_.n_tiles, .n_heads = c_.num_heads,
                            .scale = scale},
                           s_.stream);
  }

  void OutputProjection(const PlanStep& step) override {
    s_.gemm->Run(s_.layers[step.layer].wo, c_.dim, s_.q_dim(), s_.att.as<Bf16>(), a_.n,
                 s_.delta.as<float>());
  }

  void FeedForwardNorm(const PlanStep& step) override {
    Norm(step, s_.layers[step.layer].ffn_norm);
  }

  void GateUpProjection(const PlanStep& step) override {
    s_.gemm->Run(s_.layers[step.layer].w_gate_up, 2 * c_.ffn_dim, c_.dim, s_.xb.as<Bf16>(), a_.n,
                 s_.gate_up.as<float>());
  }

  void SiluMul(const PlanStep&) override {
    cuda::SiluMul({.gate_up = s_.gate_up.as<float>(), .out = s_.h.as<Bf16>(), .n_rows = a_.n,
                   .width = c_.ffn_dim},
                  s_.stream);
  }

  void DownProjection(const PlanStep& step) override {
    s_.gemm->Run(s_.layers[step.layer].w_down, c_.dim, c_.ffn_dim, s_.h.as<Bf16>(), a_.n,
                 s_.delta.as<float>());
  }

  // Only the logit rows get the add and the norm.
  void OutputNorm(const PlanStep& step) override {
    cuda::AddRmsNorm({.x = s_.x.as<float>(),
                      .delta = step.add_delta ? s_.delta.as<float>() : nullptr,
                      .weight = s_.output_norm, .out = s_.hidden.as<Bf16>(),
                      .out_f32 = a_.hidden_f32 ? s_.hidden_f32.as<float>() : nullptr,
                      .rows = a_.logit_rows, .n_rows = a_.m, .dim = c_.dim, .eps = c_.rms_eps},
                     s_.stream);
  }

  void LmHead(const PlanStep&) override {
    s_.gemm->Run(s_.output, c_.vocab_size, c_.dim, s_.hidden.as<Bf16>(), a_.m,
                 s_.logits.as<float>());
  }

 private:
  void Norm(const PlanStep& step, const float* weight) {
    cuda::AddRmsNorm({.x = s_.x.as<float>(),
                      .delta = step.add_delta ? s_.delta.as<float>() : nullptr,
                      .weight = weight, .out = s_.xb.as<Bf16>(), .n_rows = a_.n,
                      .dim = c_.dim, .eps = c_.rms_eps},
                     s_.stream);
  }

  CudaBackend::State& s_;
  const StepArgs& a_;
  const ModelConfig& c_;
};

}  // namespace

// Enqueues the whole step on the stream (also what a graph captures): the layer plan, then
// sampling when asked for.
void CudaBackend::State::EnqueueStep(const StepArgs& a) {
  StepOps ops(*this, a);
  RunLayerPlan(layer_plan, /*has_logit_rows=*/a.m > 0, ops);
  if (a.m > 0 && a.sampling != nullptr) {
    cuda::Sample({.logits = logits.as<float>(), .params = a.sampling,
                  .ids = sampled_ids.as<int32_t>(), .n_rows = a.m, .vocab = config.vocab_size},
                 stream);
  }
}

bool CudaDeviceAvailable() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

absl::StatusOr<std::unique_ptr<CudaBackend>> CudaBackend::Create(const BackendOptions& options,
                                                                  const ModelConfig& config,
                                                                  const ModelWeights& weights) {
  int count = 0;
  if (const cudaError_t e = cudaGetDeviceCount(&count); e != cudaSuccess || count == 0) {
    return absl::UnavailableError(absl::StrCat(
        "no CUDA device answers (", e != cudaSuccess ? cudaGetErrorString(e) : "0 devices",
        "); use --device cpu"));
  }
  if (config.num_kv_heads <= 0 || config.num_heads % config.num_kv_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat("num_heads ", config.num_heads,
                                                   " is not a multiple of num_kv_heads ",
                                                   config.num_kv_heads));
  }
  const int group = config.num_heads / config.num_kv_heads;
  if (!cuda::DecodeAttentionSupports(config.head_dim, group)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the CUDA attention kernels cover head_dim 8/16/32/64/128 and GQA groups up to 8; this "
        "model has head_dim ", config.head_dim, " and group ", group));
  }
  if (config.dim % 8 != 0 || config.ffn_dim % 4 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the CUDA backend needs dim divisible by 8 and ffn_dim by 4 (", config.dim, ", ",
        config.ffn_dim, ")"));
  }
  if (options.kv.type != KvCacheType::kF16) {
    return absl::InvalidArgumentError(
        "the CUDA backend keeps its KV cache in bf16; use --kv-cache-type f16 (the same 2 bytes "
        "per element)");
  }
  auto state = std::make_unique<State>();
  State& s = *state;
  s.config = config;
  s.kv = options.kv;
  TROUPE_ASSIGN_OR_RETURN(s.layer_plan, BuildLayerPlan(config));
  s.prefill_kernel = cuda::PrefillAttentionSupports(config.head_dim, group);
  s.max_pages_per_seq = std::min(CeilDiv(config.context_length, options.kv.block_size),
                                 options.kv.num_blocks);
  s.max_seq_len = s.max_pages_per_seq * options.kv.block_size;
  if (const cudaError_t e = cudaSetDevice(0); e != cudaSuccess) return CudaError(e, "cudaSetDevice");
  if (const cudaError_t e = cudaDeviceGetAttribute(&s.num_sms, cudaDevAttrMultiProcessorCount, 0);
      e != cudaSuccess) {
    return CudaError(e, "reading the multiprocessor count");
  }
  s.decode_blocks_per_sm = cuda::DecodeAttentionBlocksPerSm(config.head_dim);
  if (s.decode_blocks_per_sm <= 0) {
    return absl::InternalError(absl::StrCat("decode attention at head_dim ", config.head_dim,
                                            " fits no block on a multiprocessor"));
  }
  if (const cudaError_t e = cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking);
      e != cudaSuccess) {
    return CudaError(e, "creating the stream");
  }
  TROUPE_ASSIGN_OR_RETURN(cuda::Gemm gemm, cuda::Gemm::Create(s.stream));
  s.gemm.emplace(std::move(gemm));
  TROUPE_RETURN_IF_ERROR(s.UploadWeights(weights));
  const size_t layer_kv = static_cast<size_t>(options.kv.num_blocks) * options.kv.block_size *
                          s.kv_dim();
  TROUPE_RETURN_IF_ERROR(
      s.kv_cache.Allocate(2 * layer_kv * config.num_layers * sizeof(Bf16), "the KV cache"));
  for (int l = 0; l < config.num_layers; ++l) {
    s.layers[l].k_cache = s.kv_cache.as<Bf16>((2 * l) * layer_kv * sizeof(Bf16));
    s.layers[l].v_cache = s.kv_cache.as<Bf16>((2 * l + 1) * layer_kv * sizeof(Bf16));
  }
  // Graph steps: scratch for the largest bucket and its split workspace, and one metadata
  // layout at fixed offsets (kv_indices last, sized for every sequence at the context limit).
  // A step's split count never exceeds its bucket's at the context limit (ChooseNumSplits
  // picks the fewest splits near the best, and a longer context only adds candidates).
  int64_t partial = 0;
  for (int b = 1; b <= kMaxGraphBatch; b = GraphBucket(b + 1)) {
    partial = std::max<int64_t>(partial, int64_t{b} * config.num_heads *
                                             s.NumSplits(b, s.max_seq_len));
  }
  s.EnsureScratch(kMaxGraphBatch, kMaxGraphBatch, partial);
  s.graph_partial = partial;
  Placer p;
  MetaLayout& l = s.graph_layout;
  l.tokens = p.Place(kMaxGraphBatch * sizeof(int32_t));
  l.positions = p.Place(kMaxGraphBatch * sizeof(int32_t));
  l.slots = p.Place(kMaxGraphBatch * sizeof(int64_t));
  l.logit_rows = p.Place(kMaxGraphBatch * sizeof(int32_t));
  l.kv_indptr = p.Place((kMaxGraphBatch + 1) * sizeof(int32_t));
  l.item_row = p.Place(kMaxGraphBatch * sizeof(int32_t));
  l.item_seq = p.Place(kMaxGraphBatch * sizeof(int32_t));
  l.item_len = p.Place(kMaxGraphBatch * sizeof(int32_t));
  l.tiles = p.Place(0);
  l.sampling = p.Place(kMaxGraphBatch * sizeof(cuda::SampleRowParams));
  l.kv_indices = p.Place(size_t{kMaxGraphBatch} * s.max_pages_per_seq * sizeof(int32_t));
  l.total = p.end();
  TROUPE_RETURN_IF_ERROR(s.graph_meta.Allocate(l.total, "graph metadata"));
  TROUPE_LOG_INFO(
      "cuda backend: %lld MiB of bf16 weights, %lld MiB of KV cache, %d SMs x %d decode blocks",
      static_cast<long long>(s.weight_bytes >> 20),
      static_cast<long long>(s.kv_cache.bytes() >> 20), s.num_sms, s.decode_blocks_per_sm);
  return std::unique_ptr<CudaBackend>(new CudaBackend(std::move(state)));
}

CudaBackend::CudaBackend(std::unique_ptr<State> state) : state_(std::move(state)) {}
CudaBackend::~CudaBackend() = default;

int64_t CudaBackend::owned_weight_bytes() const { return state_->weight_bytes; }

absl::Status CudaBackend::AllocateHostKv(int64_t num_slots) {
  State& s = *state_;
  TROUPE_CHECK(s.host_kv == nullptr);
  // CopyKvBlocks' 2D copies step over one layer's K (or V) array per row.
  const size_t array = static_cast<size_t>(s.kv.num_blocks) * s.kv.block_size * s.kv_dim() * sizeof(Bf16);
  int max_pitch = 0;
  if (const cudaError_t e = cudaDeviceGetAttribute(&max_pitch, cudaDevAttrMaxPitch, 0); e != cudaSuccess) {
    return CudaError(e, "reading the maximum copy pitch");
  }
  if (array > static_cast<size_t>(max_pitch)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the host KV tier copies a block with one 2D copy whose pitch is a layer's K array (",
        array >> 20, " MiB here), above the device's limit of ", max_pitch >> 20,
        " MiB; lower --kv-cache-mb or turn the tier off"));
  }
  const size_t bytes = static_cast<size_t>(num_slots) * KvBlockBytes(s.config, s.kv);
  if (const cudaError_t e = cudaHostAlloc(&s.host_kv, bytes, cudaHostAllocDefault); e != cudaSuccess) {
    s.host_kv = nullptr;
    return CudaError(e, absl::StrCat("allocating ", bytes >> 20, " MiB of pinned memory for the host KV tier"));
  }
  s.host_kv_slots = num_slots;
  if (const cudaError_t e = cudaStreamCreateWithFlags(&s.copy_stream, cudaStreamNonBlocking); e != cudaSuccess) {
    return CudaError(e, "creating the KV copy stream");
  }
  for (cudaEvent_t* event : {&s.compute_done, &s.copies_done}) {
    if (const cudaError_t e = cudaEventCreateWithFlags(event, cudaEventDisableTiming); e != cudaSuccess) {
      return CudaError(e, "creating the KV copy events");
    }
  }
  return absl::OkStatus();
}

// Every layer's K and V of block b are 2 * num_layers runs of block_size * kv_dim elements, one
// per layer-sized array of the cache (K of layer l is array 2l, V array 2l + 1), so one 2D copy
// moves a block: width the run, height 2 * num_layers, the device pitch an array's size, the
// host pitch the run (a slot is dense).
void CudaBackend::CopyKvBlocks(std::span<const KvBlockCopy> copies) {
  State& s = *state_;
  if (copies.empty()) return;
  TROUPE_CHECK(s.host_kv != nullptr);
  const size_t run = static_cast<size_t>(s.kv.block_size) * s.kv_dim() * sizeof(Bf16);
  const size_t array = static_cast<size_t>(s.kv.num_blocks) * run;
  const size_t rows = 2 * static_cast<size_t>(s.config.num_layers);
  // After the forward passes so far (their KV writes, their reads of blocks about to be reused).
  TROUPE_CUDA_CHECK(cudaEventRecord(s.compute_done, s.stream));
  TROUPE_CUDA_CHECK(cudaStreamWaitEvent(s.copy_stream, s.compute_done, 0));
  for (const KvBlockCopy& c : copies) {
    TROUPE_CHECK(c.device_block >= 0 && c.device_block < s.kv.num_blocks && c.host_slot >= 0 &&
                 c.host_slot < s.host_kv_slots);
    char* device = s.kv_cache.as<char>(static_cast<size_t>(c.device_block) * run);
    char* host = static_cast<char*>(s.host_kv) + static_cast<size_t>(c.host_slot) * rows * run;
    if (c.direction == KvBlockCopy::Direction::kToHost) {
      TROUPE_CUDA_CHECK(cudaMemcpy2DAsync(host, run, device, array, run, rows, cudaMemcpyDeviceToHost,
                                          s.copy_stream));
    } else {
      TROUPE_CUDA_CHECK(cudaMemcpy2DAsync(device, array, host, run, run, rows, cudaMemcpyHostToDevice,
                                          s.copy_stream));
    }
  }
  // The next forward pass may overwrite an offloaded block or read a restored one.
  TROUPE_CUDA_CHECK(cudaEventRecord(s.copies_done, s.copy_stream));
  TROUPE_CUDA_CHECK(cudaStreamWaitEvent(s.stream, s.copies_done, 0));
}

void CudaBackend::Forward(const ForwardBatch& batch, float* logits) {
  State& s = *state_;
  const ModelConfig& c = s.config;
  const int n = static_cast<int>(batch.tokens.size());
  if (n == 0) return;
  const int m = static_cast<int>(batch.logit_rows.size());
  TROUPE_CHECK(batch.sampling.empty() || (batch.sampling.size() == batch.logit_rows.size() &&
                                          batch.sampled_ids != nullptr));
  TROUPE_CHECK(logits != nullptr || !batch.sampling.empty() || m == 0);
  const int group = c.num_heads / c.num_kv_heads;
  BuildAttentionPlan(batch, s.kv.block_size,
                     s.prefill_kernel ? cuda::PrefillTileTokens(group) : 0, s.plan);
  s.sampling.clear();
  for (const RowSampling& r : batch.sampling) {
    s.sampling.push_back({.temperature = r.temperature, .top_k = r.top_k, .top_p = r.top_p,
                          .min_p = r.min_p, .seed = r.seed, .counter = r.counter});
  }
  const int n_items = s.plan.num_items();
  const int max_len = s.plan.max_item_len();

  if (IsGraphStep(batch)) {
    const int bucket = GraphBucket(n);
    s.PackGraph(batch, bucket);
    const MetaLayout& l = s.graph_layout;
    const size_t upload = l.kv_indices + Bytes(s.plan.kv_indices);
    TROUPE_CUDA_CHECK(cudaMemcpyAsync(s.graph_meta.as<char>(), s.meta_host.data(), upload,
                                           cudaMemcpyHostToDevice, s.stream));
    // Splits from this step's longest context (rounded up to a power of two): a graph per
    // (bucket, split count), captured on first use.
    const int num_splits = s.NumSplits(bucket, GraphSplitKeys(max_len, s.max_seq_len));
    TROUPE_CHECK(int64_t{bucket} * c.num_heads * num_splits <= s.graph_partial);
    State::Graph& g = s.graphs[State::GraphIndex(bucket, num_splits)];
    if (g.exec != nullptr && g.generation == s.scratch_generation) {
      TROUPE_CUDA_CHECK(cudaGraphLaunch(g.exec, s.stream));
    } else {
      // First step of this bucket and split count (or after scratch moved): run it eagerly with the graph's
      // own inputs, which also loads every kernel and cuBLAS's lazily, then capture the same
      // sequence (capture does not execute) for the next steps.
      if (g.exec != nullptr) cudaGraphExecDestroy(g.exec);
      g.exec = nullptr;
      StepArgs a = s.Pointers(s.graph_meta, l);
      a.n = a.m = a.n_items = bucket;
      a.num_splits = num_splits;
      s.EnqueueStep(a);
      TROUPE_CUDA_CHECK(cudaStreamSynchronize(s.stream));
      cudaGraph_t graph = nullptr;
      TROUPE_CUDA_CHECK(cudaStreamBeginCapture(s.stream, cudaStreamCaptureModeThreadLocal));
      s.EnqueueStep(a);
      TROUPE_CUDA_CHECK(cudaStreamEndCapture(s.stream, &graph));
      TROUPE_CUDA_CHECK(cudaGraphInstantiate(&g.exec, graph, 0));
      cudaGraphDestroy(graph);
      g.generation = s.scratch_generation;
    }
  } else {
    s.EnsureScratch(n, m, int64_t{n_items} * c.num_heads * s.NumSplits(n_items, max_len));
    const MetaLayout l = s.PackDense(batch);
    TROUPE_CUDA_CHECK(cudaMemcpyAsync(s.meta_dev.as<char>(), s.meta_host.data(), l.total,
                                           cudaMemcpyHostToDevice, s.stream));
    StepArgs a = s.Pointers(s.meta_dev, l);
    a.n = n;
    a.m = m;
    a.n_items = n_items;
    a.n_tiles = s.plan.num_tiles();
    a.num_splits = s.NumSplits(n_items, max_len);
    a.hidden_f32 = batch.hidden_out != nullptr;
    if (s.sampling.empty()) a.sampling = nullptr;
    s.EnqueueStep(a);
  }
  if (m > 0 && logits != nullptr) {
    TROUPE_CUDA_CHECK(cudaMemcpyAsync(logits, s.logits.as<float>(),
                                           static_cast<size_t>(m) * c.vocab_size * sizeof(float),
                                           cudaMemcpyDeviceToHost, s.stream));
  }
  if (!batch.sampling.empty()) {
    TROUPE_CUDA_CHECK(cudaMemcpyAsync(batch.sampled_ids, s.sampled_ids.as<int32_t>(),
                                           static_cast<size_t>(m) * sizeof(int32_t),
                                           cudaMemcpyDeviceToHost, s.stream));
  }
  if (batch.hidden_out != nullptr) {
    TROUPE_CUDA_CHECK(cudaMemcpyAsync(batch.hidden_out, s.hidden_f32.as<float>(),
                                           static_cast<size_t>(m) * c.dim * sizeof(float),
                                           cudaMemcpyDeviceToHost, s.stream));
  }
  // The pinned metadata is rewritten by the next step, and the outputs are read right after.
  TROUPE_CUDA_CHECK(cudaStreamSynchronize(s.stream));
}

}  // namespace troupe
