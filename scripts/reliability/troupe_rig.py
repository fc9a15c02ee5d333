"""What the reliability scripts (soak.py, crash_test.py) share: gRPC message classes compiled
from proto/ at run time, a RolePlay client built on plain channel methods, the real
troupe-server as a child process (its ports read from its log), its Prometheus metrics, and
what /proc says about it.

Needs grpcio and protobuf for Python (Debian: python3-grpcio python3-protobuf, installed by
scripts/install-deps.sh) and protoc. The message classes are made with `protoc --python_out`;
the service methods are bound by name, so no grpc_tools plugin is needed.
"""
import ctypes
import hashlib
import importlib
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.request

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DEFAULT_MODEL = os.path.join(REPO, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
DEFAULT_EMBEDDER = os.path.join(REPO, "models", "all-MiniLM-L6-v2")
SERVICE = "/troupe.v1.RolePlay/"

# name -> (streams responses, request type, response type)
METHODS = {
    "Generate": (True, "GenerateRequest", "GenerateResponse"),
    "Chat": (True, "ChatRequest", "ChatResponse"),
    "CreateCharacter": (False, "CreateCharacterRequest", "StoredCharacter"),
    "GetCharacter": (False, "GetCharacterRequest", "StoredCharacter"),
    "ListCharacters": (False, "ListCharactersRequest", "ListCharactersResponse"),
    "UpdateCharacter": (False, "UpdateCharacterRequest", "StoredCharacter"),
    "DeleteCharacter": (False, "DeleteCharacterRequest", "DeleteCharacterResponse"),
    "ExportCharacter": (False, "ExportCharacterRequest", "ExportCharacterResponse"),
    "CreateSession": (False, "CreateSessionRequest", "Session"),
    "GetSession": (False, "GetSessionRequest", "Session"),
    "ListSessions": (False, "ListSessionsRequest", "ListSessionsResponse"),
    "DeleteSession": (False, "DeleteSessionRequest", "DeleteSessionResponse"),
    "GetServerInfo": (False, "GetServerInfoRequest", "ServerInfo"),
}


class Protos:
    """The troupe.v1 message classes, compiled into `out_dir` with protoc."""

    def __init__(self, out_dir):
        proto_root = os.path.join(REPO, "proto")
        sources = [os.path.join(proto_root, "troupe", "v1", name)
                   for name in ("roleplay.proto", "character.proto")]
        os.makedirs(out_dir, exist_ok=True)
        subprocess.run(["protoc", "-I", proto_root, "--python_out", out_dir, *sources], check=True)
        if out_dir not in sys.path:
            sys.path.insert(0, out_dir)
        self.out_dir = out_dir
        self.rp = importlib.import_module("troupe.v1.roleplay_pb2")
        self.cp = importlib.import_module("troupe.v1.character_pb2")

    def __getattr__(self, name):
        for module in (self.rp, self.cp):
            if hasattr(module, name):
                return getattr(module, name)
        raise AttributeError(name)


class RolePlay:
    """troupe.v1.RolePlay over one channel: stub.Chat(request, timeout=, metadata=) etc."""

    def __init__(self, channel, protos):
        for name, (streaming, request_type, response_type) in METHODS.items():
            make = channel.unary_stream if streaming else channel.unary_unary
            setattr(self, name, make(SERVICE + name,
                                     request_serializer=getattr(protos, request_type).SerializeToString,
                                     response_deserializer=getattr(protos, response_type).FromString))
        # Raw bytes in and out, for requests that are not valid protobuf at all.
        self.raw_unary = lambda name: channel.unary_unary(
            SERVICE + name, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        self.raw_stream = lambda name: channel.unary_stream(
            SERVICE + name, request_serializer=lambda b: b, response_deserializer=lambda b: b)


class Checks:
    """The verdicts of a test script: checks(condition, what) records and prints each failure;
    checks.exit_code() is 1 when any failed."""

    def __init__(self):
        self.failures = []

    def __call__(self, condition, what):
        if not condition:
            self.failures.append(what)
            print("FAIL:", what)

    def exit_code(self):
        return 1 if self.failures else 0


def code_name(error):
    """The gRPC status code name of an RpcError ("CANCELLED"), or "OK" for None."""
    if error is None:
        return "OK"
    code = error.code() if hasattr(error, "code") else None
    return code.name if code is not None else "UNKNOWN"


# ---- API keys ----

def supports_api_keys(binary):
    """True when this troupe-server build has --api-keys (issue #13's tenants)."""
    result = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30)
    return "--api-keys" in result.stdout + result.stderr


def write_keys_file(path, tenants):
    """Writes an --api-keys file with one fresh key per tenant; returns {tenant: key}."""
    keys = {}
    with open(path, "w") as out:
        out.write("# made by scripts/reliability for one run\n")
        for tenant in tenants:
            key = "trk-" + secrets.token_hex(16)
            keys[tenant] = key
            out.write(f"{tenant} sha256:{hashlib.sha256(key.encode()).hexdigest()}\n")
    return keys


# ---- the server process ----

def _die_with_parent():
    """In the child before exec: SIGKILL it when the driver dies, so no server outlives a
    driver that was killed or crashed (Linux prctl PR_SET_PDEATHSIG)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)


class Server:
    """troupe-server as a child process on 127.0.0.1 with free ports; its log goes to a file."""

    def __init__(self, binary, data_dir, log_path, extra_args=(), model=DEFAULT_MODEL):
        self.binary = binary
        self.args = [binary, "--listen", "127.0.0.1:0", "--metrics-port", "0",
                     "--metrics-host", "127.0.0.1", "--http-listen", "127.0.0.1:0", "--data-dir", data_dir, "--model", model,
                     "--embedding-model", DEFAULT_EMBEDDER, *extra_args]
        self.log_path = log_path
        self.process = None
        self.port = None
        self.metrics_port = None
        self.http_port = None

    @property
    def pid(self):
        return self.process.pid

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s=180):
        """Starts the server and waits until its log names both ports."""
        log = open(self.log_path, "a")
        log.write(f"---- start: {' '.join(self.args)}\n")
        log.flush()
        offset = log.tell()
        self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, cwd=REPO,
                                        preexec_fn=_die_with_parent)
        log.close()
        deadline = time.monotonic() + timeout_s
        self.port = self.metrics_port = None
        while time.monotonic() < deadline:
            with open(self.log_path) as f:
                f.seek(offset)
                text = f.read()
            serving = re.search(r"serving .* on [0-9.]+:(\d+)\s*$", text, re.M)
            metrics = re.search(r"metrics on http://[^:]+:(\d+)/metrics", text)
            if serving and metrics:
                self.port, self.metrics_port = int(serving.group(1)), int(metrics.group(1))
                http = re.search(r"OpenAI-compatible HTTP on http://[^:]+:(\d+)/v1", text)
                self.http_port = int(http.group(1)) if http else None
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"troupe-server exited with {self.process.returncode}:\n"
                                   + text[-3000:])
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"troupe-server did not start in {timeout_s} s; see {self.log_path}")

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def kill(self, sig=signal.SIGKILL):
        if self.alive():
            self.process.send_signal(sig)
        if self.process is not None:
            self.process.wait()

    def stop(self, timeout_s=60):
        """SIGTERM and wait; SIGKILL past timeout_s. Returns the exit code."""
        if not self.alive():
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def metrics(self, timeout_s=10):
        """The /metrics page as {"name{labels}": value}."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return parse_metrics(response.read().decode())


def parse_metrics(text):
    values = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        try:
            values[key] = float(value)
        except ValueError:
            continue
    return values


# ---- /proc ----

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def thread_count(pid):
    return len(os.listdir(f"/proc/{pid}/task"))
