#!/usr/bin/env bash
# The project's test command (README, CI): install dependencies, fetch the default model,
# check the folder layering (scripts/check-layers.py), configure build/ (Release, Ninja), build
# with 2 jobs, run every test not labelled gpu, soak the real server for 60 s (scripts/soak.sh),
# then build the custom-command targets with the Unix Makefiles generator too
# (scripts/check-makefiles-build.sh).
# CUDA targets are compiled when nvcc exists (TROUPE_CUDA=AUTO); GPU tests run only with
# `ctest --test-dir build -L gpu` on a machine with a device.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

# CMake finds nvcc only through PATH or CUDACXX.
export PATH="/usr/local/cuda/bin:$PATH"
jobs=${TROUPE_JOBS:-2}

scripts/install-deps.sh
scripts/fetch-model.sh

scripts/check-layers.py --doc docs/architecture.md

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DTROUPE_CUDA=AUTO
cmake --build build -j "$jobs"
ctest --test-dir build -LE gpu --output-on-failure
# 60 s of the soak (docs/reliability.md): the real server, 16 streams, every check.
scripts/soak.sh --streams 16 --seconds 60
scripts/check-makefiles-build.sh build-make "$jobs"
