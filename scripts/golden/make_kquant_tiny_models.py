#!/usr/bin/env python3
"""Writes tests/testdata/tiny/tiny-k-*.gguf: tiny random Llama models quantized by llama-quantize.

The K-quants (Q4_K, Q5_K, Q6_K) have super-blocks of 256 elements, so these models have every
row length a multiple of 256 (make_tiny_models.py's dim 128 would make llama-quantize fall back
to Q5_0/Q5_1/Q8_0). One seeded float32 model is written to a scratch directory and quantized
by llama.cpp's own llama-quantize (built by scripts/peer/build-llama-bench.sh), so the files are
exactly what users download, mixes included:

  tiny-k-q4_k_m.gguf     Q4_K_M: Q4_K (q, k, attn_output, gate, up), Q6_K (attn_v, ffn_down,
                         the tied token_embd)
  tiny-k-q5_k_m.gguf     Q5_K_M: Q5_K and Q6_K likewise
  tiny-k-q6_k.gguf       Q6_K everywhere
  tiny-k-q3_k_s.gguf     Q3_K_S: Q3_K, with Q6_K for the tied token_embd
  tiny-k-q2_k.gguf       Q2_K: Q2_K x4, Q3_K x2, Q4_K x1, Q6_K x1 (llama-quantize's mix)
  tiny-k-q5_0-pure.gguf  --pure Q5_0 (blocks of 32: llama-quantize's fallback for Q4_K)
  tiny-k-q5_1-pure.gguf  --pure Q5_1 (the fallback for Q5_K)
The mixes already hold every K type on several tensors (the script checks it), so --pure Q4_K /
Q5_K files would add bytes, not coverage.

Shape: dim 256, 1 layer, 4 query heads of 64, 1 KV head, FFN 256, context 256, vocab 512
(stories260K's tokenizer, as make_tiny_models.py), tied embeddings: every matrix has rows of
256, and the seven files take about 2.4 MiB together. The script prints the tensor types of every
file (read back with the gguf package) and fails if a file lacks the types its name promises.

Requires: pip install gguf==0.19.0 numpy; scripts/peer/build-llama-bench.sh.
Usage: scripts/golden/make_kquant_tiny_models.py [--out-dir DIR] [--llama-quantize PATH]
"""

import argparse
import collections
import pathlib
import subprocess
import sys
import tempfile

import gguf
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import make_tiny_models as tiny  # noqa: E402  (tokenizer copy, prompts, weight scales)

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_QUANTIZE = REPO_ROOT / "third_party_cache" / "llama.cpp-0.3.36" / "bin" / "llama-quantize"

SEED = 20261207
DIM, NUM_LAYERS, NUM_HEADS, NUM_KV_HEADS, HEAD_DIM = 256, 1, 4, 1, 64
FFN_DIM, CONTEXT, VOCAB = 256, 256, 512
MAX_TOTAL_BYTES = 5 << 19  # 2.5 MiB: the repository's tiny models stay small


class Variant:
    """One committed file: llama-quantize's type argument, --pure or not, the types it must hold."""

    def __init__(self, name: str, ftype: str, pure: bool, must_hold: set):
        self.name, self.ftype, self.pure, self.must_hold = name, ftype, pure, must_hold
        self.tied, self.llama3, self.theta = True, False, tiny.BASE_THETA
        self.type_label = ftype + (" --pure" if pure else "")

    @property
    def file_name(self) -> str:
        return f"tiny-{self.name}.gguf"


VARIANTS = [
    Variant("k-q4_k_m", "Q4_K_M", False, {"Q4_K", "Q6_K"}),
    Variant("k-q5_k_m", "Q5_K_M", False, {"Q5_K", "Q6_K"}),
    Variant("k-q6_k", "Q6_K", False, {"Q6_K"}),
    Variant("k-q3_k_s", "Q3_K_S", False, {"Q3_K"}),
    Variant("k-q2_k", "Q2_K", False, {"Q2_K"}),
    Variant("k-q5_0-pure", "Q5_0", True, {"Q5_0"}),
    Variant("k-q5_1-pure", "Q5_1", True, {"Q5_1"}),
]


def make_weights() -> dict:
    """Float32 weights by tensor name, scaled as make_tiny_models.make_weights (see there)."""
    rng = np.random.default_rng(SEED)
    q_dim, kv_dim = NUM_HEADS * HEAD_DIM, NUM_KV_HEADS * HEAD_DIM
    shapes = {"attn_q": (q_dim, DIM), "attn_k": (kv_dim, DIM), "attn_v": (kv_dim, DIM),
              "attn_output": (DIM, q_dim), "ffn_gate": (FFN_DIM, DIM), "ffn_up": (FFN_DIM, DIM),
              "ffn_down": (DIM, FFN_DIM)}
    # Wider rows than make_tiny_models.py's: scale the input-side stds by sqrt(128 / 256) so
    # activations keep the same size.
    shrink = np.sqrt(128.0 / DIM)

    def normal(shape, std):
        return (rng.standard_normal(shape) * std).astype(np.float32)

    def norm_vector():
        return (1.0 + rng.standard_normal(DIM) * 0.1).astype(np.float32)

    w = {"token_embd.weight": normal((VOCAB, DIM), tiny.WEIGHT_STD["token_embd"])}
    for i in range(NUM_LAYERS):
        p = f"blk.{i}."
        w[p + "attn_norm.weight"] = norm_vector()
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            w[p + name + ".weight"] = normal(shapes[name], tiny.WEIGHT_STD[name] * shrink)
        w[p + "ffn_norm.weight"] = norm_vector()
        for name in ("ffn_gate", "ffn_up", "ffn_down"):
            w[p + name + ".weight"] = normal(shapes[name], tiny.WEIGHT_STD[name] * shrink)
    w["output_norm.weight"] = norm_vector()
    return w


def write_f32(path: pathlib.Path, w: dict, tokenizer: gguf.GGUFReader) -> None:
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("troupe-tiny-k")
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(DIM)
    writer.add_block_count(NUM_LAYERS)
    writer.add_feed_forward_length(FFN_DIM)
    writer.add_head_count(NUM_HEADS)
    writer.add_head_count_kv(NUM_KV_HEADS)
    writer.add_rope_dimension_count(HEAD_DIM)
    writer.add_rope_freq_base(tiny.BASE_THETA)
    writer.add_layer_norm_rms_eps(tiny.RMS_EPS)
    writer.add_vocab_size(VOCAB)
    writer.add_file_type(0)
    tiny.copy_tokenizer(tokenizer, writer)
    for name, data in w.items():
        writer.add_tensor(name, data.astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def tensor_types(path: pathlib.Path) -> collections.Counter:
    """Matrix tensor type names of `path` with their counts."""
    reader = gguf.GGUFReader(str(path))
    return collections.Counter(t.tensor_type.name for t in reader.tensors if len(t.shape) == 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=pathlib.Path, default=tiny.DEFAULT_OUT)
    parser.add_argument("--tokenizer-from", type=pathlib.Path, default=tiny.DEFAULT_TOKENIZER)
    parser.add_argument("--llama-quantize", type=pathlib.Path, default=DEFAULT_QUANTIZE)
    args = parser.parse_args()
    if not args.llama_quantize.is_file():
        print(f"no {args.llama_quantize}; run scripts/peer/build-llama-bench.sh", file=sys.stderr)
        return 1
    tokenizer = gguf.GGUFReader(str(args.tokenizer_from))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    total = 0
    with tempfile.TemporaryDirectory() as scratch:
        base = pathlib.Path(scratch) / "tiny-k-f32.gguf"
        write_f32(base, make_weights(), tokenizer)
        for v in VARIANTS:
            out = args.out_dir / v.file_name
            cmd = [str(args.llama_quantize)] + (["--pure"] if v.pure else []) + [
                str(base), str(out), v.ftype, "2"]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            types = tensor_types(out)
            size = out.stat().st_size
            total += size
            print(f"{out.name}: {size} bytes; matrices: "
                  + ", ".join(f"{n} x{c}" for n, c in sorted(types.items())))
            if not v.must_hold <= set(types):
                print(f"{out.name}: expected {sorted(v.must_hold)}", file=sys.stderr)
                return 1
    print(f"total {total} bytes")
    if total > MAX_TOTAL_BYTES:
        print(f"tiny K models take {total} bytes; keep them under {MAX_TOTAL_BYTES}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
