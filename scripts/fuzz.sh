#!/usr/bin/env bash
# Builds and runs a libFuzzer target (fuzz/, docs/reliability.md):
#
#   scripts/fuzz.sh TARGET SECONDS [-- LIBFUZZER_FLAGS...]
#   scripts/fuzz.sh all SECONDS
#
# TARGET is a name from fuzz/ without its "fuzz_" prefix: gguf, safetensors, tokenizer,
# card_json, card_png, lore_regex, request. The build is build-asan (clang, ASan + UBSan +
# libFuzzer coverage; the same tree scripts/test.sh --sanitize=address,undefined tests), so
# a crash reports where and why. Each run starts from a fresh copy of the committed seeds
# (fuzz/corpus/TARGET/) in build-asan/fuzz-runs/TARGET/, so the committed corpus never changes
# behind your back; crashing inputs are written there too (crash-*, leak-*, timeout-*).
# Prints libFuzzer's last status line (executions, exec/s) per target and runs every target;
# exits non-zero when any of them found a crash. TROUPE_FUZZ_JOBS (default 2) sets
# the build's parallelism; TROUPE_FUZZ_BUILD=0 runs what is built without building (while
# another build uses the tree).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
source scripts/sanitizer-build.sh

all_targets=(gguf safetensors tokenizer card_json card_png lore_regex request)
if [[ $# -lt 2 ]]; then
  echo "usage: $0 TARGET|all SECONDS [-- LIBFUZZER_FLAGS...]  (targets: ${all_targets[*]})" >&2
  exit 2
fi
target=$1
seconds=$2
shift 2
[[ ${1:-} == "--" ]] && shift
extra_flags=("$@")

if [[ $target == all ]]; then
  targets=("${all_targets[@]}")
else
  targets=("$target")
fi
build=build-asan
jobs=${TROUPE_FUZZ_JOBS:-2}

if [[ ${TROUPE_FUZZ_BUILD:-1} != 0 ]]; then
  if [[ ! -f $build/build.ninja ]] || ! grep -q 'TROUPE_FUZZ:BOOL=ON' "$build/CMakeCache.txt"; then
    configure_sanitizer_build "$build" address,undefined ON
  fi
  cmake --build "$build" -j "$jobs" --target "${targets[@]/#/fuzz_}"
fi

# Leaks: each target keeps its models and memfd in function-local statics on purpose.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
for t in "${targets[@]}"; do
  binary=$build/fuzz/fuzz_$t
  run_dir=$build/fuzz-runs/$t
  rm -rf "$run_dir"
  mkdir -p "$run_dir/corpus"
  cp fuzz/corpus/"$t"/* "$run_dir/corpus/"
  log=$run_dir/log.txt
  echo "fuzz: $t for ${seconds}s (commit $commit, log $log)"
  status=0
  (cd "$run_dir" && "$repo_root/$binary" -max_total_time="$seconds" -print_final_stats=1 \
      -artifact_prefix="$repo_root/$run_dir/" -rss_limit_mb=4096 -timeout=20 \
      "${extra_flags[@]}" corpus) >"$log" 2>&1 || status=$?
  grep -E '^#[0-9]+' "$log" | tail -n 1 || true
  grep -E '^stat::number_of_executed_units' "$log" | tail -n 1 || true
  if [[ $status -ne 0 ]]; then
    echo "fuzz: $t FAILED (exit $status); the report:" >&2
    grep -E -A 30 'ERROR: |TROUPE_CHECK failed|runtime error' "$log" | head -n 60 >&2 || tail -n 40 "$log" >&2
    ls "$run_dir"/crash-* "$run_dir"/leak-* "$run_dir"/timeout-* "$run_dir"/oom-* 2>/dev/null >&2 || true
    failed+=("$t")
  fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz: failed: ${failed[*]}" >&2
  exit 1
fi
