// Dummy load format: the known shapes, the parallel seeded fill of the bf16 weights, and the
// byte-level tokenizer. Runs on the loading thread (plus the fill's own short-lived threads).
#include "engine/model/dummy_model.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/tokenizer/unicode.h"
#include "kernels/ggml_types.h"

namespace troupe {
namespace {

// ---- shapes ----

// The fields that differ between shapes; the rest follow from them.
struct Shape {
  std::string_view name;
  int vocab_size, dim, num_layers, num_heads, num_kv_heads, head_dim, ffn_dim, context_length;
  float rope_theta, rms_eps;
  bool tied_embeddings;
  bool llama3_rope;  // Llama 3.1 scaling: factor 8, low 1, high 4, original context 8192
};

// Values from each model's Hugging Face config.json (smollm2-135m is also checked against the
// GGUF of SmolLM2-135M-Instruct in dummy_model_test.cc).
constexpr Shape kShapes[] = {
    {.name = "llama-3-8b", .vocab_size = 128256, .dim = 4096, .num_layers = 32, .num_heads = 32,
     .num_kv_heads = 8, .head_dim = 128, .ffn_dim = 14336, .context_length = 8192,
     .rope_theta = 500000.0f, .rms_eps = 1e-5f, .tied_embeddings = false, .llama3_rope = false},
    {.name = "llama-3.1-8b", .vocab_size = 128256, .dim = 4096, .num_layers = 32, .num_heads = 32,
     .num_kv_heads = 8, .head_dim = 128, .ffn_dim = 14336, .context_length = 131072,
     .rope_theta = 500000.0f, .rms_eps = 1e-5f, .tied_embeddings = false, .llama3_rope = true},
    {.name = "smollm2-135m", .vocab_size = 49152, .dim = 576, .num_layers = 30, .num_heads = 9,
     .num_kv_heads = 3, .head_dim = 64, .ffn_dim = 1536, .context_length = 8192,
     .rope_theta = 100000.0f, .rms_eps = 1e-5f, .tied_embeddings = true, .llama3_rope = false},
};

// Elements of every tensor a GGUF of this shape holds (ModelConfigFromGguf's count).
int64_t CountParameters(const ModelConfig& c) {
  const int64_t dim = c.dim;
  const int64_t q_dim = static_cast<int64_t>(c.num_heads) * c.head_dim;
  const int64_t kv_dim = static_cast<int64_t>(c.num_kv_heads) * c.head_dim;
  const int64_t embd = static_cast<int64_t>(c.vocab_size) * dim;
  const int64_t per_layer = 2 * dim * q_dim + 2 * dim * kv_dim + 3 * dim * c.ffn_dim + 2 * dim;
  int64_t n = embd * (c.tied_embeddings ? 1 : 2) + dim + c.num_layers * per_layer;
  if (c.rope.scaling == RopeScaling::kLlama3) n += c.rope.rot_dim / 2;  // rope_freqs.weight
  return n;
}

// ---- fill ----

// splitmix64's output function (Steele, Lea, Flood 2014).
inline uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;

// Allocates `bytes`, 2 MiB aligned and (where the kernel allows) backed by transparent huge
// pages: filling is bound by first-touch page faults, and huge pages make 512x fewer of them.
// nullptr when out of memory. Free with std::free.
void* AllocateHuge(size_t bytes) {
  constexpr size_t kHugePage = size_t{2} << 20;
  const size_t rounded = (std::max<size_t>(bytes, 1) + kHugePage - 1) / kHugePage * kHugePage;
  void* p = std::aligned_alloc(kHugePage, rounded);
  if (p != nullptr) madvise(p, rounded, MADV_HUGEPAGE);  // advice only: failure is harmless
  return p;
}

struct Tensor {
  Bf16* data;        // [n]
  int64_t n;         // elements
  uint64_t stream;   // per-(seed, tensor index) hash key
};

// Element j (0..3) of a group: the j-th 16-bit quarter of the group's hash, mapped uniformly to
// [-kRange, kRange].
inline Bf16 GroupElement(uint64_t h, int j) {
  constexpr float kScale = DummyWeights::kRange / 32767.5f;
  return Fp32ToBf16((static_cast<float>((h >> (16 * j)) & 0xFFFF) - 32767.5f) * kScale);
}

// Fills elements [begin, end) of `t`. Group g (elements 4g .. 4g+3) hashes
// Mix64(stream + g * kGolden). The full-group loop has a fixed trip count inside, so the
// compiler vectorizes it (about 6x faster than a per-element loop with -march=native).
// REQUIRES: begin % 4 == 0.
void FillRange(const Tensor& t, int64_t begin, int64_t end) {
  const int64_t full_end = begin + (end - begin) / 4 * 4;
  for (int64_t e = begin; e < full_end; e += 4) {
    const uint64_t h = Mix64(t.stream + static_cast<uint64_t>(e / 4) * kGolden);
    for (int j = 0; j < 4; ++j) t.data[e + j] = GroupElement(h, j);
  }
  if (full_end < end) {
    const uint64_t h = Mix64(t.stream + static_cast<uint64_t>(full_end / 4) * kGolden);
    for (int64_t e = full_end; e < end; ++e) {
      t.data[e] = GroupElement(h, static_cast<int>(e - full_end));
    }
  }
}

// Fills all tensors on `num_threads` threads taking fixed chunks in turn; a chunk's bytes do not
// depend on which thread fills it.
void FillParallel(const std::vector<Tensor>& tensors, int num_threads) {
  constexpr int64_t kChunk = int64_t{1} << 20;  // elements (2 MiB), a multiple of 4
  struct Chunk {
    int tensor;
    int64_t begin, end;
  };
  std::vector<Chunk> chunks;
  for (int t = 0; t < static_cast<int>(tensors.size()); ++t) {
    for (int64_t b = 0; b < tensors[t].n; b += kChunk) {
      chunks.push_back({t, b, std::min(b + kChunk, tensors[t].n)});
    }
  }
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next.fetch_add(1); i < chunks.size(); i = next.fetch_add(1)) {
      FillRange(tensors[chunks[i].tensor], chunks[i].begin, chunks[i].end);
    }
  };
  if (num_threads <= 0) num_threads = static_cast<int>(std::thread::hardware_concurrency());
  num_threads =
      std::clamp<int>(num_threads, 1, static_cast<int>(std::max<size_t>(chunks.size(), 1)));
  std::vector<std::thread> threads;
  for (int i = 1; i < num_threads; ++i) threads.emplace_back(work);
  work();
  for (std::thread& t : threads) t.join();
}

}  // namespace

std::vector<std::string> DummyModelShapes() {
  std::vector<std::string> names;
  for (const Shape& s : kShapes) names.emplace_back(s.name);
  return names;
}

absl::StatusOr<ModelConfig> DummyModelConfig(std::string_view shape) {
  const Shape* s = nullptr;
  for (const Shape& candidate : kShapes) {
    if (candidate.name == shape) s = &candidate;
  }
  if (s == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown dummy model shape '", std::string(shape),
                     "' (known: ", absl::StrJoin(DummyModelShapes(), ", "), ")"));
  }
  ModelConfig c;
  c.architecture = "llama";
  c.name = absl::StrCat("dummy-", std::string(s->name));
  c.vocab_size = s->vocab_size;
  c.dim = s->dim;
  c.num_layers = s->num_layers;
  c.num_heads = s->num_heads;
  c.num_kv_heads = s->num_kv_heads;
  c.head_dim = s->head_dim;
  c.ffn_dim = s->ffn_dim;
  c.context_length = s->context_length;
  c.rms_eps = s->rms_eps;
  c.rope.head_dim = s->head_dim;
  c.rope.rot_dim = s->head_dim;
  c.rope.theta = s->rope_theta;
  c.rope.neox = false;  // as ModelConfigFromGguf: llama GGUF layout
  if (s->llama3_rope) {
    c.rope.scaling = RopeScaling::kLlama3;
    c.rope.factor = 8.0f;
    c.rope.low_freq_factor = 1.0f;
    c.rope.high_freq_factor = 4.0f;
    c.rope.original_context = 8192;
  }
  c.tied_embeddings = s->tied_embeddings;
  c.num_parameters = CountParameters(c);
  return c;
}

// ---- DummyWeights ----

void DummyWeights::FreeDeleter::operator()(std::byte* p) const { std::free(p); }

absl::StatusOr<std::unique_ptr<DummyWeights>> DummyWeights::Create(const ModelConfig& config,
                                                                   uint64_t seed,
                                                                   int num_threads) {
  std::unique_ptr<DummyWeights> w(new DummyWeights());
  ModelWeights& mw = w->weights_;
  // Pass 1: the matrices in tensor-index order (token_embd 0, output 1 -- reserved even when
  // tied, so tied and untied shapes number their layers alike -- then 7 per layer) and their
  // offsets in the one buffer.
  struct Planned {
    MatrixView* view;  // null: index reserved, no tensor
    int64_t rows, cols;
    size_t offset;     // bytes into buffer_, 64-byte aligned
  };
  std::vector<Planned> plan;
  size_t total = 0;
  auto add = [&](MatrixView* view, int64_t rows, int64_t cols) {
    plan.push_back({view, rows, cols, total});
    const size_t bytes = static_cast<size_t>(rows * cols) * sizeof(Bf16);
    total += (bytes + 63) / 64 * 64;
  };
  const int64_t dim = config.dim;
  const int64_t q_dim = static_cast<int64_t>(config.num_heads) * config.head_dim;
  const int64_t kv_dim = static_cast<int64_t>(config.num_kv_heads) * config.head_dim;
  const int64_t ffn = config.ffn_dim;
  add(&mw.token_embd, config.vocab_size, dim);
  add(config.tied_embeddings ? nullptr : &mw.output, config.tied_embeddings ? 0 : config.vocab_size,
      dim);
  mw.layers.resize(config.num_layers);
  for (LayerWeights& layer : mw.layers) {
    add(&layer.wq, q_dim, dim);
    add(&layer.wk, kv_dim, dim);
    add(&layer.wv, kv_dim, dim);
    add(&layer.wo, dim, q_dim);
    add(&layer.w_gate, ffn, dim);
    add(&layer.w_up, ffn, dim);
    add(&layer.w_down, dim, ffn);
    layer.attn_norm.assign(dim, 1.0f);
    layer.ffn_norm.assign(dim, 1.0f);
  }
  mw.output_norm.assign(dim, 1.0f);

  // Pass 2: one allocation, the views, the fill.
  w->buffer_.reset(static_cast<std::byte*>(AllocateHuge(total)));
  if (w->buffer_ == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot allocate ", total, " bytes of dummy weights for ", config.name));
  }
  w->num_bytes_ = static_cast<int64_t>(total);
  std::vector<Tensor> tensors;
  for (size_t i = 0; i < plan.size(); ++i) {
    const Planned& p = plan[i];
    auto* data = reinterpret_cast<Bf16*>(w->buffer_.get() + p.offset);
    if (p.view != nullptr) {
      *p.view = MatrixView{.type = GgmlType::kBF16, .data = data, .rows = p.rows, .cols = p.cols};
    }
    tensors.push_back({data, p.rows * p.cols, Mix64(seed * kGolden + Mix64(i + 1))});
  }
  if (config.tied_embeddings) mw.output = mw.token_embd;
  FillParallel(tensors, num_threads);
  return w;
}

// ---- tokenizer ----

absl::StatusOr<std::unique_ptr<Tokenizer>> DummyTokenizer(int vocab_size) {
  constexpr int kEndOfText = 256;
  if (vocab_size <= kEndOfText) {
    return absl::InvalidArgumentError(
        absl::StrCat("dummy tokenizer needs more than 256 tokens, got ", vocab_size));
  }
  VocabData data;
  data.model = "gpt2";
  data.pre = "default";
  data.tokens.reserve(vocab_size);
  data.token_types.assign(vocab_size, 1);  // normal
  for (int b = 0; b < 256; ++b) {
    std::string text;
    unicode::AppendUtf8(unicode::ByteToCodepoint(static_cast<uint8_t>(b)), &text);
    data.tokens.push_back(std::move(text));
  }
  data.tokens.push_back("<|endoftext|>");
  data.token_types[kEndOfText] = 3;  // control
  for (int id = kEndOfText + 1; id < vocab_size; ++id) {
    data.tokens.push_back(absl::StrCat("<dummy_", id, ">"));
  }
  // FromVocab insists on merges for gpt2. This one can never apply: BPE symbols start as single
  // byte characters and no other merge makes longer ones, so text always tokenizes to bytes.
  data.merges = {"<|endoftext|> <|endoftext|>"};
  data.bos_id = kEndOfText;
  data.eos_id = kEndOfText;
  data.add_bos = false;
  return Tokenizer::FromVocab(std::move(data));
}

}  // namespace troupe
