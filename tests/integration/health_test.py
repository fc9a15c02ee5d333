"""Liveness, readiness and drain of the real server (issue #14, docs/operations.md "Probes"):
grpc.health.v1 as Kubernetes' native gRPC probes ask it.

Starts troupe-server (argument 1) with --drain-delay 4s and checks:
  - once started (model loaded, first step run) "readiness", "" and "troupe.v1.RolePlay" are
    SERVING, and so is "liveness"; troupe:ready is 1;
  - right after SIGTERM: readiness NOT_SERVING, liveness still SERVING, and RPCs still served
    (a gateway's health checks move traffic away before the server refuses it); troupe:ready 0;
  - after the drain delay the process stops on its own with exit code 0.
The health messages are compiled from proto/grpc/health/v1/health.proto with protoc and loaded
by path (the name "grpc" is grpcio's package).
"""
import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
import time

import grpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "reliability"))
import troupe_rig as rig  # noqa: E402


def health_module(out_dir):
    proto_root = os.path.join(rig.REPO, "proto")
    subprocess.run(["protoc", "-I", proto_root, "--python_out", out_dir,
                    os.path.join(proto_root, "grpc", "health", "v1", "health.proto")], check=True)
    path = os.path.join(out_dir, "grpc", "health", "v1", "health_pb2.py")
    spec = importlib.util.spec_from_file_location("troupe_test_health_pb2", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    binary = sys.argv[1]
    check = rig.Checks()

    with tempfile.TemporaryDirectory(prefix="troupe-health-") as tmp:
        health = health_module(tmp)
        pb = rig.Protos(os.path.join(tmp, "protos"))
        server = rig.Server(binary, os.path.join(tmp, "data"), os.path.join(tmp, "server.log"),
                            extra_args=["--drain-delay", "4s", "--shutdown-grace-s", "5", "--threads", "2"])
        server.start()
        channel = grpc.insecure_channel(server.address)
        check_rpc = channel.unary_unary("/grpc.health.v1.Health/Check",
                                        request_serializer=health.HealthCheckRequest.SerializeToString,
                                        response_deserializer=health.HealthCheckResponse.FromString)
        stub = rig.RolePlay(channel, pb)
        serving = health.HealthCheckResponse.SERVING

        def status(service):
            return check_rpc(health.HealthCheckRequest(service=service), timeout=5).status

        for service in ("liveness", "readiness", "", "troupe.v1.RolePlay"):
            check(status(service) == serving, f"{service!r} is SERVING once started")
        check(server.metrics().get("troupe:ready") == 1, "troupe:ready is 1 once started")

        server.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and status("readiness") == serving:
            time.sleep(0.05)
        check(status("readiness") == health.HealthCheckResponse.NOT_SERVING, "readiness goes off at SIGTERM")
        check(status("") == health.HealthCheckResponse.NOT_SERVING, "the overall status goes off too")
        check(status("liveness") == serving, "liveness stays on while draining")
        info = stub.GetServerInfo(pb.GetServerInfoRequest(), timeout=5)
        check(bool(info.model_name), "RPCs are still served during the drain delay")
        check(server.metrics().get("troupe:ready") == 0, "troupe:ready is 0 while draining")
        try:
            code = server.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            code = None
        check(code == 0, f"the server stops by itself with exit code 0 (got {code})")
    print(f"health_test: {len(check.failures)} failure(s)")
    return check.exit_code()


if __name__ == "__main__":
    sys.exit(main())
