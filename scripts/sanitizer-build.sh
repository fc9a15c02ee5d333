#!/usr/bin/env bash
# Configures a clang sanitizer build of troupe; sourced by scripts/test.sh --sanitize=... and
# scripts/fuzz.sh, so that both configure the same tree the same way.
#
#   configure_sanitizer_build DIR SANITIZERS [FUZZ]
#
# DIR: the build folder (build-asan, build-tsan). SANITIZERS: clang's -fsanitize list
# ("address,undefined" or "thread"). FUZZ=ON also builds fuzz/ and compiles everything with
# -fsanitize=fuzzer-no-link, so that one ASan+UBSan tree serves the unit tests and the fuzzers
# (CI builds it once). The build is -O1 (ASan's recommended level: quick to build, readable
# stacks) with line tables and NDEBUG like the Release build, without CUDA (the sanitizers
# cannot see into device code, and nvcc would not take the flags) and without benchmarks.
# ccache is used when installed.

configure_sanitizer_build() {
  local dir=$1 sanitizers=$2 fuzz=${3:-OFF}
  local launcher=()
  if command -v ccache >/dev/null 2>&1; then
    launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  fi
  cmake -S . -B "$dir" -G Ninja \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only -DNDEBUG" \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only -DNDEBUG" \
    -DTROUPE_CUDA=OFF -DTROUPE_BUILD_BENCH=OFF \
    "-DTROUPE_SANITIZE=$sanitizers" "-DTROUPE_FUZZ=$fuzz" \
    "${launcher[@]}" >/dev/null
}
