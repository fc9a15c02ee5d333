#include "engine/backend/cpu_backend.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <new>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "common/status_macros.h"
#include "engine/formats/gguf.h"
#include "kernels/cpu/packed_layout.h"
#include "kernels/cpu/paged_attention.h"
#include "kernels/paged_attention.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/silu_mul.h"

namespace troupe {

namespace {
// Matrices can be stacked when they share a repacked type and a row length.
bool CanStack(std::initializer_list<MatrixView> parts) {
  const MatrixView& first = *parts.begin();
  if (!cpu::layout::IsRepacked(first.type)) return false;
  for (const MatrixView& m : parts) {
    if (m.type != first.type || m.cols != first.cols) return false;
  }
  return true;
}
}  // namespace

CpuBackend::CpuBackend(const ModelConfig& config, int num_threads, KvCacheSpec kv,
                       LayerPlan plan)
    : config_(config), kv_(kv), plan_(std::move(plan)), pool_(num_threads) {}

absl::StatusOr<std::unique_ptr<CpuBackend>> CpuBackend::Create(const BackendOptions& options,
                                                                const ModelConfig& config,
                                                                const ModelWeights& weights,
                                                                const GgufFile* file) {
  TROUPE_ASSIGN_OR_RETURN(LayerPlan plan, BuildLayerPlan(config));
  std::unique_ptr<CpuBackend> b(
      new CpuBackend(config, options.num_threads, options.kv, std::move(plan)));
  // Packs one matrix; a repacked tensor's file pages are handed back to the kernel so the
  // weights are never resident twice.
  auto pack = [&](const MatrixView& view) {
    cpu::PackedMatrix m = cpu::PackedMatrix::Pack(view);
    if (!m.borrows_source()) {
      b->owned_weight_bytes_ += static_cast<int64_t>(m.owned_bytes());
      const auto traits = TraitsOf(static_cast<uint32_t>(view.type));
      if (file != nullptr) {
        file->ReleasePages(static_cast<const uint8_t*>(view.data),
                           RowBytes(*traits, view.cols) * static_cast<uint64_t>(view.rows));
      }
    }
    return m;
  };
  // Stacks matrices of one repacked type row-wise into a temporary buffer and packs that once;
  // the sources' file pages are released as for a single matrix.
  auto pack_stacked = [&](std::initializer_list<MatrixView> parts) {
    const MatrixView& first = *parts.begin();
    const auto traits = TraitsOf(static_cast<uint32_t>(first.type));
    const size_t row_bytes = RowBytes(*traits, first.cols);
    int64_t rows = 0;
    for (const MatrixView& m : parts) rows += m.rows;
    std::vector<uint8_t> stacked(row_bytes * static_cast<size_t>(rows));
    size_t offset = 0;
    for (const MatrixView& m : parts) {
      const size_t bytes = row_bytes * static_cast<size_t>(m.rows);
      std::memcpy(stacked.data() + offset, m.data, bytes);
      offset += bytes;
      if (file != nullptr) file->ReleasePages(static_cast<const uint8_t*>(m.data), bytes);
    }
    cpu::PackedMatrix packed = cpu::PackedMatrix::Pack(
        {.type = first.type, .data = stacked.data(), .rows = rows, .cols = first.cols});
    TROUPE_CHECK(!packed.borrows_source());  // `stacked` dies here
    b->owned_weight_bytes_ += static_cast<int64_t>(packed.owned_bytes());
    return packed;
  };
  const int64_t kv_bytes = static_cast<int64_t>(options.kv.num_blocks) * options.kv.block_size *
                          config.num_kv_heads * config.head_dim *
                          static_cast<int64_t>(KvElementBytes(options.kv.type));
  b->layers_.resize(config.num_layers);
  for (int l = 0; l < config.num_layers; ++l) {
    const LayerWeights& w = weights.layers[l];
    Layer& layer = b->layers_[l];
    if (CanStack({w.wq, w.wk, w.wv})) {
      layer.wqkv = pack_stacked({w.wq, w.wk, w.wv});
    } else {
      layer.wq = pack(w.wq);
      layer.wk = pack(w.wk);
      layer.wv = pack(w.wv);
    }
    if (CanStack({w.w_gate, w.w_up})) {
      layer.w_gate_up = pack_stacked({w.w_gate, w.w_up});
    } else {
      layer.w_gate = pack(w.w_gate);
      layer.w_up = pack(w.w_up);
    }
    layer.wo = pack(w.wo);
    layer.w_down = pack(w.w_down);
    layer.attn_norm = w.attn_norm;
    layer.bq = w.bq;
    layer.bk = w.bk;
    layer.bv = w.bv;
    layer.ffn_norm = w.ffn_norm;
    // Zero-filled: the whole cache is resident from startup, so the process's memory is what
    // it will be under load, and a machine short of memory fails at start, not mid-traffic.
    layer.k_cache.reset(new std::byte[kv_bytes]());
    layer.v_cache.reset(new std::byte[kv_bytes]());
  }
  b->token_embd_ = weights.token_embd;
  // A tied output matrix is packed from the embedding's view; the lookup keeps reading the
  // mapping, whose pages fault back in for just the rows it touches.
  b->output_ = pack(weights.output);
  b->output_norm_ = weights.output_norm;
  b->rope_inv_freq_ = RopeInvFreq(config.rope);
  return b;
}

absl::Status CpuBackend::AllocateHostKv(int64_t num_slots) {
  TROUPE_CHECK(host_kv_ == nullptr);
  const int64_t bytes = num_slots * KvBlockBytes(config_, kv_);
  host_kv_.reset(new (std::nothrow) std::byte[bytes]);
  if (host_kv_ == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat("cannot allocate ", bytes >> 20, " MiB for the host KV tier"));
  }
  host_kv_slots_ = num_slots;
  return absl::OkStatus();
}

void CpuBackend::CopyKvBlocks(std::span<const KvBlockCopy> copies) {
  const size_t part = static_cast<size_t>(kv_.block_size) * config_.num_kv_heads * config_.head_dim *
                      KvElementBytes(kv_.type);  // one block of one layer's K (or V)
  const size_t slot_bytes = static_cast<size_t>(KvBlockBytes(config_, kv_));
  for (const KvBlockCopy& c : copies) {
    TROUPE_CHECK(c.device_block >= 0 && c.device_block < kv_.num_blocks && c.host_slot >= 0 &&
                 c.host_slot < host_kv_slots_);
    std::byte* slot = host_kv_.get() + c.host_slot * slot_bytes;
    const size_t at = c.device_block * part;
    for (size_t l = 0; l < layers_.size(); ++l) {
      std::byte* k = layers_[l].k_cache.get() + at;
      std::byte* v = layers_[l].v_cache.get() + at;
      std::byte* hk = slot + (2 * l) * part;
      std::byte* hv = hk + part;
      if (c.direction == KvBlockCopy::Direction::kToHost) {
        std::memcpy(hk, k, part);
        std::memcpy(hv, v, part);
      } else {
        std::memcpy(k, hk, part);
        std::memcpy(v, hv, part);
      }
    }
  }
}

void CpuBackend::EnsureScratch(int64_t n) {
  if (n <= scratch_tokens_) return;
  const int64_t dim = config_.dim;
  const int64_t q_dim = static_cast<int64_t>(config_.num_heads) * config_.head_dim;
  const int64_t kv_dim = static_cast<int64_t>(config_.num_kv_heads) * config_.head_dim;
  x_.resize(n * dim);
  xb_.resize(n * std::max(dim, q_dim));
  q_.resize(n * std::max(dim, q_dim));  // also holds the rows gathered for the logits
  k_.resize(n * kv_dim);
  v_.resize(n * kv_dim);
  att_.resize(n * q_dim);
  gate_.resize(n * config_.ffn_dim);
  up_.resize(n * config_.ffn_dim);
  fused_.resize(n * std::max(q_dim + 2 * kv_dim, 2 * static_cast<int64_t>(config_.ffn_dim)));
  scratch_tokens_ = n;
}

void CpuBackend::RmsNormRows(const float* x, const std::vector<float>& weight, float* out,
                             int64_t n) {
  const int dim = config_.dim;
  pool_.ParallelFor(n, 4, [&](int64_t begin, int64_t end) {
    ref::RmsNorm({.x = x + begin * dim, .weight = weight.data(), .out = out + begin * dim,
                  .n_rows = end - begin, .dim = dim, .eps = config_.rms_eps});
  });
}

void CpuBackend::AddRmsNormRows(const float* delta, const std::vector<float>& weight, float* out,
                                int64_t n) {
  const int dim = config_.dim;
  pool_.ParallelFor(n, 4, [&](int64_t begin, int64_t end) {
    ref::AddRmsNorm({.x = x_.data() + begin * dim,
                     .delta = delta == nullptr ? nullptr : delta + begin * dim,
                     .weight = weight.data(), .out = out + begin * dim, .n_rows = end - begin,
                     .dim = dim, .eps = config_.rms_eps});
  });
}

// ---- the plan's ops ----

class CpuBackend::StepOps final : public LayerOps {
 public:
  StepOps(CpuBackend& b, const ForwardBatch& batch, float* logits)
      : b_(b), batch_(batch), n_(static_cast<int64_t>(batch.tokens.size())), logits_(logits) {}

  void Embed(const PlanStep&) override {
    const MatrixView& table = b_.token_embd_;
    const auto traits = TraitsOf(static_cast<uint32_t>(table.type));
    const size_t row_bytes = RowBytes(*traits, table.cols);
    const auto* base = static_cast<const uint8_t*>(table.data);
    const int dim = b_.config_.dim;
    for (int64_t t = 0; t < n_; ++t) {
      const int32_t id = batch_.tokens[t];
      TROUPE_DCHECK(id >= 0 && id < table.rows);
      DequantizeRow(table.type, base + row_bytes * static_cast<size_t>(id), b_.x_.data() + t * dim,
                    dim);
    }
  }

  void AttentionNorm(const PlanStep& step) override {
    b_.AddRmsNormRows(step.add_delta ? b_.xb_.data() : nullptr, b_.layers_[step.layer].attn_norm,
                      b_.xb_.data(), n_);
  }

  void QkvProjection(const PlanStep& step) override {
    Layer& layer = b_.layers_[step.layer];
    const int q_dim = b_.config_.num_heads * b_.config_.head_dim;
    const int kv_dim = b_.config_.num_kv_heads * b_.config_.head_dim;
    if (layer.wqkv.rows() > 0) {
      // One matmul for Q, K and V, then each token's row is split into the three arrays.
      const int64_t width = q_dim + 2 * kv_dim;
      cpu::Matmul(layer.wqkv, b_.xb_.data(), n_, b_.fused_.data(), b_.pool_);
      for (int64_t t = 0; t < n_; ++t) {
        const float* row = b_.fused_.data() + t * width;
        std::copy_n(row, q_dim, b_.q_.data() + t * q_dim);
        std::copy_n(row + q_dim, kv_dim, b_.k_.data() + t * kv_dim);
        std::copy_n(row + q_dim + kv_dim, kv_dim, b_.v_.data() + t * kv_dim);
      }
    } else {
      cpu::Matmul(layer.wq, b_.xb_.data(), n_, b_.q_.data(), b_.pool_);
      cpu::Matmul(layer.wk, b_.xb_.data(), n_, b_.k_.data(), b_.pool_);
      cpu::Matmul(layer.wv, b_.xb_.data(), n_, b_.v_.data(), b_.pool_);
    }
    if (!layer.bq.empty()) {
      AddBias(layer.bq, b_.q_.data());
      AddBias(layer.bk, b_.k_.data());
      AddBias(layer.bv, b_.v_.data());
    }
  }
  // rows[t] += bias for each of this call's n_ rows of bias.size() values.
  void AddBias(const std::vector<float>& bias, float* rows) const {
    const size_t width = bias.size();
    for (int64_t t = 0; t < n_; ++t) {
      float* row = rows + t * width;
      for (size_t i = 0; i < width; ++i) row[i] += bias[i];
    }
  }

  void RopeKvWrite(const PlanStep& step) override {
    const ModelConfig& c = b_.config_;
    Layer& layer = b_.layers_[step.layer];
    RopeArgs rope{.x = b_.q_.data(), .positions = batch_.positions.data(),
                  .inv_freq = b_.rope_inv_freq_.data(), .n_tokens = n_, .n_heads = c.num_heads,
                  .head_dim = c.head_dim, .rot_dim = c.rope.rot_dim, .neox = c.rope.neox};
    ref::Rope(rope);
    rope.x = b_.k_.data();
    rope.n_heads = c.num_kv_heads;
    ref::Rope(rope);
    ref::KvWrite({.k = b_.k_.data(), .v = b_.v_.data(), .k_cache = layer.k_cache.get(),
                  .v_cache = layer.v_cache.get(), .cache_type = b_.kv_.type,
                  .slots = batch_.slots.data(), .n_tokens = n_,
                  .kv_dim = c.num_kv_heads * c.head_dim});
  }

  void Attention(const PlanStep& step) override {
    const ModelConfig& c = b_.config_;
    Layer& layer = b_.layers_[step.layer];
    const PagedAttentionArgs attn{.q = b_.q_.data(),
                                  .k_cache = layer.k_cache.get(),
                                  .v_cache = layer.v_cache.get(),
                                  .cache_type = b_.kv_.type,
                                  .out = b_.att_.data(),
                                  .token_seq = batch_.token_seq.data(),
                                  .token_pos = batch_.positions.data(),
                                  .block_tables = batch_.block_tables.data(),
                                  .n_tokens = n_,
                                  .max_blocks_per_seq = batch_.max_blocks_per_seq,
                                  .n_heads = c.num_heads,
                                  .n_kv_heads = c.num_kv_heads,
                                  .head_dim = c.head_dim,
                                  .block_size = b_.kv_.block_size,
                                  .scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim))};
    cpu::PagedAttention(attn, b_.pool_);
  }

  void OutputProjection(const PlanStep& step) override {
    cpu::Matmul(b_.layers_[step.layer].wo, b_.att_.data(), n_, b_.xb_.data(), b_.pool_);
  }

  void FeedForwardNorm(const PlanStep& step) override {
    b_.AddRmsNormRows(step.add_delta ? b_.xb_.data() : nullptr, b_.layers_[step.layer].ffn_norm,
                      b_.xb_.data(), n_);
  }

  void GateUpProjection(const PlanStep& step) override {
    Layer& layer = b_.layers_[step.layer];
    if (layer.w_gate_up.rows() > 0) {
      cpu::Matmul(layer.w_gate_up, b_.xb_.data(), n_, b_.fused_.data(), b_.pool_);
    } else {
      cpu::Matmul(layer.w_gate, b_.xb_.data(), n_, b_.gate_.data(), b_.pool_);
      cpu::Matmul(layer.w_up, b_.xb_.data(), n_, b_.up_.data(), b_.pool_);
    }
  }

  void SiluMul(const PlanStep& step) override {
    const int ffn = b_.config_.ffn_dim;
    if (b_.layers_[step.layer].w_gate_up.rows() > 0) {
      // Each token's fused row is [gate | up]; SwiGLU writes the token's row of gate_.
      for (int64_t t = 0; t < n_; ++t) {
        const float* row = b_.fused_.data() + t * 2 * ffn;
        ref::SiluMul({.gate = row, .up = row + ffn, .out = b_.gate_.data() + t * ffn, .n = ffn});
      }
    } else {
      ref::SiluMul(
          {.gate = b_.gate_.data(), .up = b_.up_.data(), .out = b_.gate_.data(), .n = n_ * ffn});
    }
  }

  void DownProjection(const PlanStep& step) override {
    cpu::Matmul(b_.layers_[step.layer].w_down, b_.gate_.data(), n_, b_.xb_.data(), b_.pool_);
  }

  // Each logit row's residual plus delta is gathered into q_ (n * max(dim, q_dim) >= m * dim
  // floats) and normalised into xb_; the residual rows themselves are not needed any more.
  void OutputNorm(const PlanStep& step) override {
    const int dim = b_.config_.dim;
    const int64_t m = static_cast<int64_t>(batch_.logit_rows.size());
    for (int64_t i = 0; i < m; ++i) {
      const int32_t row = batch_.logit_rows[i];
      TROUPE_DCHECK(row >= 0 && row < n_);
      const float* x = b_.x_.data() + static_cast<int64_t>(row) * dim;
      const float* delta = b_.xb_.data() + static_cast<int64_t>(row) * dim;
      float* gathered = b_.q_.data() + i * dim;
      for (int j = 0; j < dim; ++j) gathered[j] = step.add_delta ? x[j] + delta[j] : x[j];
    }
    b_.RmsNormRows(b_.q_.data(), b_.output_norm_, b_.xb_.data(), m);
    if (batch_.hidden_out != nullptr) std::copy_n(b_.xb_.data(), m * dim, batch_.hidden_out);
  }

  void LmHead(const PlanStep&) override {
    const int64_t m = static_cast<int64_t>(batch_.logit_rows.size());
    cpu::Matmul(b_.output_, b_.xb_.data(), m, logits_, b_.pool_);
  }

 private:
  CpuBackend& b_;
  const ForwardBatch& batch_;
  const int64_t n_;
  float* const logits_;
};

void CpuBackend::Forward(const ForwardBatch& batch, float* logits) {
  const int64_t n = static_cast<int64_t>(batch.tokens.size());
  if (n == 0) return;
  EnsureScratch(n);
  StepOps ops(*this, batch, logits);
  RunLayerPlan(plan_, !batch.logit_rows.empty(), ops);
}

}  // namespace troupe
