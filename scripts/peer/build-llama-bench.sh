#!/usr/bin/env bash
# Builds llama.cpp's llama-bench and llama-server, the CPU peer troupe is benchmarked against,
# llama-quantize (makes the K-quant test files, scripts/peer/make-kquant-models.sh) and the
# shared libllama that llama-cpp-python's ctypes bindings load (the golden scripts in
# scripts/golden/ use it: no second llama.cpp build through pip), from the llama-cpp-python
# source distribution (it vendors llama.cpp as a git submodule).
# Output (git-ignored), under third_party_cache/llama.cpp-<version>/:
#   bin/{llama-bench,llama-server,llama-quantize}, bin/lib*.so (RPATH $ORIGIN)
#   python/llama_cpp/   the sdist's Python package; use it with
#                       PYTHONPATH=.../python LLAMA_CPP_LIB_PATH=.../bin (pip install numpy
#                       diskcache jinja2 typing-extensions first)
#   VERSION             llama-cpp-python version, vendored llama.cpp commit
# Idempotent.
#
# Usage: scripts/peer/build-llama-bench.sh [SDIST.tar.gz]
#   Without an argument it runs `pip download --no-binary :all:` for the pinned version.
# Environment: TROUPE_JOBS (default 2).
set -euo pipefail

readonly kVersion="0.3.36"  # llama-cpp-python; the same version made tests/testdata/smollm2-greedy.json
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cache="$repo_root/third_party_cache"
out="$cache/llama.cpp-$kVersion"
jobs=${TROUPE_JOBS:-2}

if [[ -x "$out/bin/llama-bench" && -x "$out/bin/llama-server" && -x "$out/bin/llama-quantize" &&
      -f "$out/bin/libllama.so" && -d "$out/python/llama_cpp" && -f "$out/VERSION" ]]; then
  echo "build-llama-bench: already built: $out/bin"; cat "$out/VERSION"
  exit 0
fi

sdist=${1:-}
if [[ -z "$sdist" ]]; then
  mkdir -p "$cache/sdist"
  sdist="$cache/sdist/llama_cpp_python-$kVersion.tar.gz"
  if [[ ! -f "$sdist" ]]; then
    python3 -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
        -d "$cache/sdist" "llama-cpp-python==$kVersion"
  fi
fi
[[ -f "$sdist" ]] || { echo "build-llama-bench: no sdist at $sdist" >&2; exit 1; }

src="$out/src"
rm -rf "$src" && mkdir -p "$src"
tar -xzf "$sdist" -C "$src" --strip-components=1
llama_src="$src/vendor/llama.cpp"
[[ -f "$llama_src/CMakeLists.txt" ]] || { echo "build-llama-bench: $sdist vendors no llama.cpp" >&2; exit 1; }

# The sdist keeps the submodule's (shallow) git metadata, so the commit is recoverable; being
# a depth-1 clone, llama.cpp's own build number reads 1 (`llama-bench --version`: "build 1").
commit=$(git -C "$llama_src" rev-parse HEAD 2>/dev/null || echo unknown)
commit_date=$(git -C "$llama_src" log -1 --format=%cs 2>/dev/null || echo unknown)

# CPU-only, tuned for this CPU; no network at build time (no curl/openssl, no web UI
# download); only the tools we need. Shared libraries (RPATH $ORIGIN, kept beside the tools in
# bin/) so that llama-cpp-python's bindings can load the very build that is benchmarked.
cmake -S "$llama_src" -B "$out/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DGGML_NATIVE=ON -DGGML_CUDA=OFF -DBUILD_SHARED_LIBS=ON \
  -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON '-DCMAKE_INSTALL_RPATH=$ORIGIN' \
  -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF
cmake --build "$out/build" -j "$jobs" --target llama-bench llama-server llama-quantize llama

mkdir -p "$out/bin"
cp "$out/build/bin/llama-bench" "$out/build/bin/llama-server" "$out/build/bin/llama-quantize" \
   "$out/bin/"
find "$out/build" -name 'lib*.so*' -exec cp -P {} "$out/bin/" \;
rm -rf "$out/python" && mkdir -p "$out/python" && cp -r "$src/llama_cpp" "$out/python/"
cat >"$out/VERSION" <<VERSION
llama-cpp-python $kVersion (sdist sha256 $(sha256sum "$sdist" | cut -d' ' -f1))
llama.cpp commit $commit ($commit_date)
built with: GGML_NATIVE=ON, CPU only, shared (RPATH \$ORIGIN), $(${CXX:-c++} --version | head -n 1)
VERSION
rm -rf "$src" "$out/build"  # only bin/, python/ and VERSION are kept; a rebuild starts from the sdist
echo "build-llama-bench: built $out/bin"; cat "$out/VERSION"
