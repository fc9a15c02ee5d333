# Sourced by scripts/soak.sh and scripts/crash-test.sh: sets $python to a python3 that can
# import grpc and google.protobuf (Debian's python3-grpcio and python3-protobuf, which
# scripts/install-deps.sh installs), trying $TROUPE_PYTHON, python3 on PATH, /usr/bin/python3.
python=""
for candidate in "${TROUPE_PYTHON:-}" python3 /usr/bin/python3; do
  [[ -n "$candidate" ]] || continue
  if "$candidate" -c 'import grpc, google.protobuf' >/dev/null 2>&1; then
    python=$candidate
    break
  fi
done
if [[ -z "$python" ]]; then
  echo "no python3 with grpcio and protobuf found; run scripts/install-deps.sh" \
       "(python3-grpcio python3-protobuf) or set TROUPE_PYTHON" >&2
  exit 1
fi
command -v protoc >/dev/null 2>&1 || { echo "protoc not found; run scripts/install-deps.sh" >&2; exit 1; }
