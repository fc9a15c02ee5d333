#!/usr/bin/env bash
# Runs a Python test with the PyPI packages of scripts/python/requirements.txt (the official
# openai SDK, for tests/integration/openai_test.py) on top of Debian's python3 and its packages:
#   scripts/python/venv-run.sh VENV_DIR SCRIPT [ARGS...]     (ctest: integration.openai)
# The virtual environment is made once per VENV_DIR (ctest passes <build>/python-venv) and
# remade when requirements.txt changes; a lock keeps two tests from making it at once.
set -euo pipefail
venv=$1
shift
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
requirements=$here/requirements.txt
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9
if [[ ! -x $venv/bin/python ]] || ! cmp -s "$requirements" "$venv/requirements.txt"; then
  rm -rf "$venv"
  /usr/bin/python3 -m venv --system-site-packages "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$venv/requirements.txt"
fi
flock -u 9
exec "$venv/bin/python" "$@"
