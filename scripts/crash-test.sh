#!/usr/bin/env bash
# Crash safety (issue #13): kills the real troupe-server (build/server/troupe-server, default
# model, a fresh --data-dir) with SIGKILL at 20+ random points of a multi-turn chat load on
# durable sessions, restarts it each time, and checks that every acknowledged turn is still in
# its session's history and that PRAGMA integrity_check is ok on troupe.db. Exit 1 on any lost
# acknowledged turn. The driver is scripts/reliability/crash_test.py (docs/reliability.md).
#
# Usage: scripts/crash-test.sh [--kills N] [--sessions N] [--seed N] [--server PATH] [--keep]
# Environment: TROUPE_SERVER (the binary), TROUPE_PYTHON (a python3 with grpcio and protobuf).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$repo_root/scripts/reliability/find-python.sh"

server_args=()
if [[ -n "${TROUPE_SERVER:-}" ]]; then server_args=(--server "$TROUPE_SERVER"); fi
exec "$python" "$repo_root/scripts/reliability/crash_test.py" "${server_args[@]}" "$@"
