#!/usr/bin/env bash
# Soak test (issue #13): runs the real troupe-server (build/server/troupe-server, default model,
# a fresh --data-dir in a temporary folder) under N concurrent client streams for a while,
# mixing chat turns on durable and inline sessions, Generate, cancellations, short deadlines,
# disconnects, oversized and malformed requests and cross-tenant probes; then reports calls by
# gRPC code and checks that only the provoked codes occurred, KV blocks came back to 0, RSS
# grew under 5% after warm-up and no descriptor leaked. Exit 0 only when every check passes.
# The driver is scripts/reliability/soak.py (docs/reliability.md).
#
# Usage: scripts/soak.sh [--streams N] [--minutes M | --seconds S] [--seed N]
#                        [--server PATH] [--server-arg=--flag=value ...] [--keep]
# Environment: TROUPE_SERVER (the binary), TROUPE_PYTHON (a python3 with grpcio and protobuf).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$repo_root/scripts/reliability/find-python.sh"

server_args=()
if [[ -n "${TROUPE_SERVER:-}" ]]; then server_args=(--server "$TROUPE_SERVER"); fi
exec "$python" "$repo_root/scripts/reliability/soak.py" "${server_args[@]}" "$@"
