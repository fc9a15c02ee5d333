#!/usr/bin/env bash
# Inter-token latency of running streams when a long prompt arrives (chunked prefill).
# Starts troupe-server with the given flags, runs 8 streams of 300 tokens with troupe-bench,
# and 3 s in sends one ~4,000-token prompt (max_tokens 1) from a second troupe-bench; then the
# same 8 streams without the long prompt as the baseline. Prints the streams' ITL both ways.
#
# Usage: scripts/bench/long-prompt-itl.sh OUT_DIR [server flags...]
set -euo pipefail
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${TROUPE_BUILD:-$repo_root/build}
out=${1:?usage: long-prompt-itl.sh OUT_DIR [server flags...]}
shift
mkdir -p "$out"
port=${PORT:-50095}
bench="$build/bench/troupe-bench"

"$build/server/troupe-server" --listen "127.0.0.1:$port" --metrics-port -1 --http-listen "" "$@" > "$out/server.log" 2>&1 &
server_pid=$!
trap 'kill $server_pid 2>/dev/null || true; wait $server_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do grep -q "serving" "$out/server.log" 2>/dev/null && break; sleep 0.2; done

python3 - "$out/long.jsonl" <<'PY'
import json, random, sys
random.seed(3)
words = "the ship sea night storm captain harbour light wind old friend road forest king".split()
text = " ".join(random.choice(words) for _ in range(3700))
open(sys.argv[1], "w").write(json.dumps({"id": "long", "turns": [{"user": text, "max_tokens": 1}]}) + "\n")
PY

streams=(--target "127.0.0.1:$port" --sessions 8 --characters 8 --turns 1 --character-words 40
         --user-words 10 --max-tokens 300 --no-progress)
echo "server flags: ${*:-(defaults)}" | tee "$out/summary.txt"
"$bench" "${streams[@]}" --seed 5 --result-json "$out/baseline.json" > "$out/baseline.txt"
"$bench" "${streams[@]}" --seed 6 --result-json "$out/with-long.json" > "$out/with-long.txt" &
streams_pid=$!
sleep 3
"$bench" --target "127.0.0.1:$port" --dataset "$out/long.jsonl" --sessions 1 --no-progress \
  --result-json "$out/long.json" > "$out/long.txt"
wait $streams_pid
python3 - "$out" <<'PY' | tee -a "$out/summary.txt"
import json, sys
d = sys.argv[1]
b = json.load(open(d + "/baseline.json"))["overall"]
w = json.load(open(d + "/with-long.json"))["overall"]
l = json.load(open(d + "/long.json"))["overall"]
print(f"long prompt: {l['prompt_tokens']} tokens, TTFT {l['ttft_ms']['mean']:.0f} ms")
for name, g in (("baseline", b), ("with long prompt", w)):
    print(f"{name:17s} ITL p50 {g['itl_ms']['p50']:6.1f} ms  p99 {g['itl_ms']['p99']:7.1f} ms  max {g['itl_ms']['max']:7.1f} ms  TPOT {g['tpot_ms']['mean']:5.1f} ms")
print(f"p99 ITL ratio: {w['itl_ms']['p99'] / b['itl_ms']['p99']:.2f}x")
PY
