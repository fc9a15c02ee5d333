#!/usr/bin/env bash
# Makes models/SmolLM2-135M-Instruct.Q4_K_M.gguf (git-ignored) from the default model with
# llama.cpp's llama-quantize (scripts/peer/build-llama-bench.sh builds it). The source is
# already Q4_1, so this is a requantization (--allow-requantize): the file is for testing the
# K-quant path on a real model and for the speed comparison in docs/benchmarks.md, not for
# quality. SmolLM2's dim 576 is not a multiple of 256, so llama-quantize stores most matrices
# as Q5_0 (its fallback for Q4_K rows) and only ffn_down (rows of 1536) as Q4_K / Q6_K; the
# script prints the tensor types it wrote. Tests that need the file skip without it.
#
# Usage: scripts/peer/make-kquant-models.sh
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
quantize="$repo_root/third_party_cache/llama.cpp-0.3.36/bin/llama-quantize"
src="$repo_root/models/SmolLM2-135M-Instruct.Q4_1.gguf"
out="$repo_root/models/SmolLM2-135M-Instruct.Q4_K_M.gguf"

[[ -x "$quantize" ]] || { echo "make-kquant-models: no $quantize; run scripts/peer/build-llama-bench.sh" >&2; exit 1; }
[[ -f "$src" ]] || { echo "make-kquant-models: no $src; run scripts/fetch-model.sh" >&2; exit 1; }

if [[ ! -f "$out" ]]; then
  "$quantize" --allow-requantize "$src" "$out.tmp" Q4_K_M 2 >/dev/null 2>&1 ||
    { echo "make-kquant-models: llama-quantize failed" >&2; rm -f "$out.tmp"; exit 1; }
  mv "$out.tmp" "$out"
fi
echo "make-kquant-models: $out ($(stat -c %s "$out") bytes, sha256 $(sha256sum "$out" | cut -d' ' -f1))"
python3 - "$out" <<'PY'
import collections, sys
import gguf
r = gguf.GGUFReader(sys.argv[1])
c = collections.Counter(t.tensor_type.name for t in r.tensors if len(t.shape) == 2)
print("  matrices: " + ", ".join(f"{n} x{k}" for n, k in sorted(c.items())))
PY
