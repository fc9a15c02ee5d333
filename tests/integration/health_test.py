"""Liveness, readiness and drain of the real server (issue #14, docs/operations.md "Probes"):
grpc.health.v1 as Kubernetes' native gRPC probes ask it.

Starts troupe-server (argument 1) with --drain-delay 4s and checks:
  - once started (model loaded, first step run) "readiness", "" and "troupe.v1.RolePlay" are
    SERVING, and so is "liveness"; troupe:ready is 1;
  - right after SIGTERM: readiness NOT_SERVING, liveness still SERVING, and RPCs still served
    (a gateway's health checks move traffic away before the server refuses it); troupe:ready 0;
  - after the drain delay the process stops on its own with exit code 0.
Then a second server, with no drain delay and --shutdown-grace-s 5, gets SIGTERM while two
Generate streams decode:
  - readiness is off at once (troupe:ready 0, the health check no longer SERVING) while the short
    stream is still running, and that stream then ends OK with all its tokens and its final
    message (finish_reason LENGTH) within the grace: live streams are not cut at SIGTERM;
  - the long one (ignore_eos, thousands of tokens) keeps streaming until the grace ends, then
    ends with a non-OK status, and the process exits with code 0.
The health messages are compiled from proto/grpc/health/v1/health.proto with protoc and loaded
by path (the name "grpc" is grpcio's package).
"""
import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
import threading
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


class Stream:
    """One Generate stream consumed on its own thread: tokens so far, the final message, the
    status code name and when it ended (time.monotonic())."""

    def __init__(self, stub, pb, max_tokens):
        request = pb.GenerateRequest(prompt=b"Once upon a time",
                                     sampling=pb.SamplingParams(temperature=0, max_tokens=max_tokens,
                                                                ignore_eos=True))
        self.max_tokens = max_tokens
        self.num_tokens = 0
        self.final = None
        self.code = None
        self.ended_at = None
        self.first_token = threading.Event()
        self.done = threading.Event()
        self._call = stub.Generate(request, timeout=300)
        self._thread = threading.Thread(target=self._consume, daemon=True)
        self._thread.start()

    def _consume(self):
        try:
            for message in self._call:
                self.num_tokens += len(message.token_ids)
                if self.num_tokens > 0:
                    self.first_token.set()
                if message.finish_reason:
                    self.final = message
            self.code = "OK"
        except grpc.RpcError as error:
            self.code = rig.code_name(error)
        self.ended_at = time.monotonic()
        self.done.set()
        self.first_token.set()

    def join(self, timeout_s):
        return self.done.wait(timeout_s)


def check_grace(binary, tmp, pb, health, check):
    """SIGTERM with no drain delay: a stream that fits in the grace completes, one that does not
    is ended when the grace runs out (docs/operations.md "Start, drain, stop")."""
    grace_s = 5
    server = rig.Server(binary, os.path.join(tmp, "data-grace"), os.path.join(tmp, "server-grace.log"),
                        extra_args=["--shutdown-grace-s", str(grace_s), "--threads", "2"])
    server.start()
    channel = grpc.insecure_channel(server.address)
    check_rpc = channel.unary_unary("/grpc.health.v1.Health/Check",
                                    request_serializer=health.HealthCheckRequest.SerializeToString,
                                    response_deserializer=health.HealthCheckResponse.FromString)
    stub = rig.RolePlay(channel, pb)

    def readiness_serving():
        try:
            status = check_rpc(health.HealthCheckRequest(service="readiness"), timeout=5).status
        except grpc.RpcError:
            return False  # a shut-down server refuses new RPCs: a probe sees it as not ready
        return status == health.HealthCheckResponse.SERVING

    check(readiness_serving(), "the second server is ready once started")
    # About 25 tokens/s each on two idle CPU threads, 10 on a loaded machine: the short stream
    # needs 0.6-1.6 s of the grace, the long one (never EOS, ~8000 tokens) minutes.
    long_stream = Stream(stub, pb, max_tokens=8000)
    check(long_stream.first_token.wait(120) and long_stream.code is None, "the long stream is decoding")
    short_stream = Stream(stub, pb, max_tokens=16)
    check(short_stream.first_token.wait(120) and short_stream.code is None, "the short stream is decoding")

    server.process.send_signal(signal.SIGTERM)
    sigterm_at = time.monotonic()
    deadline = sigterm_at + 2
    while time.monotonic() < deadline and (readiness_serving() or server.metrics().get("troupe:ready") != 0):
        time.sleep(0.02)
    tokens_when_off = short_stream.num_tokens
    check(not short_stream.done.is_set() and tokens_when_off < short_stream.max_tokens,
          f"the short stream is still running when readiness is off ({tokens_when_off} tokens)")
    check(not readiness_serving(), "readiness is off right after SIGTERM")
    check(server.metrics().get("troupe:ready") == 0, "troupe:ready is 0 right after SIGTERM")

    check(short_stream.join(grace_s + 30), "the short stream ends")
    check(short_stream.code == "OK", f"the short stream ends OK after SIGTERM (got {short_stream.code})")
    check(short_stream.num_tokens == short_stream.max_tokens,
          f"the short stream gets all its {short_stream.max_tokens} tokens (got {short_stream.num_tokens})")
    final = short_stream.final
    check(final is not None and final.finish_reason == pb.FINISH_REASON_LENGTH
          and final.usage.completion_tokens == short_stream.max_tokens,
          "the short stream's final message says LENGTH and counts its tokens")
    if short_stream.ended_at is not None:
        check(short_stream.ended_at - sigterm_at < grace_s,
              f"the short stream ends within the grace ({short_stream.ended_at - sigterm_at:.1f} s)")

    check(long_stream.join(grace_s + 60), "the long stream ends once the grace is over")
    check(long_stream.code not in (None, "OK"),
          f"the long stream ends with a non-OK status (got {long_stream.code})")
    check(long_stream.num_tokens < long_stream.max_tokens,
          f"the long stream is cut short ({long_stream.num_tokens} of {long_stream.max_tokens} tokens)")
    if long_stream.ended_at is not None:
        served_s = long_stream.ended_at - sigterm_at
        check(served_s >= grace_s - 0.5, f"the long stream is served until the grace ends ({served_s:.1f} s)")
    try:
        code = server.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()
        code = None
    check(code == 0, f"the server exits after the grace with exit code 0 (got {code})")

    def since(stream):
        return f"{stream.ended_at - sigterm_at:.1f} s" if stream.ended_at is not None else "never"

    print(f"grace {grace_s} s: short stream {short_stream.code}, {short_stream.num_tokens} tokens "
          f"({tokens_when_off} at readiness off), ended {since(short_stream)} after SIGTERM; long stream "
          f"{long_stream.code}, {long_stream.num_tokens} tokens, ended {since(long_stream)} after SIGTERM")
    channel.close()


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
        channel.close()

        check_grace(binary, tmp, pb, health, check)
    print(f"health_test: {len(check.failures)} failure(s)")
    return check.exit_code()


if __name__ == "__main__":
    sys.exit(main())
