#!/usr/bin/env bash
# The long-conversation workload of issue #17 (docs/benchmarks.md, "Long conversations"): a
# stored character, durable sessions with memory, many turns of long messages, on the default
# model. Starts troupe-server on a fresh data directory (TROUPE_SERVER picks another binary, for
# example a build of an older commit, to run the same workload beside it), runs troupe-bench
# with --stored-characters, and stops the server. troupe-bench prints, besides its usual table,
# the long-conversation figures: turns that folded, the share of the other turns that took at
# least 98% of the previous prompt and reply from the prefix cache, and their TTFT spread;
# result.json holds every turn (prompt, cached, TTFT, folded).
#
# Usage: scripts/bench/long-conversation.sh OUT_DIR [server flags...] [-- troupe-bench flags...]
# Default workload: 2 sessions of one character, 64 turns each, 200-word user messages,
# 32-token replies.
set -euo pipefail
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${TROUPE_BUILD:-$repo_root/build}
server=${TROUPE_SERVER:-$build/server/troupe-server}
out=${1:?usage: long-conversation.sh OUT_DIR [server flags...] [-- bench flags...]}
shift
server_flags=()
while [[ $# -gt 0 && $1 != "--" ]]; do server_flags+=("$1"); shift; done
[[ $# -gt 0 ]] && shift
bench_flags=("$@")
mkdir -p "$out"
data=$(mktemp -d)
port=${PORT:-50093}
metrics_port=$((port + 1))

"$server" --listen "127.0.0.1:$port" --metrics-port "$metrics_port" --http-listen "" --data-dir "$data" \
  "${server_flags[@]}" > "$out/server.log" 2>&1 &
server_pid=$!
trap 'kill $server_pid 2>/dev/null || true; wait $server_pid 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 150); do
  grep -q "serving" "$out/server.log" 2>/dev/null && break
  kill -0 $server_pid 2>/dev/null || { cat "$out/server.log" >&2; exit 1; }
  sleep 0.2
done

{
  echo "date: $(date -u +%FT%TZ)  machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "server: $server ${server_flags[*]:-}"
  echo "bench flags: ${bench_flags[*]:-(defaults)}"
} | tee "$out/summary.txt"
"$build/bench/troupe-bench" --target "127.0.0.1:$port" --stored-characters --sessions 2 --characters 1 \
  --turns 64 --character-words 300 --user-words 200 --max-tokens 32 \
  --save-dataset "$out/conversations.jsonl" --result-json "$out/result.json" --no-progress \
  "${bench_flags[@]}" | tee -a "$out/summary.txt"
curl -s "http://127.0.0.1:$metrics_port/metrics" > "$out/metrics.txt" || true
grep -E "^troupe:(session_folds_total|session_folded_turns_total|chat_turns_total|prefix_cache_(queries|hits)_total|summary_latency_seconds_(sum|count)) " \
  "$out/metrics.txt" | tee -a "$out/summary.txt" || true
