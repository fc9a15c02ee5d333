#!/usr/bin/env bash
# The issue #3 comparison in one go, back to back on one machine: troupe's multi-turn run
# (scripts/bench/multiturn.sh), llama-server replaying the same conversations
# (llama_server_replay.py, 16 slots, 32k context), then the long-prompt ITL check with the
# cost-based prefill cap and without it. Needs troupe built in build/ (or $TROUPE_BUILD) and
# the llama.cpp peer (scripts/peer/build-llama-bench.sh).
#
# Usage: scripts/bench/multiturn-vs-llama.sh OUT_DIR [troupe server flags...] [-- troupe-bench flags...]
set -uo pipefail
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo_root"
out=${1:?usage: multiturn-vs-llama.sh OUT_DIR [server flags...] [-- bench flags...]}
shift
llama_bin=$(ls -d third_party_cache/llama.cpp-*/bin 2>/dev/null | head -1)
[[ -x "$llama_bin/llama-server" ]] || { echo "build the peer first: scripts/peer/build-llama-bench.sh" >&2; exit 1; }
mkdir -p "$out"
date -u +%FT%TZ > "$out/start"
scripts/bench/multiturn.sh "$out/troupe" --data-dir= "$@" > "$out/troupe.log" 2>&1
"$llama_bin/llama-server" -m models/SmolLM2-135M-Instruct.Q4_1.gguf -t 2 -np 16 -c 32768 --port 8089 \
  > "$out/llama-server.log" 2>&1 &
llama_pid=$!
trap 'kill $llama_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -s localhost:8089/health | grep -q ok && break; sleep 0.3; done
python3 scripts/bench/llama_server_replay.py --url http://127.0.0.1:8089 \
  --dataset "$out/troupe/conversations.jsonl" --sessions 16 --max-tokens 48 --no-progress \
  --result-json "$out/llama.json" > "$out/llama.txt" 2>&1
kill $llama_pid; wait $llama_pid 2>/dev/null
scripts/bench/long-prompt-itl.sh "$out/long-prompt" --data-dir= > /dev/null 2>&1
scripts/bench/long-prompt-itl.sh "$out/long-prompt-tokens-only" --data-dir= \
  --max-prefill-cost-ratio-while-decoding=0 > /dev/null 2>&1
date -u +%FT%TZ > "$out/end"
echo "troupe:";       sed -n 3,5p "$out/troupe/summary.txt"
echo "llama-server:"; sed -n 1,3p "$out/llama.txt"
tail -1 "$out/long-prompt/summary.txt"; tail -1 "$out/long-prompt-tokens-only/summary.txt"
