#include "engine/backend/cpu_backend.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <initializer_list>

#include "common/check.h"
#include "engine/formats/gguf.h"
#include "kernels/cpu/packed_layout.h"
#include "kernels/cpu/paged_attention.h"
#include "kernels/paged_attention.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/silu_mul.h"

namespace troupe {

int64_t KvBlockBytes(const ModelConfig& config, const KvCacheSpec& spec) {
  const int64_t kv_dim = static_cast<int64_t>(config.num_kv_heads) * config.head_dim;
  return 2 * static_cast<int64_t>(config.num_layers) * spec.block_size * kv_dim *
         static_cast<int64_t>(KvElementBytes(spec.type));
}

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

CpuBackend::CpuBackend(const ModelConfig& config, int num_threads, KvCacheSpec kv)
    : config_(config), kv_(kv), pool_(num_threads) {}

absl::StatusOr<std::unique_ptr<CpuBackend>> CpuBackend::Create(const BackendOptions& options,
                                                                const ModelConfig& config,
                                                                const ModelWeights& weights,
                                                                const GgufFile* file) {
  std::unique_ptr<CpuBackend> b(new CpuBackend(config, options.num_threads, options.kv));
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
    layer.ffn_norm = w.ffn_norm;
    // Not value-initialised: pages are touched only when a block is first written.
    layer.k_cache.reset(new std::byte[kv_bytes]);
    layer.v_cache.reset(new std::byte[kv_bytes]);
  }
  b->token_embd_ = weights.token_embd;
  // A tied output matrix is packed from the embedding's view; the lookup keeps reading the
  // mapping, whose pages fault back in for just the rows it touches.
  b->output_ = pack(weights.output);
  b->output_norm_ = weights.output_norm;
  b->rope_inv_freq_ = RopeInvFreq(config.rope);
  return b;
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

void CpuBackend::Embed(const ForwardBatch& batch) {
  const auto traits = TraitsOf(static_cast<uint32_t>(token_embd_.type));
  const size_t row_bytes = RowBytes(*traits, token_embd_.cols);
  const auto* base = static_cast<const uint8_t*>(token_embd_.data);
  for (size_t t = 0; t < batch.tokens.size(); ++t) {
    const int32_t id = batch.tokens[t];
    TROUPE_DCHECK(id >= 0 && id < token_embd_.rows);
    DequantizeRow(token_embd_.type, base + row_bytes * static_cast<size_t>(id),
                  x_.data() + t * config_.dim, config_.dim);
  }
}

// ---- attention: norm, QKV, RoPE, KV write, paged attention, output projection ----
void CpuBackend::AttentionBlock(Layer& layer, const ForwardBatch& batch, int64_t n) {
  const int hd = config_.head_dim;
  const int kv_dim = config_.num_kv_heads * hd;
  const int q_dim = config_.num_heads * hd;
  if (layer.wqkv.rows() > 0) {
    // One matmul for Q, K and V, then each token's row is split into the three arrays.
    const int64_t width = q_dim + 2 * kv_dim;
    cpu::Matmul(layer.wqkv, xb_.data(), n, fused_.data(), pool_);
    for (int64_t t = 0; t < n; ++t) {
      const float* row = fused_.data() + t * width;
      std::copy_n(row, q_dim, q_.data() + t * q_dim);
      std::copy_n(row + q_dim, kv_dim, k_.data() + t * kv_dim);
      std::copy_n(row + q_dim + kv_dim, kv_dim, v_.data() + t * kv_dim);
    }
  } else {
    cpu::Matmul(layer.wq, xb_.data(), n, q_.data(), pool_);
    cpu::Matmul(layer.wk, xb_.data(), n, k_.data(), pool_);
    cpu::Matmul(layer.wv, xb_.data(), n, v_.data(), pool_);
  }
  RopeArgs rope{.x = q_.data(), .positions = batch.positions.data(),
                .inv_freq = rope_inv_freq_.data(), .n_tokens = n, .n_heads = config_.num_heads,
                .head_dim = hd, .rot_dim = config_.rope.rot_dim, .neox = config_.rope.neox};
  ref::Rope(rope);
  rope.x = k_.data();
  rope.n_heads = config_.num_kv_heads;
  ref::Rope(rope);
  ref::KvWrite({.k = k_.data(), .v = v_.data(), .k_cache = layer.k_cache.get(),
                .v_cache = layer.v_cache.get(), .cache_type = kv_.type,
                .slots = batch.slots.data(), .n_tokens = n, .kv_dim = kv_dim});
  const PagedAttentionArgs attn{.q = q_.data(),
                                .k_cache = layer.k_cache.get(),
                                .v_cache = layer.v_cache.get(),
                                .cache_type = kv_.type,
                                .out = att_.data(),
                                .token_seq = batch.token_seq.data(),
                                .token_pos = batch.positions.data(),
                                .block_tables = batch.block_tables.data(),
                                .n_tokens = n,
                                .max_blocks_per_seq = batch.max_blocks_per_seq,
                                .n_heads = config_.num_heads,
                                .n_kv_heads = config_.num_kv_heads,
                                .head_dim = hd,
                                .block_size = kv_.block_size,
                                .scale = 1.0f / std::sqrt(static_cast<float>(hd))};
  cpu::PagedAttention(attn, pool_);
  cpu::Matmul(layer.wo, att_.data(), n, xb_.data(), pool_);
  AddRmsNormRows(xb_.data(), layer.ffn_norm, xb_.data(), n);
}

// ---- feed-forward: norm, gate/up, SiLU x up, down projection ----
void CpuBackend::FeedForwardBlock(Layer& layer, int64_t n, const std::vector<float>* next_norm) {
  const int ffn = config_.ffn_dim;
  if (layer.w_gate_up.rows() > 0) {
    // Each token's fused row is [gate | up]; SwiGLU writes the token's row of gate_.
    cpu::Matmul(layer.w_gate_up, xb_.data(), n, fused_.data(), pool_);
    for (int64_t t = 0; t < n; ++t) {
      const float* row = fused_.data() + t * 2 * ffn;
      ref::SiluMul({.gate = row, .up = row + ffn, .out = gate_.data() + t * ffn, .n = ffn});
    }
  } else {
    cpu::Matmul(layer.w_gate, xb_.data(), n, gate_.data(), pool_);
    cpu::Matmul(layer.w_up, xb_.data(), n, up_.data(), pool_);
    ref::SiluMul({.gate = gate_.data(), .up = up_.data(), .out = gate_.data(), .n = n * ffn});
  }
  cpu::Matmul(layer.w_down, gate_.data(), n, xb_.data(), pool_);
  if (next_norm != nullptr) {
    AddRmsNormRows(xb_.data(), *next_norm, xb_.data(), n);
  } else {
    const int64_t total = n * config_.dim;
    for (int64_t i = 0; i < total; ++i) x_[i] += xb_[i];
  }
}

void CpuBackend::Forward(const ForwardBatch& batch, float* logits) {
  const int64_t n = static_cast<int64_t>(batch.tokens.size());
  if (n == 0) return;
  EnsureScratch(n);
  Embed(batch);
  // The residual stream x_ gets each block's output added and normalised in one pass
  // (ref::AddRmsNorm); xb_ carries the normalised rows into the next block.
  AddRmsNormRows(nullptr, layers_[0].attn_norm, xb_.data(), n);
  for (size_t l = 0; l < layers_.size(); ++l) {
    AttentionBlock(layers_[l], batch, n);
    FeedForwardBlock(layers_[l], n, l + 1 < layers_.size() ? &layers_[l + 1].attn_norm : nullptr);
  }
  // Only the rows that sample need the final norm and the (large) output projection.
  const int64_t m = static_cast<int64_t>(batch.logit_rows.size());
  if (m == 0) return;
  const int dim = config_.dim;
  for (int64_t i = 0; i < m; ++i) {
    const int32_t row = batch.logit_rows[i];
    TROUPE_DCHECK(row >= 0 && row < n);
    std::copy_n(x_.data() + static_cast<int64_t>(row) * dim, dim, q_.data() + i * dim);
  }
  // q_ holds n * q_dim >= m * dim floats; xb_ receives the normalised rows.
  RmsNormRows(q_.data(), output_norm_, xb_.data(), m);
  if (batch.hidden_out != nullptr) std::copy_n(xb_.data(), m * dim, batch.hidden_out);
  cpu::Matmul(output_, xb_.data(), m, logits, pool_);
}

}  // namespace troupe
