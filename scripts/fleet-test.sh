#!/usr/bin/env bash
# The fleet on one machine (issue #14, docs/operations.md): 3 troupe replicas on the default
# model sharing one real PostgreSQL (scripts/postgres-test-server.sh), nginx in front routing by
# consistent hashing on x-session-id (deploy/gateway/nginx.conf), troupe-bench driving durable
# multi-turn sessions through nginx with retries on UNAVAILABLE. Midway one replica gets SIGKILL
# and another SIGTERM (it drains). scripts/fleet/fleet_check.py then checks that every session
# completed, that no acknowledged turn is missing from the database, and that sessions that
# never moved kept >= 90% of their turn-2+ prompt tokens from the cache. Loopback only.
#
#   scripts/fleet-test.sh [--routing session|round-robin] [--sessions N] [--turns T]
#                         [--no-faults] [--keep-database] [--out DIR] [-- TROUPE_BENCH_ARGS...]
#
# --routing round-robin runs the same load with nginx's round-robin instead (the comparison in
# docs/benchmarks.md "Fleet"; its cache figure is reported, not checked). Arguments after --
# go to troupe-bench (later flags win: --max-tokens 48, --user-words 80, ...). The summary is
# OUT/summary.json (OUT defaults to a temporary folder, printed). --keep-database leaves the
# PostgreSQL server running at the end (its URL printed) to look at what was stored. Needs a build (TROUPE_BUILD,
# default build/), nginx and postgresql (scripts/install-deps.sh).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
build=${TROUPE_BUILD:-build}
routing=session
sessions=12
turns=6
faults=1
keep_database=0
out=""
bench_args=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --) shift; bench_args=("$@"); break ;;
    --routing) routing=$2; shift 2 ;;
    --sessions) sessions=$2; shift 2 ;;
    --turns) turns=$2; shift 2 ;;
    --no-faults) faults=0; shift ;;
    --keep-database) keep_database=1; shift ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: $0 [--routing session|round-robin] [--sessions N] [--turns T] [--no-faults] [--keep-database] [--out DIR]" >&2
       exit 2 ;;
  esac
done
[[ $routing == session || $routing == round-robin ]] || { echo "fleet-test: --routing session|round-robin" >&2; exit 2; }

server=$build/server/troupe-server
bench=$build/bench/troupe-bench
for binary in "$server" "$bench"; do
  [[ -x $binary ]] || { echo "fleet-test: $binary not built (cmake --build $build)" >&2; exit 1; }
done
command -v nginx >/dev/null || { echo "fleet-test: nginx not installed (scripts/install-deps.sh)" >&2; exit 1; }

work=$(mktemp -d /tmp/troupe-fleet-XXXXXX)  # short: the PostgreSQL socket lives in it
chmod 755 "$work"
[[ -n $out ]] || out=$work/out
mkdir -p "$out"
out=$(cd "$out" && pwd)
pids=()        # the replicas
nginx_pid=""
cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  # TERM to nginx's master stops its workers too (SIGKILL would orphan them).
  if [[ -n $nginx_pid ]]; then
    kill -TERM "$nginx_pid" 2>/dev/null || true
    wait "$nginx_pid" 2>/dev/null || true
  fi
  if [[ $keep_database == 1 ]]; then
    echo "fleet-test: PostgreSQL left running: $database (scripts/postgres-test-server.sh stop $work/pg)"
  else
    scripts/postgres-test-server.sh stop "$work/pg" >/dev/null 2>&1 || true
    rm -rf "$work/pg"
  fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "fleet-test: PostgreSQL in $work/pg"
admin=$(scripts/postgres-test-server.sh start "$work/pg")
psql "$admin" -qc "CREATE DATABASE fleet"
database="postgresql:///fleet?host=$work/pg&user=troupe"

replica_ports=()
upstreams=""
for i in 0 1 2; do
  port=$(free_port)
  metrics=$(free_port)
  replica_ports+=("$port")
  "$server" --listen "127.0.0.1:$port" --metrics-port "$metrics" --metrics-host 127.0.0.1 --http-listen "" \
    --database "$database" --threads 1 --kv-cache-mb 256 --drain-delay 2s --shutdown-grace-s 30 \
    >"$out/replica-$i.log" 2>&1 &
  pids+=("$!")
  upstreams+="server 127.0.0.1:$port max_fails=1 fail_timeout=5s; "
done
for i in 0 1 2; do
  for _ in $(seq 600); do
    grep -q "serving .* on " "$out/replica-$i.log" && break
    kill -0 "${pids[$i]}" 2>/dev/null || { cat "$out/replica-$i.log" >&2; exit 1; }
    sleep 0.5
  done
  grep -q "serving .* on " "$out/replica-$i.log" || { echo "fleet-test: replica $i did not start" >&2; exit 1; }
done
echo "fleet-test: replicas on ports ${replica_ports[*]}"

gateway=$(free_port)
mkdir -p "$work/nginx"
sed -e "s|@LISTEN@|127.0.0.1:$gateway|" -e "s|@REPLICAS@|$upstreams|" -e "s|@RUN_DIR@|$work/nginx|g" \
  deploy/gateway/nginx.conf >"$work/nginx/nginx.conf"
if [[ $routing == round-robin ]]; then
  sed -i '/hash \$troupe_route consistent;/d' "$work/nginx/nginx.conf"
fi
nginx -t -c "$work/nginx/nginx.conf" -p "$work/nginx" 2>"$out/nginx-check.log" || { cat "$out/nginx-check.log" >&2; exit 1; }
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" 2>>"$out/nginx.log" &
nginx_pid=$!
sleep 1
echo "fleet-test: nginx ($routing routing) on 127.0.0.1:$gateway"

"$bench" --target "127.0.0.1:$gateway" --stored-characters --sessions "$sessions" --turns "$turns" \
  --max-tokens 24 --retries 6 --keep-sessions --no-progress \
  --result-json "$out/bench.json" --save-replies "$out/replies.jsonl" "${bench_args[@]}" >"$out/bench.log" 2>&1 &
bench_pid=$!

if [[ $faults == 1 ]]; then
  # Midway: a third of the turns answered.
  want=$(( sessions * turns / 3 ))
  while kill -0 "$bench_pid" 2>/dev/null; do
    done_turns=$(grep -c '/Chat$' "$work/nginx/access.log" 2>/dev/null || true)
    [[ ${done_turns:-0} -ge $want ]] && break
    sleep 0.5
  done
  echo "fleet-test: after ${done_turns:-0} turns: SIGKILL replica 0 (port ${replica_ports[0]}), SIGTERM replica 1 (port ${replica_ports[1]})"
  kill -9 "${pids[0]}" 2>/dev/null || echo "fleet-test: replica 0 had already exited" >&2
  kill -TERM "${pids[1]}" 2>/dev/null || echo "fleet-test: replica 1 had already exited" >&2
fi
bench_status=0
wait "$bench_pid" || bench_status=$?
cp "$work/nginx/access.log" "$out/access.log"
echo "fleet-test: troupe-bench exited with $bench_status"
tail -n 25 "$out/bench.log"

status=0
python3 scripts/fleet/fleet_check.py --result "$out/bench.json" --replies "$out/replies.jsonl" \
  --access-log "$out/access.log" --database "$database" --routing "$routing" --turns "$turns" \
  --summary "$out/summary.json" || status=$?
echo "fleet-test: summary in $out/summary.json"
if [[ $bench_status -ne 0 && $status -eq 0 ]]; then
  echo "fleet-test: troupe-bench failed (exit $bench_status); see $out/bench.log" >&2
  status=1
fi
exit $status
