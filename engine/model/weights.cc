// LoadModelWeights: GGUF tensor infos -> MatrixView / float vectors, validating name, shape,
// type and alignment of every tensor the Llama forward pass reads.
#include "engine/model/weights.h"

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "engine/formats/gguf.h"
#include "kernels/ggml_types.h"

namespace troupe {
namespace {

absl::StatusOr<const GgufTensorInfo*> Require(const GgufFile& file, const std::string& name) {
  const GgufTensorInfo* t = file.FindTensor(name);
  if (t == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(file.path(), ": missing tensor '", name, "'"));
  }
  return t;
}

// `expected` is in ggml dims order (dims[0] contiguous). `what` explains it, e.g. "[dim]".
absl::Status CheckDims(const GgufFile& file, const GgufTensorInfo& t,
                       const std::vector<int64_t>& expected, absl::string_view what) {
  if (t.dims == expected) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(file.path(), ": tensor '", t.name, "' has dims [", absl::StrJoin(t.dims, ", "),
                   "], expected [", absl::StrJoin(expected, ", "), "] (", what, ", ggml order)"));
}

// The kernels read elements through typed pointers: F32 needs 4-byte, F16/BF16 and the
// quantized blocks (which start with an fp16 scale) 2-byte alignment. Real files align to 32.
absl::Status CheckAlignment(const GgufFile& file, const GgufTensorInfo& t) {
  const uintptr_t need = static_cast<GgmlType>(t.type) == GgmlType::kF32 ? 4 : 2;
  if (reinterpret_cast<uintptr_t>(t.data) % need == 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(file.path(), ": data of tensor '", t.name, "' is not ", need, "-byte aligned"));
}

// A [rows, cols] weight matrix: GGUF dims [cols, rows].
absl::StatusOr<MatrixView> LoadMatrix(const GgufFile& file, const std::string& name, int64_t rows,
                                      int64_t cols, absl::string_view what) {
  TROUPE_ASSIGN_OR_RETURN(const GgufTensorInfo* t, Require(file, name));
  TROUPE_RETURN_IF_ERROR(CheckDims(file, *t, {cols, rows}, what));
  switch (static_cast<GgmlType>(t->type)) {
    case GgmlType::kF32:
    case GgmlType::kF16:
    case GgmlType::kBF16:
    case GgmlType::kQ8_0:
    case GgmlType::kQ4_0:
    case GgmlType::kQ4_1:
    case GgmlType::kQ5_0:
    case GgmlType::kQ5_1:
    case GgmlType::kQ2_K:
    case GgmlType::kQ3_K:
    case GgmlType::kQ4_K:
    case GgmlType::kQ5_K:
    case GgmlType::kQ6_K:
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          file.path(), ": tensor '", name, "' has type id ", t->type,
          "; weight matrices must be F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, "
          "Q4_K, Q5_K or Q6_K"));
  }
  TROUPE_RETURN_IF_ERROR(CheckAlignment(file, *t));
  return MatrixView{
      .type = static_cast<GgmlType>(t->type), .data = t->data, .rows = rows, .cols = cols};
}

// A [dim] norm weight, converted to float.
absl::StatusOr<std::vector<float>> LoadNorm(const GgufFile& file, const std::string& name,
                                            int64_t dim) {
  TROUPE_ASSIGN_OR_RETURN(const GgufTensorInfo* t, Require(file, name));
  TROUPE_RETURN_IF_ERROR(CheckDims(file, *t, {dim}, "[dim]"));
  return TensorToFloats(file, *t);  // rejects types other than F32/F16/BF16
}

absl::StatusOr<LayerWeights> LoadLayer(const GgufFile& file, const ModelConfig& c, int layer) {
  const std::string p = absl::StrCat("blk.", layer, ".");
  const int64_t dim = c.dim;
  const int64_t q_dim = static_cast<int64_t>(c.num_heads) * c.head_dim;
  const int64_t kv_dim = static_cast<int64_t>(c.num_kv_heads) * c.head_dim;
  const int64_t ffn = c.ffn_dim;
  LayerWeights w;
  TROUPE_ASSIGN_OR_RETURN(w.wq, LoadMatrix(file, p + "attn_q.weight", q_dim, dim, "[dim, q_dim]"));
  TROUPE_ASSIGN_OR_RETURN(w.wk,
                          LoadMatrix(file, p + "attn_k.weight", kv_dim, dim, "[dim, kv_dim]"));
  TROUPE_ASSIGN_OR_RETURN(w.wv,
                          LoadMatrix(file, p + "attn_v.weight", kv_dim, dim, "[dim, kv_dim]"));
  TROUPE_ASSIGN_OR_RETURN(w.wo,
                          LoadMatrix(file, p + "attn_output.weight", dim, q_dim, "[q_dim, dim]"));
  TROUPE_ASSIGN_OR_RETURN(w.w_gate,
                          LoadMatrix(file, p + "ffn_gate.weight", ffn, dim, "[dim, ffn_dim]"));
  TROUPE_ASSIGN_OR_RETURN(w.w_up,
                          LoadMatrix(file, p + "ffn_up.weight", ffn, dim, "[dim, ffn_dim]"));
  TROUPE_ASSIGN_OR_RETURN(w.w_down,
                          LoadMatrix(file, p + "ffn_down.weight", dim, ffn, "[ffn_dim, dim]"));
  TROUPE_ASSIGN_OR_RETURN(w.attn_norm, LoadNorm(file, p + "attn_norm.weight", dim));
  TROUPE_ASSIGN_OR_RETURN(w.ffn_norm, LoadNorm(file, p + "ffn_norm.weight", dim));
  return w;
}

}  // namespace

absl::StatusOr<ModelWeights> LoadModelWeights(const GgufFile& file, const ModelConfig& config) {
  ModelWeights w;
  TROUPE_ASSIGN_OR_RETURN(w.token_embd, LoadMatrix(file, "token_embd.weight", config.vocab_size,
                                                   config.dim, "[dim, vocab_size]"));
  if (file.FindTensor("output.weight") == nullptr) {
    w.output = w.token_embd;  // tied embeddings
  } else {
    TROUPE_ASSIGN_OR_RETURN(w.output, LoadMatrix(file, "output.weight", config.vocab_size,
                                                 config.dim, "[dim, vocab_size]"));
  }
  TROUPE_ASSIGN_OR_RETURN(w.output_norm, LoadNorm(file, "output_norm.weight", config.dim));
  // No reserve(num_layers): a corrupt block_count must fail on the first missing tensor, not
  // in a giant allocation.
  for (int l = 0; l < config.num_layers; ++l) {
    TROUPE_ASSIGN_OR_RETURN(LayerWeights layer, LoadLayer(file, config, l));
    w.layers.push_back(std::move(layer));
  }
  return w;
}

}  // namespace troupe
