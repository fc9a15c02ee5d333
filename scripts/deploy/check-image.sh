#!/usr/bin/env bash
# Tests what the CPU container image (deploy/docker/Dockerfile.cpu) is made of, without a
# container registry: the build the Dockerfile makes (its cmake options: no CUDA, no tests, no
# benchmarks, portable code), `cmake --install` of it into a staging root, a fresh minimal
# Debian 12 root made by mmdebstrap holding only the runtime packages the Dockerfile names (its
# "# runtime packages:" line, which must match its apt-get line), the staging root copied in,
# then, chrooted as the image's non-root user: no library is missing (ldd), the installed server
# starts on the default model, `troupe-cli health` reports SERVING and one chat turn answers.
#
#   scripts/deploy/check-image.sh [BUILD_DIR]     (default build-image/; needs root for chroot)
#
# The Debian root is cached in third_party_cache/image-root-<hash of the package list>.tar.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo_root"
build=${1:-build-image}
dockerfile=deploy/docker/Dockerfile.cpu
jobs=${TROUPE_JOBS:-2}
# The Dockerfile's build options, each of which it must name.
options=(-DCMAKE_BUILD_TYPE=Release -DTROUPE_CUDA=OFF -DTROUPE_BUILD_TESTS=OFF -DTROUPE_BUILD_BENCH=OFF
         -DTROUPE_NATIVE=OFF)
for option in "${options[@]}"; do
  grep -q -- "$option" "$dockerfile" || { echo "check-image: $dockerfile does not build with $option" >&2; exit 1; }
done
[[ $(id -u) -eq 0 ]] || { echo "check-image: needs root (mmdebstrap, chroot)" >&2; exit 1; }
command -v mmdebstrap >/dev/null || { echo "check-image: mmdebstrap missing (scripts/install-deps.sh)" >&2; exit 1; }

packages=$(sed -n 's/^# runtime packages: //p' "$dockerfile")
[[ -n $packages ]] || { echo "check-image: no '# runtime packages:' line in $dockerfile" >&2; exit 1; }
# The apt-get line of the runtime stage names the same packages, in the same order.
installed=$(awk '/^FROM debian:12-slim/{s=1} s && /apt-get install/{getline; print; exit}' "$dockerfile" \
            | sed 's/\\$//; s/^ *//; s/ *$//')
if [[ "$installed" != "$packages" ]]; then
  echo "check-image: $dockerfile installs '$installed' but its runtime packages line says '$packages'" >&2
  exit 1
fi

work=$(mktemp -d /tmp/troupe-image-XXXXXX)
root=$work/root
cleanup() {
  if [[ -f $work/server.pid ]]; then
    kill -9 "$(cat "$work/server.pid")" 2>/dev/null || true
    wait "$(cat "$work/server.pid")" 2>/dev/null || true
  fi
  umount "$root/proc" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p third_party_cache
cache=third_party_cache/image-root-$(echo "$packages" | sha256sum | cut -c1-16).tar
[[ -d $cache ]] && rm -rf "$cache"   # a folder left by an older version of this script
if [[ ! -f $cache ]]; then
  echo "check-image: mmdebstrap bookworm minbase + $packages"
  # --format=tar: mmdebstrap picks the output's format from its name otherwise, and the
  # temporary name (so that an interrupted run leaves no cache behind) does not end in .tar.
  rm -rf "$cache.partial"
  mmdebstrap --quiet --variant=minbase --format=tar --include="${packages// /,}" bookworm \
    "$cache.partial" http://deb.debian.org/debian
  mv "$cache.partial" "$cache"
fi
mkdir -p "$root"
tar -xf "$cache" -C "$root"

echo "check-image: building $build as the image does (${options[*]})"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B "$build" -G Ninja "${options[@]}" "${launcher[@]}" >/dev/null
cmake --build "$build" -j "$jobs" >/dev/null
echo "check-image: cmake --install $build"
cmake --install "$build" --prefix "$root/opt/troupe" --strip >/dev/null
# The image's user, models and data folder.
chroot "$root" groupadd --system --gid 10001 troupe
chroot "$root" useradd --system --uid 10001 --gid troupe --home-dir /var/lib/troupe --create-home troupe
mkdir -p "$root/models"
cp models/SmolLM2-135M-Instruct.Q4_1.gguf "$root/models/"
cp -r models/all-MiniLM-L6-v2 "$root/models/"
mount -t proc proc "$root/proc"

missing=$(chroot "$root" sh -c 'ldd /opt/troupe/bin/troupe-server /opt/troupe/bin/troupe-cli' | grep "not found" || true)
if [[ -n $missing ]]; then
  echo "check-image: libraries the runtime packages do not provide:" >&2
  echo "$missing" >&2
  exit 1
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
chroot --userspec=10001:10001 "$root" /opt/troupe/bin/troupe-server --listen "127.0.0.1:$port" \
  --metrics-port -1 --http-listen "" --data-dir /var/lib/troupe/data --model /models/SmolLM2-135M-Instruct.Q4_1.gguf \
  --embedding-model /models/all-MiniLM-L6-v2 >"$work/server.log" 2>&1 &
echo $! >"$work/server.pid"
ready=0
for _ in $(seq 240); do
  if chroot --userspec=10001:10001 "$root" /opt/troupe/bin/troupe-cli --addr "127.0.0.1:$port" health \
       >/dev/null 2>&1; then
    ready=1
    break
  fi
  kill -0 "$(cat "$work/server.pid")" 2>/dev/null || break
  sleep 0.5
done
if [[ $ready != 1 ]]; then
  echo "check-image: the installed server did not become ready:" >&2
  tail -n 30 "$work/server.log" >&2
  exit 1
fi
reply=$(chroot --userspec=10001:10001 "$root" /opt/troupe/bin/troupe-cli --addr "127.0.0.1:$port" chat \
          --message "Hello, who are you?" --max-tokens 8 --temperature 0 2>/dev/null)
[[ -n $reply ]] || { echo "check-image: no chat reply" >&2; exit 1; }
echo "check-image: ok: the runtime packages of $dockerfile run the installed server (reply: ${reply:0:60})"
