#!/usr/bin/env bash
# Builds Debian's own Abseil (the source package of the installed libabsl-dev, with Debian's
# patches, so the ABI and SONAMEs match) as shared libraries compiled with ThreadSanitizer, for
# scripts/test.sh --sanitize=thread. Debian's libabsl is not instrumented, so every
# absl::Mutex, CondVar and Notification would be invisible to TSan and each access they guard
# would be reported as a race. With LD_LIBRARY_PATH pointing at the folder this prints, the
# TSan tests, and gRPC's own use of Abseil, load these libraries instead.
#
#   scripts/sanitizers/tsan-abseil.sh OUT_DIR     prints OUT_DIR/lib
#
# Needs the deb-src entries of Debian's archive (added here when missing: root or sudo) and
# clang. Does nothing when OUT_DIR/lib already holds the libraries of the installed version.
set -euo pipefail

out=$(mkdir -p "$1" && cd "$1" && pwd)
version=$(dpkg-query -W -f='${Version}' libabsl-dev)
lib=$out/lib
if [[ -f $lib/.version && $(cat "$lib/.version") == "$version" ]]; then
  echo "$lib"
  exit 0
fi

sudo_cmd=()
[[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
if ! apt-get source --download-only --print-uris "abseil=$version" >/dev/null 2>&1; then
  # Debian's own archive, source side (the binary side is already configured).
  "${sudo_cmd[@]}" tee /etc/apt/sources.list.d/troupe-debian-src.sources >/dev/null <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  "${sudo_cmd[@]}" apt-get update -qq >&2
fi

src=$out/src
rm -rf "$src" "$out/build" "$lib"
mkdir -p "$src"
(cd "$src" && apt-get source -qq "abseil=$version" >&2)  # downloads, unpacks, applies Debian's patches
tree=$(find "$src" -mindepth 1 -maxdepth 1 -type d -name 'abseil-*' | head -n 1)

# Debian's shared configuration (debian/rules), with clang and TSan at -O1.
cmake -S "$tree" -B "$out/build" -G Ninja \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only -DNDEBUG" \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only -DNDEBUG" \
  -DCMAKE_C_FLAGS=-fsanitize=thread -DCMAKE_CXX_FLAGS=-fsanitize=thread \
  -DCMAKE_CXX_STANDARD=17 -DBUILD_SHARED_LIBS=ON -DBUILD_TESTING=OFF \
  "-DCMAKE_LIBRARY_OUTPUT_DIRECTORY=$lib" >&2
cmake --build "$out/build" -j "${TROUPE_JOBS:-2}" >&2
echo "$version" >"$lib/.version"
echo "$lib"
