#!/usr/bin/env bash
# Resident memory of the running daemon with the default model, against the budget the
# product promises: GGUF size + KV budget + 150 MB. Starts troupe-server on a free port, sends
# chat and generate requests through troupe-cli (so the KV cache, tokenizer and gRPC paths are
# all touched), reads VmRSS/VmHWM from /proc, and stops the server.
#
# Usage: scripts/bench/daemon-rss.sh [BUILD_DIR] [KV_MB]
set -euo pipefail
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${1:-$repo_root/build}
kv_mb=${2:-256}
model=$repo_root/models/SmolLM2-135M-Instruct.Q4_1.gguf
port=$((40000 + RANDOM % 20000))
"$build/server/troupe-server" --model "$model" --listen "127.0.0.1:$port" --metrics-port -1 --http-listen "" \
    --kv-cache-mb "$kv_mb" > /tmp/troupe-rss-server.log 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  "$build/server/troupe-cli" info --addr "127.0.0.1:$port" > /dev/null 2>&1 && break
  sleep 0.2
done
for i in $(seq 1 8); do
  "$build/server/troupe-cli" chat --addr "127.0.0.1:$port" --character "Mira" \
      --system "You are Captain Mira, a cheerful pirate captain." \
      --message "Tell me about your ship, part $i." --max-tokens 64 > /dev/null &
done
"$build/server/troupe-cli" generate --addr "127.0.0.1:$port" \
    --prompt "$(printf 'Once upon a time there was a long story. %.0s' $(seq 1 150))" --max-tokens 32 > /dev/null
wait $(jobs -p | grep -v "^$pid$") 2>/dev/null || true
gguf_mib=$(( $(stat -c %s "$model") / 1048576 ))
rss_kib=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
hwm_kib=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
budget=$((gguf_mib + kv_mb + 150))
echo "daemon RSS $((rss_kib / 1024)) MiB (peak $((hwm_kib / 1024)) MiB); budget = gguf $gguf_mib + kv $kv_mb + 150 = $budget MiB"
[[ $((hwm_kib / 1024)) -le $budget ]] && echo "within budget" || echo "OVER budget"
