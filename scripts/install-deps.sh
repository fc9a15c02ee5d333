#!/usr/bin/env bash
# Installs the Debian 12 packages that building and testing troupe needs. Idempotent: when every
# package is already installed it does nothing (no apt-get update). Needs root or sudo.
# CUDA is optional and not installed here: when nvcc exists at /usr/local/cuda/bin the build
# also compiles the CUDA backend (scripts/test.sh puts that folder on PATH).
set -euo pipefail

# Keep this list in sync with docs/dependencies.md.
packages=(
  cmake ninja-build g++ pkg-config            # toolchain (CMake >= 3.25: Debian 12 ships 3.25.1)
  libabsl-dev                                 # absl::Status, Mutex, strings, flags
  libgrpc++-dev protobuf-compiler-grpc        # gRPC C++ library + grpc_cpp_plugin
  libprotobuf-dev protobuf-compiler           # protobuf runtime + protoc
  prometheus-cpp-dev                          # /metrics exposer
  libgtest-dev                                # GoogleTest (ships GTestConfig.cmake + libraries)
  nlohmann-json3-dev                          # JSON parsing: golden files, Character Cards
  zlib1g-dev                                  # troupe-bench's PNG charts (deflate)
  libre2-dev                                  # RE2: lorebook regex keys (linear time, bounded memory)
  libsqlite3-dev                              # the durable store of characters, sessions, memories
  libpq-dev postgresql                        # the shared store of replicas (libpq); the tests' server
  libzmq3-dev libmsgpack-dev                  # KV-cache events: ZeroMQ PUB socket, msgpack-c
  libcpp-httplib-dev                          # the OpenAI-compatible HTTP front (server/openai)
  python3-zmq python3-msgpack                 # the KV-events test's subscriber (tests/integration)
  nginx                                       # the gateway of scripts/fleet-test.sh
  haproxy                                     # haproxy -c: deploy/gateway/haproxy.cfg (check-monitoring.sh)
  prometheus                                  # promtool: alert rules (scripts/deploy/check-monitoring.sh)
  mmdebstrap                                  # the image's runtime root (scripts/deploy/check-image.sh)
  libssl-dev openssl                          # SHA-256 of API keys (libcrypto); tests make TLS certs
  python3 python3-pip ca-certificates         # scripts/fetch-model.sh downloads the model via pip
  python3-venv curl                           # the openai SDK test's environment (scripts/python); curl SSE
  python3-grpcio python3-protobuf             # the soak and crash-test drivers (scripts/reliability)
  clang libclang-rt-dev                       # sanitizer builds and libFuzzer (scripts/fuzz.sh)
)

missing=()
for pkg in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  if [[ "$status" != "install ok installed" ]]; then
    missing+=("$pkg")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install-deps: missing packages: ${missing[*]}" >&2
    echo "install-deps: not root and no sudo; install them as root and rerun" >&2
    exit 1
  fi
  sudo_cmd=(sudo)
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
