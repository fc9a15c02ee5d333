// BertEmbedder: loading, the encoder forward pass over a packed batch, pooling.
#include "engine/embedding/bert_embedder.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "common/status_macros.h"
#include "engine/embedding/bert_ops.h"
#include "engine/formats/safetensors.h"

namespace troupe {
namespace {

// EmbedBatch runs the encoder over at most this many tokens at once (bounds the scratch memory:
// ~ (6H + F) * 4 bytes per token, 12 MB for MiniLM), unless one text alone is longer.
constexpr int64_t kMaxBatchTokens = 2048;

// x[i] += y[i] for i < n.
void AddInPlace(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

}  // namespace

absl::StatusOr<std::unique_ptr<BertEmbedder>> BertEmbedder::Load(const std::string& model_dir) {
  std::unique_ptr<BertEmbedder> e(new BertEmbedder());
  TROUPE_ASSIGN_OR_RETURN(e->config_, LoadBertConfig(model_dir));
  const BertConfig& c = e->config_;
  TROUPE_ASSIGN_OR_RETURN(
      e->tokenizer_,
      WordpieceTokenizer::Load(model_dir + "/vocab.txt", {.max_tokens = c.max_seq_length}));
  if (e->tokenizer_->vocab_size() > c.vocab_size) {
    return absl::InvalidArgumentError(
        absl::StrCat(model_dir, "/vocab.txt: ", e->tokenizer_->vocab_size(),
                     " tokens, more than config.json's vocab_size ", c.vocab_size));
  }
  TROUPE_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file,
                          SafetensorsFile::Open(model_dir + "/model.safetensors"));
  TROUPE_ASSIGN_OR_RETURN(e->weights_, LoadBertWeights(*file, c));

  // Each matrix is repacked into panels and its float copy released (only one copy is kept).
  const auto linear = [](std::vector<float>& w, const std::vector<float>& b, int64_t rows,
                         int64_t cols) {
    Linear l{.w = cpu::PanelMatrix::Pack(w.data(), rows, cols), .b = b.data()};
    std::vector<float>().swap(w);
    return l;
  };
  const int64_t h = c.hidden_size;
  const int64_t f = c.intermediate_size;
  for (BertLayerWeights& lw : e->weights_.layers) {
    e->linears_.push_back({.qkv = linear(lw.qkv_w, lw.qkv_b, 3 * h, h),
                           .attn_out = linear(lw.attn_out_w, lw.attn_out_b, h, h),
                           .ffn_in = linear(lw.ffn_in_w, lw.ffn_in_b, f, h),
                           .ffn_out = linear(lw.ffn_out_w, lw.ffn_out_b, h, f)});
  }
  return e;
}

absl::StatusOr<std::vector<float>> BertEmbedder::Embed(std::string_view text) const {
  const std::vector<int32_t> ids = tokenizer_->Encode(text);
  return std::move(Forward(std::span<const std::vector<int32_t>>(&ids, 1))[0]);
}

absl::StatusOr<std::vector<std::vector<float>>> BertEmbedder::EmbedBatch(
    std::span<const std::string> texts) const {
  std::vector<std::vector<float>> out;
  out.reserve(texts.size());
  std::vector<std::vector<int32_t>> chunk;
  int64_t chunk_tokens = 0;
  const auto flush = [&] {
    if (chunk.empty()) return;
    for (std::vector<float>& e : Forward(chunk)) out.push_back(std::move(e));
    chunk.clear();
    chunk_tokens = 0;
  };
  for (const std::string& text : texts) {
    std::vector<int32_t> ids = tokenizer_->Encode(text);
    if (chunk_tokens + static_cast<int64_t>(ids.size()) > kMaxBatchTokens) flush();
    chunk_tokens += static_cast<int64_t>(ids.size());
    chunk.push_back(std::move(ids));
  }
  flush();
  return out;
}

absl::StatusOr<std::vector<float>> BertEmbedder::EmbedTokenIds(std::span<const int32_t> ids) const {
  if (ids.empty()) return absl::InvalidArgumentError("EmbedTokenIds: no tokens");
  if (static_cast<int64_t>(ids.size()) > config_.max_position_embeddings) {
    return absl::InvalidArgumentError(absl::StrCat("EmbedTokenIds: ", ids.size(),
                                                   " tokens, more than max_position_embeddings ",
                                                   config_.max_position_embeddings));
  }
  for (const int32_t id : ids) {
    if (id < 0 || id >= config_.vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("EmbedTokenIds: id ", id, " outside [0, ", config_.vocab_size, ")"));
    }
  }
  const std::vector<int32_t> seq(ids.begin(), ids.end());
  return std::move(Forward(std::span<const std::vector<int32_t>>(&seq, 1))[0]);
}

// Design: the sequences are packed back to back into one [total, H] activation matrix (no
// padding). Every linear layer, LayerNorm and GELU runs once over all rows; only attention and
// pooling look at sequence boundaries. BERT is post-LN:
//   x = LN(word[id] + pos[i] + type[0])
//   per layer: x = LN(x + Wo attn(Wqkv x)); x = LN(x + W2 gelu(W1 x))
//   embedding = normalize(mean over the sequence's rows of x)
std::vector<std::vector<float>> BertEmbedder::Forward(
    std::span<const std::vector<int32_t>> batch) const {
  const BertConfig& c = config_;
  const int64_t h = c.hidden_size;
  const int64_t f = c.intermediate_size;
  std::vector<int64_t> begin(batch.size() + 1, 0);  // row offsets of the sequences
  for (size_t s = 0; s < batch.size(); ++s) {
    TROUPE_CHECK(!batch[s].empty() &&
                 static_cast<int64_t>(batch[s].size()) <= c.max_position_embeddings);
    begin[s + 1] = begin[s] + static_cast<int64_t>(batch[s].size());
  }
  const int64_t total = begin.back();
  std::vector<float> x(static_cast<size_t>(total * h));
  std::vector<float> qkv(static_cast<size_t>(total * 3 * h));
  std::vector<float> ctx(static_cast<size_t>(total * h));
  std::vector<float> tmp(static_cast<size_t>(total * h));
  std::vector<float> ffn(static_cast<size_t>(total * f));

  // ---- 1) embeddings ----
  for (size_t s = 0; s < batch.size(); ++s) {
    for (size_t i = 0; i < batch[s].size(); ++i) {
      const int32_t id = batch[s][i];
      TROUPE_DCHECK(id >= 0 && id < c.vocab_size);
      float* row = x.data() + (begin[s] + static_cast<int64_t>(i)) * h;
      const float* word = weights_.word_embeddings.data() + static_cast<int64_t>(id) * h;
      const float* pos = weights_.position_embeddings.data() + static_cast<int64_t>(i) * h;
      for (int64_t d = 0; d < h; ++d) row[d] = word[d] + pos[d] + weights_.token_type0[d];
    }
  }
  bert::LayerNorm({.x = x.data(),
                   .gamma = weights_.emb_ln_g.data(),
                   .beta = weights_.emb_ln_b.data(),
                   .rows = total,
                   .dim = h,
                   .eps = c.layer_norm_eps});

  // ---- 2) encoder layers ----
  for (size_t l = 0; l < linears_.size(); ++l) {
    const LayerLinears& lin = linears_[l];
    const BertLayerWeights& lw = weights_.layers[l];
    lin.qkv.w.Multiply(x.data(), total, lin.qkv.b, qkv.data());
    for (size_t s = 0; s < batch.size(); ++s) {
      bert::SelfAttention({.qkv = qkv.data() + begin[s] * 3 * h,
                           .out = ctx.data() + begin[s] * h,
                           .n_tokens = begin[s + 1] - begin[s],
                           .num_heads = c.num_heads,
                           .head_dim = c.head_dim()});
    }
    lin.attn_out.w.Multiply(ctx.data(), total, lin.attn_out.b, tmp.data());
    AddInPlace(x.data(), tmp.data(), total * h);
    bert::LayerNorm({.x = x.data(),
                     .gamma = lw.attn_ln_g.data(),
                     .beta = lw.attn_ln_b.data(),
                     .rows = total,
                     .dim = h,
                     .eps = c.layer_norm_eps});
    lin.ffn_in.w.Multiply(x.data(), total, lin.ffn_in.b, ffn.data());
    bert::GeluInPlace(ffn.data(), total * f);
    lin.ffn_out.w.Multiply(ffn.data(), total, lin.ffn_out.b, tmp.data());
    AddInPlace(x.data(), tmp.data(), total * h);
    bert::LayerNorm({.x = x.data(),
                     .gamma = lw.ffn_ln_g.data(),
                     .beta = lw.ffn_ln_b.data(),
                     .rows = total,
                     .dim = h,
                     .eps = c.layer_norm_eps});
  }

  // ---- 3) mean pooling and L2 normalization ----
  std::vector<std::vector<float>> out(batch.size(), std::vector<float>(static_cast<size_t>(h)));
  for (size_t s = 0; s < batch.size(); ++s) {
    std::vector<float>& e = out[s];
    for (int64_t r = begin[s]; r < begin[s + 1]; ++r) AddInPlace(e.data(), x.data() + r * h, h);
    const float inv_n = 1.0f / static_cast<float>(begin[s + 1] - begin[s]);
    for (float& v : e) v *= inv_n;
    if (c.normalize) {
      double sum_sq = 0.0;
      for (const float v : e) sum_sq += static_cast<double>(v) * v;
      // torch.nn.functional.normalize: x / max(||x||, 1e-12).
      const float inv_norm = static_cast<float>(1.0 / std::max(std::sqrt(sum_sq), 1e-12));
      for (float& v : e) v *= inv_norm;
    }
  }
  return out;
}

}  // namespace troupe
