#!/usr/bin/env bash
# troupe's engine benchmark and llama.cpp's llama-bench on the same GGUF and thread count,
# interleaved (troupe, llama.cpp, troupe, llama.cpp) so that machine drift hits both alike.
#
# Usage: scripts/bench/cpu-side-by-side.sh [MODEL] [THREADS] [ROUNDS]
# Environment: BATCHES (troupe's batch sizes, default 1,8,32), REPEAT (troupe's best-of, default
# 2), PEER_REPS (llama-bench -r, default 3): many short rounds (BATCHES=1 REPEAT=1 PEER_REPS=1)
# give a median that survives a busy machine better than a few long ones.
# Needs: build/bench/bench_engine (scripts/test.sh builds it) and the llama.cpp peer
# (scripts/peer/build-llama-bench.sh).
set -euo pipefail
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
model=${1:-$repo_root/models/SmolLM2-135M-Instruct.Q4_1.gguf}
threads=${2:-2}
rounds=${3:-2}
bench=${TROUPE_BENCH:-$repo_root/build/bench/bench_engine}
peer_dir=$(ls -d "$repo_root"/third_party_cache/llama.cpp-*/bin 2>/dev/null | head -n 1)
[[ -x "$bench" ]] || { echo "no $bench: build first (scripts/test.sh)" >&2; exit 1; }
[[ -n "$peer_dir" && -x "$peer_dir/llama-bench" ]] || { echo "no llama-bench: run scripts/peer/build-llama-bench.sh" >&2; exit 1; }

echo "date: $(date -u +%FT%TZ)  machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "model: $model  threads: $threads"
cat "$peer_dir/../VERSION"
for round in $(seq 1 "$rounds"); do
  echo "=== round $round: troupe bench_engine"
  "$bench" --model "$model" --threads "$threads" --prompt-len 512 --gen-len 64 \
    --batches "${BATCHES:-1,8,32}" --repeat "${REPEAT:-2}"
  echo "=== round $round: llama.cpp llama-bench (pp512 = prefill, tg64 = decode, batch 1)"
  "$peer_dir/llama-bench" -m "$model" -t "$threads" -p 512 -n 64 -r "${PEER_REPS:-3}" -o md
done
