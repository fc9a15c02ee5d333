#!/usr/bin/env bash
# Proves that the Unix Makefiles generator (plain `cmake -S . -B DIR`, what packagers type)
# builds the targets made by custom commands: the generated gRPC code (troupe_proto) and the
# CUDA kernels translated for the CPU (troupe_cuda_cpu, cuda_cpu_test; CUDA builds only).
# Makefiles, unlike Ninja, does not create an output's folder before running its command.
# scripts/test.sh runs it after the Ninja build; the whole tree builds the same way by hand:
#   cmake -S . -B b-make -G "Unix Makefiles" && cmake --build b-make -j2
# Usage: scripts/check-makefiles-build.sh [BUILD_DIR] [JOBS]
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
build_dir=${1:-build-make}
jobs=${2:-2}
export PATH="/usr/local/cuda/bin:$PATH"

mkdir -p "$build_dir"
cmake -S . -B "$build_dir" -G "Unix Makefiles" -DCMAKE_BUILD_TYPE=Release -DTROUPE_CUDA=AUTO \
  > "$build_dir/configure.log" 2>&1 || { cat "$build_dir/configure.log"; exit 1; }
# `make help` lists every target as "... NAME".
available=$(cmake --build "$build_dir" --target help | sed -n 's/^\.\.\. \([^ ]*\).*/\1/p')
targets=()
for target in troupe_proto troupe_cuda_cpu cuda_cpu_test; do
  if grep -qx "$target" <<< "$available"; then targets+=("$target"); fi
done
if [[ ${#targets[@]} -eq 0 ]]; then
  echo "check-makefiles-build: no custom-command targets in this configuration" >&2
  exit 1
fi
cmake --build "$build_dir" -j "$jobs" --target "${targets[@]}"
echo "check-makefiles-build: Unix Makefiles built ${targets[*]}"
