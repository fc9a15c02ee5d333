#!/usr/bin/env bash
# Runs a Python test or driver with the python3 that has Debian's grpcio and protobuf (and so
# Debian's other python3-* packages: zmq, msgpack), as find-python.sh picks it:
#   scripts/reliability/run-python.sh SCRIPT [ARGS...]     (ctest: integration.kv_events)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/find-python.sh"
exec "$python" "$@"
