#!/usr/bin/env bash
# Starts troupe-server with the given extra flags, runs troupe-bench's multi-turn role-play
# workload against it, and stops the server. Results go to OUT_DIR: the text table
# (summary.txt), result.json, result.png, the replies (replies.jsonl, to compare runs), the
# workload (conversations.jsonl), the server's final /metrics and its log.
#
# Usage: scripts/bench/multiturn.sh OUT_DIR [server flags...] [-- troupe-bench flags...]
# Default workload: 16 sessions over 2 characters, 8 turns, ~430-token character prompts,
# 30-word user messages, 48-token replies (the llama.cpp peer's role-play shape, scaled to 16).
set -euo pipefail
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${TROUPE_BUILD:-$repo_root/build}
out=${1:?usage: multiturn.sh OUT_DIR [server flags...] [-- bench flags...]}
shift
server_flags=()
bench_flags=()
while [[ $# -gt 0 && $1 != "--" ]]; do server_flags+=("$1"); shift; done
[[ $# -gt 0 ]] && shift
bench_flags=("$@")
mkdir -p "$out"
port=${PORT:-50091}
metrics_port=$((port + 1))

"$build/server/troupe-server" --listen "127.0.0.1:$port" --metrics-port "$metrics_port" --http-listen "" "${server_flags[@]}" \
  > "$out/server.log" 2>&1 &
server_pid=$!
trap 'kill $server_pid 2>/dev/null || true; wait $server_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  grep -q "serving" "$out/server.log" 2>/dev/null && break
  sleep 0.2
done

echo "date: $(date -u +%FT%TZ)  machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" | tee "$out/summary.txt"
echo "server flags: ${server_flags[*]:-(defaults)}  bench flags: ${bench_flags[*]:-(defaults)}" | tee -a "$out/summary.txt"
"$build/bench/troupe-bench" --target "127.0.0.1:$port" --sessions 16 --characters 2 --turns 8 \
  --character-words 400 --user-words 30 --max-tokens 48 \
  --save-dataset "$out/conversations.jsonl" --result-json "$out/result.json" --plot "$out/result.png" \
  --save-replies "$out/replies.jsonl" --no-progress "${bench_flags[@]}" | tee -a "$out/summary.txt"
curl -s "http://127.0.0.1:$metrics_port/metrics" > "$out/metrics.txt" || true
grep -E "^troupe:(num_preemptions_total|prefix_cache_(queries|hits|host_hits)_total|engine_steps_total|kv_(offloaded|restored)_(blocks|bytes)_total|host_kv_blocks_(used|total)) " "$out/metrics.txt" \
  | tee -a "$out/summary.txt" || true
