#!/usr/bin/env python3
"""Writes tests/testdata/tiny/*.gguf: tiny random-weight Llama models, one per tensor type.

Every file holds the same float weights (numpy, seeded) stored in a different GGML type, so the
models differ only by quantization noise (and, for the -tied and llama3 files, by what the name
says). They exist to prove troupe reproduces llama.cpp for every tensor type and RoPE variant it
supports; scripts/golden/make_tiny_golden.py records llama.cpp's outputs for them.

Shape: dim 128, 2 layers, 4 query heads, 2 KV heads (GQA), head_dim 32, FFN 256, context 256,
vocab 512. Every row length is a multiple of 32, so every quantized type applies. The tokenizer
metadata (tokenizer.ggml.*, SentencePiece "llama", 512 pieces) is copied from stories260K.gguf.

Files (matrices, token_embd included, in the named type; 1-D norms and rope_freqs stay F32):
  tiny-{f32,f16,bf16,q8_0,q4_0,q4_1}.gguf  untied: output.weight present
  tiny-{f32,q8_0}-tied.gguf               tied: no output.weight, logits use token_embd
  tiny-llama3-f32.gguf                    Llama 3.1 RoPE: freq_base 500000 and the
                                          rope_freqs.weight divisors convert_hf_to_gguf.py writes

Requires: pip install gguf==0.19.0 numpy==2.4.6 (the versions these files were made with).
Usage: scripts/golden/make_tiny_models.py [--out-dir DIR] [--tokenizer-from GGUF]
"""

import argparse
import itertools
import math
import pathlib
import sys

import gguf
import numpy as np

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO_ROOT / "tests" / "testdata" / "tiny"
DEFAULT_TOKENIZER = REPO_ROOT.parent / "shared" / "models" / "stories260K.gguf"

SEED = 20261128
DIM, NUM_LAYERS, NUM_HEADS, NUM_KV_HEADS, HEAD_DIM = 128, 2, 4, 2, 32
FFN_DIM, CONTEXT, VOCAB = 256, 256, 512
RMS_EPS = 1e-5
BASE_THETA = 10000.0
LLAMA3_THETA = 500000.0
# Llama 3.1's rope_scaling block (config.json): rope_type llama3.
LLAMA3_SCALING = {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                  "original_max_position_embeddings": 8192}
MAX_FILE_BYTES = 2 << 20
# Standard deviation of each random matrix (see make_weights).
WEIGHT_STD = {"token_embd": 0.35, "attn_q": 0.12, "attn_k": 0.12, "attn_v": 0.09,
              "attn_output": 0.4, "ffn_gate": 0.09, "ffn_up": 0.09, "ffn_down": 0.5,
              "output": 0.35}

Q = gguf.GGMLQuantizationType
FILE_TYPES = {  # general.file_type values (llama_ftype)
    Q.F32: 0, Q.F16: 1, Q.Q4_0: 2, Q.Q4_1: 3, Q.Q8_0: 7, Q.BF16: 32,
}


class Variant:
    def __init__(self, name: str, qtype, tied: bool = False, llama3: bool = False):
        self.name, self.qtype, self.tied, self.llama3 = name, qtype, tied, llama3

    @property
    def file_name(self) -> str:
        return f"tiny-{self.name}.gguf"

    @property
    def theta(self) -> float:
        return LLAMA3_THETA if self.llama3 else BASE_THETA


VARIANTS = [
    Variant("f32", Q.F32),
    Variant("f16", Q.F16),
    Variant("bf16", Q.BF16),
    Variant("q8_0", Q.Q8_0),
    Variant("q4_0", Q.Q4_0),
    Variant("q4_1", Q.Q4_1),
    Variant("f32-tied", Q.F32, tied=True),
    Variant("q8_0-tied", Q.Q8_0, tied=True),
    Variant("llama3-f32", Q.F32, llama3=True),
]


# ---- weights ----

def make_weights() -> dict:
    """Float32 weights by GGUF tensor name; matrices are [rows = out features, cols = in].

    Scales keep every part of the model doing work. The attention and FFN outputs (attn_output,
    ffn_down) are large next to the embeddings (residual rms ~5 vs 0.35), so the final state is
    far from the input token's embedding; with smaller ones a tied model's logits favour the
    token just read and greedy decoding repeats it forever. Logits spread over a few nats, and
    attention scores vary by about one unit across positions.
    """
    rng = np.random.default_rng(SEED)
    q_dim, kv_dim = NUM_HEADS * HEAD_DIM, NUM_KV_HEADS * HEAD_DIM
    shapes = {"attn_q": (q_dim, DIM), "attn_k": (kv_dim, DIM), "attn_v": (kv_dim, DIM),
              "attn_output": (DIM, q_dim), "ffn_gate": (FFN_DIM, DIM), "ffn_up": (FFN_DIM, DIM),
              "ffn_down": (DIM, FFN_DIM)}

    def normal(shape, std):
        return (rng.standard_normal(shape) * std).astype(np.float32)

    def norm_vector():
        return (1.0 + rng.standard_normal(DIM) * 0.1).astype(np.float32)

    w = {"token_embd.weight": normal((VOCAB, DIM), WEIGHT_STD["token_embd"])}
    for i in range(NUM_LAYERS):
        p = f"blk.{i}."
        w[p + "attn_norm.weight"] = norm_vector()
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            w[p + name + ".weight"] = normal(shapes[name], WEIGHT_STD[name])
        w[p + "ffn_norm.weight"] = norm_vector()
        for name in ("ffn_gate", "ffn_up", "ffn_down"):
            w[p + name + ".weight"] = normal(shapes[name], WEIGHT_STD[name])
    w["output_norm.weight"] = norm_vector()
    w["output.weight"] = normal((VOCAB, DIM), WEIGHT_STD["output"])
    return w


def llama3_rope_factors() -> np.ndarray:
    """rope_freqs.weight [head_dim/2]: the divisor of each inverse frequency.

    The rule convert_hf_to_gguf.py (LlamaModel.generate_extra_tensors) applies for
    rope_type "llama3", in float32 like its torch code: high frequencies keep 1, low frequencies
    get `factor`, the band between is interpolated by wavelength.
    """
    s = LLAMA3_SCALING
    dim = HEAD_DIM
    freqs = (1.0 / (np.float32(LLAMA3_THETA) **
                    (np.arange(0, dim, 2, dtype=np.float32) / np.float32(dim)))).astype(np.float32)
    old_context = s["original_max_position_embeddings"]
    low_wavelen = old_context / s["low_freq_factor"]
    high_wavelen = old_context / s["high_freq_factor"]
    factors = []
    for freq in freqs:
        wavelen = np.float32(2 * math.pi) / freq
        if wavelen < high_wavelen:
            factors.append(1.0)
        elif wavelen > low_wavelen:
            factors.append(s["factor"])
        else:
            smooth = (old_context / wavelen - s["low_freq_factor"]) / (
                s["high_freq_factor"] - s["low_freq_factor"])
            factors.append(1.0 / ((1.0 - smooth) / s["factor"] + smooth))
    return np.array(factors, dtype=np.float32)


def stored(data: np.ndarray, qtype) -> np.ndarray:
    """`data` encoded as `qtype` (uint8 block bytes for quantized types)."""
    if qtype == Q.F32:
        return data.astype(np.float32)
    return gguf.quants.quantize(data.astype(np.float32), qtype)


def dequantized(data: np.ndarray, qtype) -> np.ndarray:
    """What a reader of the file sees: `data` after a round trip through `qtype`."""
    if qtype == Q.F32:
        return data.astype(np.float32)
    return gguf.quants.dequantize(stored(data, qtype), qtype).reshape(data.shape)


def variant_weights(base: dict, v: Variant) -> dict:
    """The float32 weights a reader of v's file sees (quantization applied, output tied)."""
    w = {}
    for name, data in base.items():
        if name == "output.weight" and v.tied:
            continue
        w[name] = data if data.ndim == 1 else dequantized(data, v.qtype)
    if v.tied:
        w["output.weight"] = w["token_embd.weight"]
    if v.llama3:
        w["rope_freqs.weight"] = llama3_rope_factors()
    return w


# ---- GGUF writing ----

def copy_tokenizer(reader: gguf.GGUFReader, writer: gguf.GGUFWriter) -> None:
    for key, field in reader.fields.items():
        if not key.startswith("tokenizer.ggml."):
            continue
        types = field.types
        if types[0] == gguf.GGUFValueType.ARRAY:
            writer.add_array(key, field.contents())  # element type inferred: str/float/int
            continue
        value = field.contents()
        if types[0] == gguf.GGUFValueType.STRING:
            writer.add_string(key, value)
        elif types[0] == gguf.GGUFValueType.UINT32:
            writer.add_uint32(key, value)
        elif types[0] == gguf.GGUFValueType.INT32:
            writer.add_int32(key, value)
        elif types[0] == gguf.GGUFValueType.FLOAT32:
            writer.add_float32(key, value)
        elif types[0] == gguf.GGUFValueType.BOOL:
            writer.add_bool(key, value)
        else:
            raise ValueError(f"unhandled tokenizer field {key} of type {types}")


def write_variant(path: pathlib.Path, base: dict, v: Variant, tokenizer: gguf.GGUFReader) -> None:
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(f"troupe-tiny-{v.name}")
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(DIM)
    writer.add_block_count(NUM_LAYERS)
    writer.add_feed_forward_length(FFN_DIM)
    writer.add_head_count(NUM_HEADS)
    writer.add_head_count_kv(NUM_KV_HEADS)
    writer.add_rope_dimension_count(HEAD_DIM)
    writer.add_rope_freq_base(v.theta)
    writer.add_layer_norm_rms_eps(RMS_EPS)
    writer.add_vocab_size(VOCAB)
    writer.add_file_type(FILE_TYPES[v.qtype])
    if v.qtype not in (Q.F32, Q.F16, Q.BF16):
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    copy_tokenizer(tokenizer, writer)

    if v.llama3:  # convert_hf_to_gguf.py yields its extra tensors first
        writer.add_tensor("rope_freqs.weight", llama3_rope_factors())
    for name, data in base.items():
        if name == "output.weight" and v.tied:
            continue
        if data.ndim == 1:
            writer.add_tensor(name, data.astype(np.float32))
        elif v.qtype in (Q.F32, Q.F16):
            writer.add_tensor(name, data.astype(np.float32 if v.qtype == Q.F32 else np.float16))
        else:
            writer.add_tensor(name, stored(data, v.qtype), raw_dtype=v.qtype)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def check_round_trip(path: pathlib.Path, want: dict) -> None:
    """Reads `path` back and checks every tensor decodes to the weights the reference uses."""
    reader = gguf.GGUFReader(str(path))
    names = {t.name for t in reader.tensors}
    expected = set(want) - ({"output.weight"} if "output.weight" not in names else set())
    if names != expected:
        raise RuntimeError(f"{path.name}: tensors {sorted(names ^ expected)} differ")
    for t in reader.tensors:
        got = gguf.quants.dequantize(t.data, t.tensor_type).reshape(want[t.name].shape)
        if not np.array_equal(got.astype(np.float32), want[t.name]):
            raise RuntimeError(f"{path.name}: {t.name} does not round-trip")


# ---- numpy reference forward pass (float64) ----

def rms_norm(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    return x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + RMS_EPS) * weight


def rope(x: np.ndarray, positions: np.ndarray, theta: float, factors) -> np.ndarray:
    """x [n, heads, head_dim]; rotates pairs (2i, 2i+1) (llama.cpp's normal mode)."""
    half = HEAD_DIM // 2
    inv_freq = theta ** (-2.0 * np.arange(half) / HEAD_DIM)
    if factors is not None:
        inv_freq = inv_freq / factors.astype(np.float64)
    angle = positions[:, None, None] * inv_freq[None, None, :]  # [n, 1, half]
    cos, sin = np.cos(angle), np.sin(angle)
    x0, x1 = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = x0 * cos - x1 * sin
    out[..., 1::2] = x0 * sin + x1 * cos
    return out


def forward(w: dict, tokens: list, theta: float, act=None) -> np.ndarray:
    """Logits [n_tokens, vocab] of a causal pass over `tokens` (positions 0..n-1), float64.

    `act`, if given, maps the input of every weight matmul first: e.g. rounding to float16 to
    mimic ggml, which converts activations to the weight's vec_dot_type (F16 for F16 weights).
    """
    w = {k: np.asarray(v, dtype=np.float64) for k, v in w.items()}  # no copy if already f64
    act = act or (lambda x: x)

    def linear(x, name):  # x [n, cols] times the [rows, cols] matrix `name`, transposed
        return act(x) @ w[name].T

    n = len(tokens)
    pos = np.arange(n, dtype=np.float64)
    factors = w.get("rope_freqs.weight")
    x = w["token_embd.weight"][tokens]
    group = NUM_HEADS // NUM_KV_HEADS
    mask = np.triu(np.full((n, n), -np.inf), k=1)
    for i in range(NUM_LAYERS):
        p = f"blk.{i}."
        h = rms_norm(x, w[p + "attn_norm.weight"])
        q = linear(h, p + "attn_q.weight").reshape(n, NUM_HEADS, HEAD_DIM)
        k = linear(h, p + "attn_k.weight").reshape(n, NUM_KV_HEADS, HEAD_DIM)
        v = linear(h, p + "attn_v.weight").reshape(n, NUM_KV_HEADS, HEAD_DIM)
        q, k = rope(q, pos, theta, factors), rope(k, pos, theta, factors)
        out = np.empty((n, NUM_HEADS, HEAD_DIM))
        for head in range(NUM_HEADS):
            kv = head // group  # llama.cpp broadcasts KV head j over query heads [j*g, (j+1)*g)
            scores = q[:, head] @ k[:, kv].T / math.sqrt(HEAD_DIM) + mask
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            out[:, head] = (scores / scores.sum(axis=-1, keepdims=True)) @ v[:, kv]
        x = x + linear(out.reshape(n, -1), p + "attn_output.weight")
        h = rms_norm(x, w[p + "ffn_norm.weight"])
        gate, up = linear(h, p + "ffn_gate.weight"), linear(h, p + "ffn_up.weight")
        x = x + linear(gate / (1.0 + np.exp(-gate)) * up, p + "ffn_down.weight")
    return linear(rms_norm(x, w["output_norm.weight"]), "output.weight")


def greedy(w: dict, prompt: list, theta: float, steps: int) -> tuple:
    """(greedy ids, logits of the first step) by recomputing the whole sequence each step."""
    w = {k: v.astype(np.float64) for k, v in w.items()}
    tokens, out, first = list(prompt), [], None
    for _ in range(steps):
        logits = forward(w, tokens, theta)[-1]
        if first is None:
            first = logits
        tok = int(np.argmax(logits))
        out.append(tok)
        tokens.append(tok)
    return out, first


def log_softmax(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64) - logits.max()
    return x - np.log(np.exp(x).sum())


# ---- prompts (shared with make_tiny_golden.py) ----

def prompts() -> list:
    """Three prompts of token ids, BOS (1) first: 5, 41 and 67 tokens, so prefill spans up to
    five 16-token KV blocks and decoding crosses block boundaries."""
    rng = np.random.default_rng(SEED + 1)
    once_upon_a_time = [1, 403, 407, 261, 378]  # stories260K-greedy.json's first prompt
    # Ordinary pieces only (259..511; 0..2 are control tokens, 3..258 bytes).
    return [
        once_upon_a_time,
        [1] + [int(t) for t in rng.integers(259, VOCAB, 40)],
        [1] + [int(t) for t in rng.integers(3, VOCAB, 66)],  # bytes too
    ]


def longest_run(ids: list) -> int:
    return max(len(list(g)) for _, g in itertools.groupby(ids))


def describe(ids: list) -> str:
    return f"{len(set(ids))} distinct ids, longest run {longest_run(ids)}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=pathlib.Path, default=DEFAULT_OUT)
    parser.add_argument("--tokenizer-from", type=pathlib.Path, default=DEFAULT_TOKENIZER)
    parser.add_argument("--steps", type=int, default=32, help="greedy steps for the sanity check")
    args = parser.parse_args()
    tokenizer = gguf.GGUFReader(str(args.tokenizer_from))
    args.out_dir.mkdir(parents=True, exist_ok=True)

    base = make_weights()
    reference = {}
    for v in VARIANTS:
        path = args.out_dir / v.file_name
        write_variant(path, base, v, tokenizer)
        w = variant_weights(base, v)
        check_round_trip(path, w)
        size = path.stat().st_size
        if size >= MAX_FILE_BYTES:
            raise RuntimeError(f"{path.name} is {size} bytes; keep tiny models under 2 MiB")
        runs = [greedy(w, p, v.theta, args.steps) for p in prompts()]
        reference[v.name] = runs
        lp = log_softmax(runs[0][1])
        print(f"{path.name}: {size} bytes; numpy greedy: "
              + "; ".join(describe(ids) for ids, _ in runs)
              + f"; step-1 top logprob {lp.max():.3f}")
        for ids, _ in runs:
            if len(set(ids)) < 8 or longest_run(ids) > 6:
                raise RuntimeError(f"{path.name}: degenerate greedy stream {ids}")

    # How far each variant's greedy streams follow its float parent (quantization noise).
    for v in VARIANTS:
        parent = "f32-tied" if v.tied else "f32"
        if v.llama3 or v.name == parent:
            continue
        same = sum(a == b for (x, _), (y, _) in zip(reference[v.name], reference[parent])
                   for a, b in zip(x, y))
        total = sum(len(x) for x, _ in reference[parent])
        print(f"{v.name} vs {parent}: {same}/{total} greedy positions equal (numpy reference)")

    # The llama3 file must be distinguishable from plain RoPE at the same base.
    v3 = next(v for v in VARIANTS if v.llama3)
    w3 = variant_weights(base, v3)
    plain = {k: x for k, x in w3.items() if k != "rope_freqs.weight"}
    long_prompt = prompts()[2]
    diff = np.abs(log_softmax(forward(w3, long_prompt, v3.theta)[-1]) -
                  log_softmax(forward(plain, long_prompt, v3.theta)[-1])).max()
    print(f"llama3 vs unscaled RoPE (base {v3.theta:g}), last prompt position: "
          f"max |logprob diff| {diff:.4f}; factors {llama3_rope_factors().round(4).tolist()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
