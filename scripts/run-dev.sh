#!/usr/bin/env bash
# README command 1: installs dependencies, fetches the default model, builds the server and
# CLI, starts troupe-server in the background on 127.0.0.1:50051, waits until it accepts
# RPCs (`troupe-cli info`), streams one short chat reply with troupe-cli, and leaves the
# daemon running.
#
# Environment: TROUPE_ADDR (default 127.0.0.1:50051), TROUPE_MODEL (default: the fetched
# SmolLM2 model), TROUPE_JOBS (build jobs, default 2), TROUPE_START_TIMEOUT_S (default 120).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

export PATH="/usr/local/cuda/bin:$PATH"  # CMake finds nvcc only through PATH or CUDACXX
addr=${TROUPE_ADDR:-127.0.0.1:50051}
model=${TROUPE_MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
jobs=${TROUPE_JOBS:-2}
start_timeout_s=${TROUPE_START_TIMEOUT_S:-120}
server_bin=build/server/troupe-server
cli_bin=build/server/troupe-cli
pid_file=build/troupe-server.pid
log_file=build/troupe-server.log

scripts/install-deps.sh
scripts/fetch-model.sh

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DTROUPE_CUDA=AUTO >/dev/null
cmake --build build -j "$jobs" --target troupe-server troupe-cli

# True once host:port accepts a TCP connection (bash's /dev/tcp; no extra tools needed).
port_open() {
  local host=${addr%:*} port=${addr##*:}
  (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}

if [[ -f "$pid_file" ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
  echo "run-dev: troupe-server already running (pid $(cat "$pid_file")); reusing it"
else
  if port_open; then
    echo "run-dev: $addr is already in use by another process; set TROUPE_ADDR" >&2
    exit 1
  fi
  echo "run-dev: starting $server_bin --model $model --listen $addr (log: $log_file)"
  nohup "$server_bin" --model "$model" --listen "$addr" </dev/null >"$log_file" 2>&1 &
  echo $! >"$pid_file"
fi
pid=$(cat "$pid_file")

# Healthy = answers an RPC. The port opens only after the model has loaded; `info` then
# confirms the service itself responds.
healthy() { port_open && "$cli_bin" info --addr "$addr" --timeout-s 5 >/dev/null 2>&1; }
deadline=$((SECONDS + start_timeout_s))
until healthy; do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "run-dev: troupe-server exited during start-up; last lines of $log_file:" >&2
    tail -n 20 "$log_file" >&2
    rm -f "$pid_file"
    exit 1
  fi
  if ((SECONDS >= deadline)); then
    echo "run-dev: troupe-server did not become healthy on $addr within ${start_timeout_s}s (log: $log_file)" >&2
    exit 1
  fi
  sleep 0.5
done
echo "run-dev: troupe-server is up on $addr (pid $pid); model:"
"$cli_bin" info --addr "$addr" --timeout-s 5

message="Hello! Who are you?"
echo "run-dev: $cli_bin chat --addr $addr --max-tokens 48 --temperature 0 --message \"$message\""
"$cli_bin" chat --addr "$addr" --max-tokens 48 --temperature 0 --message "$message"
echo
echo "run-dev: the server keeps running (pid $pid, log $log_file; metrics on"
echo "run-dev: http://127.0.0.1:9400/metrics unless --metrics-port says otherwise)."
echo "run-dev: stop it with: kill $pid   (or: kill \$(cat $pid_file))"
