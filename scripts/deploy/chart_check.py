#!/usr/bin/env python3
"""What scripts/deploy/check-chart.sh checks beyond the Kubernetes schemas, on the chart's three
rendered variants (CPU defaults, every option on, GPU values):

  - the custom resources, against JSON schemas of the fields the chart sets, written here from
    the projects' documentation (prometheus-operator's ServiceMonitor, KEDA's ScaledObject): no
    Kubernetes schema covers them;
  - docs/operations.md's promises about the Deployment: native gRPC probes (startup and
    liveness on the "liveness" service, readiness on "readiness"), a preStop pause, a
    termination grace period longer than preStop + drain delay + twice the shutdown grace, the database
    URL from a Secret (never in the arguments), a non-root user, and on GPU nodes a GPU limit.

Usage: chart_check.py CPU.yaml ALL.yaml GPU.yaml (PYTHONPATH with PyYAML and jsonschema).
"""
import sys

import jsonschema
import yaml

SERVICE_MONITOR = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": {"type": "object", "required": ["matchLabels"]},
                "endpoints": {
                    "type": "array", "minItems": 1,
                    "items": {"type": "object", "required": ["port"], "additionalProperties": False,
                              "properties": {"port": {"type": "string"}, "path": {"type": "string"},
                                             "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"}}},
                },
            },
        },
    },
}

SCALED_OBJECT = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "spec": {
            "type": "object",
            "required": ["scaleTargetRef", "triggers"],
            "additionalProperties": False,
            "properties": {
                "scaleTargetRef": {"type": "object", "required": ["name"]},
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "triggers": {
                    "type": "array", "minItems": 1,
                    "items": {"type": "object", "required": ["type", "metadata"],
                              "properties": {"type": {"const": "prometheus"},
                                             "metadata": {"type": "object",
                                                          "required": ["serverAddress", "query", "threshold"],
                                                          "additionalProperties": {"type": "string"}}}},
                },
            },
        },
    },
}


def documents(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def seconds(arg):
    value = arg.split("=", 1)[1]
    return float(value[:-1]) if value.endswith("s") else float(value)


def check_deployment(deployment, gpu, failures, where):
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    args = container["args"]

    def expect(condition, what):
        if not condition:
            failures.append(f"{where}: {what}")

    for probe, service in (("startupProbe", "liveness"), ("livenessProbe", "liveness"),
                           ("readinessProbe", "readiness")):
        grpc = container.get(probe, {}).get("grpc", {})
        expect(grpc.get("service") == service, f"{probe} checks grpc.health.v1 service {service!r}")
    expect(container["startupProbe"]["failureThreshold"] * container["startupProbe"]["periodSeconds"] >= 300,
           "the startup probe allows at least 5 minutes to load the model")
    pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    expect(pre_stop[:1] == ["sleep"], "a preStop sleep")
    drain = next((seconds(a) for a in args if a.startswith("--drain-delay=")), None)
    grace = next((seconds(a) for a in args if a.startswith("--shutdown-grace-s=")), None)
    expect(drain is not None and grace is not None, "--drain-delay and --shutdown-grace-s are set")
    if drain is not None and grace is not None and pre_stop[:1] == ["sleep"]:
        # Live RPCs get one shutdown grace, queued memory writes another (server.h, Shutdown).
        expect(pod["terminationGracePeriodSeconds"] > float(pre_stop[1]) + drain + 2 * grace,
               "terminationGracePeriodSeconds exceeds preStop + drain delay + 2 x shutdown grace")
    expect(not any("postgresql://" in a or "--database" in a for a in args), "no database URL in the arguments")
    env = {e["name"]: e for e in container.get("env", [])}
    expect("secretKeyRef" in env.get("TROUPE_DATABASE_URL", {}).get("valueFrom", {}),
           "TROUPE_DATABASE_URL comes from a Secret")
    expect(pod.get("securityContext", {}).get("runAsNonRoot") is True, "runs as non-root")
    limits = container.get("resources", {}).get("limits", {})
    expect(("nvidia.com/gpu" in limits) == gpu, f"a GPU limit {'is' if gpu else 'is not'} set")
    expect(any(v.get("emptyDir", {}).get("medium") == "Memory" for v in pod.get("volumes", [])),
           "/dev/shm is a memory volume")


def main():
    cpu, everything, gpu = (documents(p) for p in sys.argv[1:4])
    failures = []
    for name, docs, is_gpu in (("cpu", cpu, False), ("all", everything, False), ("gpu", gpu, True)):
        kinds = [d["kind"] for d in docs]
        for kind in ("Deployment", "Service", "PodDisruptionBudget"):
            if kind not in kinds:
                failures.append(f"{name}: no {kind}")
        for d in docs:
            if d["kind"] == "Deployment":
                check_deployment(d, is_gpu, failures, name)
            elif d["kind"] == "ServiceMonitor":
                jsonschema.validate(d, SERVICE_MONITOR)
            elif d["kind"] == "ScaledObject":
                jsonschema.validate(d, SCALED_OBJECT)
    all_kinds = {d["kind"] for d in everything}
    for kind in ("ServiceMonitor", "ScaledObject"):
        if kind not in all_kinds:
            failures.append(f"all: no {kind} with its option on")
    for failure in failures:
        print("FAIL:", failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
