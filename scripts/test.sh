#!/usr/bin/env bash
# The project's test command (README, CI): install dependencies, fetch the default model,
# check the folder layering (scripts/check-layers.py), configure build/ (Release, Ninja), build
# with 2 jobs, run every test not labelled gpu, soak the real server for 60 s (scripts/soak.sh),
# run the fleet test (scripts/fleet-test.sh) and the deployment checks (scripts/deploy/), then
# build the custom-command targets with the Unix Makefiles generator too
# (scripts/check-makefiles-build.sh).
# CUDA targets are compiled when nvcc exists (TROUPE_CUDA=AUTO); GPU tests run only with
# `ctest --test-dir build -L gpu` on a machine with a device.
#
# Sanitizer builds (docs/reliability.md), clang, without CUDA:
#   scripts/test.sh --sanitize=address,undefined [--label=unit]   build-asan (also builds the
#                                                                  fuzzers, scripts/fuzz.sh)
#   scripts/test.sh --sanitize=thread [--label=unit]               build-tsan (and Debian's
#                                                                  Abseil rebuilt with TSan,
#                                                                  scripts/sanitizers/tsan-abseil.sh)
# build and run the tests not labelled gpu (only those of one label with --label, e.g. unit:
# what CI runs under ASan+UBSan) and stop at the first sanitizer report.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

sanitize=""
label=""
for arg in "$@"; do
  case $arg in
    --sanitize=*) sanitize=${arg#--sanitize=} ;;
    --label=*) label=${arg#--label=} ;;
    *) echo "usage: $0 [--sanitize=address,undefined|thread] [--label=unit|kernel|integration]" >&2
       exit 2 ;;
  esac
done

# CMake finds nvcc only through PATH or CUDACXX.
export PATH="/usr/local/cuda/bin:$PATH"
jobs=${TROUPE_JOBS:-2}

scripts/install-deps.sh
scripts/fetch-model.sh

if [[ -z $sanitize ]]; then
  scripts/check-layers.py --doc docs/architecture.md
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DTROUPE_CUDA=AUTO
  cmake --build build -j "$jobs"
  ctest --test-dir build -LE gpu --output-on-failure
  # 60 s of the soak (docs/reliability.md): the real server, 16 streams, every check.
  scripts/soak.sh --streams 16 --seconds 60
  # The fleet (docs/operations.md): 3 replicas, nginx, PostgreSQL, a replica killed and one
  # drained mid-load; then what deploy/ ships: the chart, the monitoring rules and dashboard,
  # and the image's runtime layer.
  scripts/fleet-test.sh --sessions 9 --turns 5
  scripts/deploy/check-chart.sh
  scripts/deploy/check-monitoring.sh
  scripts/deploy/check-image.sh build-image
  scripts/check-makefiles-build.sh build-make "$jobs"
  exit 0
fi

source scripts/sanitizer-build.sh
case $sanitize in
  address,undefined | undefined,address) dir=build-asan fuzz=ON ;;
  thread) dir=build-tsan fuzz=OFF ;;
  *) echo "test.sh: --sanitize takes address,undefined or thread, not '$sanitize'" >&2; exit 2 ;;
esac
configure_sanitizer_build "$dir" "$sanitize" "$fuzz"
if [[ $sanitize == thread ]]; then
  # Debian's Abseil, rebuilt with TSan (its mutexes are invisible to TSan otherwise); the tests
  # and gRPC load it in place of the system's.
  tsan_absl=$(scripts/sanitizers/tsan-abseil.sh "$dir/abseil")
  export LD_LIBRARY_PATH=$tsan_absl${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
if [[ -n $label ]]; then
  cmake --build "$dir" -j "$jobs" --target "troupe_tests_$label"
  ctest_select=(-L "^$label\$")
else
  cmake --build "$dir" -j "$jobs"
  ctest_select=(-LE gpu)
fi
# Every report fails the test that made it; third-party suppressions (each with its reason)
# are in scripts/sanitizers/.
supp=$repo_root/scripts/sanitizers
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:strict_string_checks=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$supp/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$supp/tsan.supp}
ctest --test-dir "$dir" "${ctest_select[@]}" --output-on-failure -j "$jobs"
