#!/usr/bin/env python3
"""The soak (scripts/soak.sh): the real troupe-server on the default model with N concurrent
client streams for a while, mixing plain turns with everything a hostile or careless client
does, then a report (soak_report.py) that fails on any code nobody provoked, KV blocks left
in use, RSS growth or descriptor leaks. Exit 0 only when every check passes.

Each stream is one thread running one call at a time, picked at random by weight (ACTIONS):
chat turns on durable sessions (stored characters, memories on) and on inline sessions,
Generate, cancellations mid-stream, short deadlines, disconnects (a channel closed mid-stream,
or a client process killed with SIGKILL mid-stream), oversized and malformed requests,
unparseable bytes, and probes for ids the caller must not see: another tenant's when the
server has --api-keys (then also calls with no key or a wrong one), else ids nobody made.
"""
import argparse
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import soak_report  # noqa: E402
import troupe_rig  # noqa: E402

ACTIONS = [("chat", 30), ("chat_inline", 14), ("generate", 12), ("cancel", 10), ("deadline", 8),
           ("disconnect", 5), ("oversized", 4), ("malformed", 7), ("probe", 6)]
TURNS_PER_SESSION = 6  # then the session is deleted and a new one made
WORDS = ("lantern harbor violet storm quiet ember riddle orchard copper meadow falcon ribbon "
         "thunder willow marble cinder").split()


class Tally:
    """(action, code) -> count, and the first message seen for each pair. Thread-safe."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.examples = {}

    def add(self, action, error=None, code=None):
        code = code or troupe_rig.code_name(error)
        with self.lock:
            self.counts[(action, code)] = self.counts.get((action, code), 0) + 1
            if error is not None and (action, code) not in self.examples:
                details = error.details() if hasattr(error, "details") else str(error)
                self.examples[(action, code)] = (details or "")[:200]


class Registry:
    """The ids each tenant owns, for the cross-tenant probes. Thread-safe."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sessions = {}    # tenant -> set of session ids
        self.characters = {}  # tenant -> [character id]

    def add_session(self, tenant, session_id):
        with self.lock:
            self.sessions.setdefault(tenant, set()).add(session_id)

    def drop_session(self, tenant, session_id):
        with self.lock:
            self.sessions.get(tenant, set()).discard(session_id)

    def pick_other(self, tenant, rng):
        with self.lock:
            others = [t for t in self.sessions if t != tenant and self.sessions[t]]
            if not others:
                return None, None
            other = rng.choice(others)
            return rng.choice(sorted(self.sessions[other])), rng.choice(self.characters[other])

    def ids_of_others(self, tenant):
        with self.lock:
            ids = set()
            for t, sessions in self.sessions.items():
                if t != tenant:
                    ids |= sessions | set(self.characters.get(t, []))
            return ids


class Run:
    """What every worker shares."""

    def __init__(self, args, protos, server, keys):
        self.args, self.pb, self.server, self.keys = args, protos, server, keys
        self.actions = args.actions
        self.tally = Tally()
        self.registry = Registry()
        self.stop_at = None
        self.stopping = threading.Event()
        self.channels = []
        self.stubs = []
        self.live_calls = set()
        self.live_children = set()
        self.live_lock = threading.Lock()

    def metadata(self, tenant, style=0):
        if tenant not in self.keys:
            return ()
        key = self.keys[tenant]
        return (("x-api-key", key),) if style % 2 == 0 else (("authorization", f"Bearer {key}"),)


# ---- the worker ----

class Worker:
    def __init__(self, run, index):
        self.run = run
        self.pb = run.pb
        self.index = index
        self.rng = random.Random(run.args.seed * 1000003 + index)
        tenants = sorted(run.keys) or [""]
        self.tenant = tenants[index % len(tenants)]
        self.md = run.metadata(self.tenant, index)
        self.stub = run.stubs[index % len(run.stubs)]
        self.durable = None  # (session id, turns so far)
        self.inline = None

    # -- helpers --

    def sampling(self):
        return self.pb.SamplingParams(max_tokens=self.rng.randint(4, 24), temperature=0.8,
                                      seed=self.rng.randint(1, 1 << 30))

    def message(self):
        return " ".join(self.rng.choice(WORDS) for _ in range(self.rng.randint(3, 12))).encode()

    def stream(self, action, call_fn, request, timeout=None, cancel_after=None, md=None):
        """Runs one streaming call to its end (or cancels it after `cancel_after` messages)."""
        call = call_fn(request, timeout=timeout, metadata=self.md if md is None else md)
        with self.run.live_lock:
            self.run.live_calls.add(call)
        error, seen = None, 0
        try:
            for _ in call:
                seen += 1
                if cancel_after is not None and seen >= cancel_after:
                    call.cancel()
        except grpc.RpcError as e:
            error = e
        finally:
            with self.run.live_lock:
                self.run.live_calls.discard(call)
        if self.run.stopping.is_set() and error is not None and \
                troupe_rig.code_name(error) == "CANCELLED" and action not in ("cancel", "disconnect"):
            action = "stop"
        self.run.tally.add(action, error)
        return error

    def unary(self, action, fn, request, md=None, timeout=60):
        try:
            response = fn(request, timeout=timeout, metadata=self.md if md is None else md)
            self.run.tally.add(action)
            return response
        except grpc.RpcError as e:
            self.run.tally.add(action, e)
            return None

    def session(self, durable):
        """The worker's current session of that kind, made (and the old one deleted) as needed."""
        current = self.durable if durable else self.inline
        if current is not None and current[1] < TURNS_PER_SESSION:
            return current
        if current is not None:
            self.run.registry.drop_session(self.tenant, current[0])
            self.unary("delete_session", self.stub.DeleteSession,
                       self.pb.DeleteSessionRequest(session_id=current[0]))
        if durable:
            characters = self.run.registry.characters[self.tenant]
            request = self.pb.CreateSessionRequest(
                character_id=self.rng.choice(characters),
                setup=self.pb.SessionSetup(user_name=f"Visitor{self.index}",
                                           user_id=f"user-{self.index % 7}"))
        else:
            request = self.pb.CreateSessionRequest(character=self.pb.Character(
                name="Quill", system_prompt="You are Quill, a terse archivist. Answer briefly."))
        created = self.unary("create_session", self.stub.CreateSession, request)
        if created is None:
            return None
        current = [created.session_id, 0]
        self.run.registry.add_session(self.tenant, created.session_id)
        if durable:
            self.durable = current
        else:
            self.inline = current
        return current

    def chat_request(self, session_id):
        memory = None
        if self.rng.random() < 0.7:  # most turns say their emotion; the rest have it rated
            memory = self.pb.MemoryOptions(turn_emotion=self.pb.EmotionVector(
                joy=5, acceptance=5, fear=1, surprise=2, sadness=1, disgust=1, anger=1,
                anticipation=4))
        return self.pb.ChatRequest(session_id=session_id, message=self.message(),
                                   sampling=self.sampling(), memory=memory)

    # -- actions --

    def do_chat(self, durable):
        current = self.session(durable)
        if current is None:
            return
        error = self.stream("chat" if durable else "chat_inline", self.stub.Chat,
                            self.chat_request(current[0]))
        if error is None:
            current[1] += 1

    def do_generate(self):
        request = self.pb.GenerateRequest(prompt=b"The old lighthouse keeper said " + self.message(),
                                          sampling=self.sampling(), cache_salt=f"s{self.index % 3}")
        self.stream("generate", self.stub.Generate, request)

    def pick_stream_call(self):
        choice = self.rng.random()
        if choice < 0.4:
            current = self.session(True)
            if current is not None:
                return self.stub.Chat, self.chat_request(current[0])
        if choice < 0.7:
            current = self.session(False)
            if current is not None:
                return self.stub.Chat, self.chat_request(current[0])
        return self.stub.Generate, self.pb.GenerateRequest(
            prompt=b"Write a long story about " + self.message(),
            sampling=self.pb.SamplingParams(max_tokens=64, temperature=0.8))

    def do_cancel(self):
        fn, request = self.pick_stream_call()
        self.stream("cancel", fn, request, cancel_after=self.rng.randint(1, 3))

    def do_deadline(self):
        fn, request = self.pick_stream_call()
        self.stream("deadline", fn, request, timeout=self.rng.uniform(0.05, 1.5))

    def do_disconnect(self):
        fn_name = "Chat"
        current = self.session(self.rng.random() < 0.5)
        if current is None:
            return
        request = self.chat_request(current[0])
        if self.rng.random() < 0.5:
            # A client process that dies mid-stream: the server sees its socket close.
            child = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--child", self.run.server.address,
                 "--pb-dir", self.run.pb.out_dir, "--child-method", fn_name],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            with self.run.live_lock:
                self.run.live_children.add(child)
            child.stdin.write(request.SerializeToString())
            child.stdin.close()
            line = child.stdout.readline()  # "streaming" once the first message arrived
            child.send_signal(signal.SIGKILL)
            child.wait()
            child.stdout.close()
            with self.run.live_lock:
                self.run.live_children.discard(child)
            self.run.tally.add("disconnect", code="OK" if line.startswith(b"done") else "CANCELLED")
            return
        # A channel closed mid-stream.
        channel = grpc.insecure_channel(self.run.server.address)
        stub = troupe_rig.RolePlay(channel, self.pb)
        call = stub.Chat(request, metadata=self.md)
        try:
            next(call)
            channel.close()
            for _ in call:
                pass
            self.run.tally.add("disconnect")
        except StopIteration:
            self.run.tally.add("disconnect")
        except grpc.RpcError as e:
            self.run.tally.add("disconnect", e)
        except ValueError:  # the closed channel, from the iterator
            self.run.tally.add("disconnect", code="CANCELLED")
        finally:
            channel.close()

    def do_oversized(self):
        kind = self.rng.randrange(4)
        if kind == 0:  # a chat message over 64 KiB
            current = self.session(self.rng.random() < 0.5)
            if current is not None:
                request = self.pb.ChatRequest(session_id=current[0], message=b"big " * 40000)
                self.stream("oversized", self.stub.Chat, request)
        elif kind == 1:  # a prompt far past the context
            self.stream("oversized", self.stub.Generate,
                        self.pb.GenerateRequest(prompt=b"lantern " * 60000))
        elif kind == 2:  # a character text over 256 KiB
            profile = self.pb.CharacterProfile(name="Huge", description="x" * (300 << 10))
            self.unary("oversized", self.stub.CreateCharacter,
                       self.pb.CreateCharacterRequest(profile=profile))
        else:  # a card over 2 MiB
            card = b'{"spec":"chara_card_v2","data":{"name":"Big","description":"' + \
                b"y" * (3 << 20) + b'"}}'
            self.unary("oversized", self.stub.CreateCharacter,
                       self.pb.CreateCharacterRequest(card_json=card))

    def do_malformed(self):
        pb = self.pb
        kind = self.rng.randrange(9)
        current = self.session(False)
        session_id = current[0] if current else "0" * 32
        if kind == 0:
            self.stream("malformed", self.stub.Generate, pb.GenerateRequest(prompt=b"ok \xff\xfe bad"))
        elif kind == 1:
            self.stream("malformed", self.stub.Chat, pb.ChatRequest(session_id=session_id, message=b""))
        elif kind == 2:
            self.stream("malformed", self.stub.Generate,
                        pb.GenerateRequest(prompt=b"both", prompt_token_ids=[1, 2]))
        elif kind == 3:
            self.stream("malformed", self.stub.Generate,
                        pb.GenerateRequest(prompt_token_ids=[1, 99999999]))
        elif kind == 4:
            self.stream("malformed", self.stub.Generate, pb.GenerateRequest(
                prompt=b"hi", sampling=pb.SamplingParams(temperature=-3, top_p=7)))
        elif kind == 5:
            self.stream("malformed", self.stub.Chat, pb.ChatRequest(session_id="", message=b"hi"))
        elif kind == 6:
            self.unary("malformed", self.stub.CreateCharacter,
                       pb.CreateCharacterRequest(card_json=b'{"spec":"chara_card_v2","data":[1,'))
        elif kind == 7:
            deep = "[" * 20000 + "]" * 20000
            self.unary("malformed", self.stub.CreateCharacter, pb.CreateCharacterRequest(
                profile=pb.CharacterProfile(name="Deep", extensions_json=deep)))
        else:  # not protobuf at all
            garbage = bytes(self.rng.randrange(256) for _ in range(self.rng.randint(1, 64)))
            garbage = b"\xff\xff\xff\xff\x0f" + garbage
            method = self.rng.choice(["Chat", "Generate"])
            try:
                for _ in self.stub.raw_stream(method)(garbage, timeout=30, metadata=self.md):
                    pass
                self.run.tally.add("wire_garbage")
            except grpc.RpcError as e:
                self.run.tally.add("wire_garbage", e)

    def do_probe(self):
        pb = self.pb
        if self.run.keys:
            kind = self.rng.randrange(10)
            if kind == 0:
                self.unary("no_key", self.stub.GetServerInfo, pb.GetServerInfoRequest(), md=())
                return
            if kind == 1:
                wrong = (("x-api-key", "trk-" + "0" * 32),)
                self.unary("no_key", self.stub.ListSessions, pb.ListSessionsRequest(), md=wrong)
                return
            if kind == 2:
                self.list_probe()
                return
            session_id, character_id = self.run.registry.pick_other(self.tenant, self.rng)
            if session_id is None:
                return
            action = "cross_tenant"
        else:
            session_id, character_id = os.urandom(16).hex(), os.urandom(16).hex()
            action = "unknown_id"
        kind = self.rng.randrange(8)
        if kind == 0:
            self.unary(action, self.stub.GetSession, pb.GetSessionRequest(session_id=session_id))
        elif kind == 1:
            self.stream(action, self.stub.Chat, pb.ChatRequest(session_id=session_id, message=b"hello"))
        elif kind == 2:
            self.unary(action, self.stub.DeleteSession, pb.DeleteSessionRequest(session_id=session_id))
        elif kind == 3:
            self.unary(action, self.stub.GetCharacter, pb.GetCharacterRequest(character_id=character_id))
        elif kind == 4:
            self.unary(action, self.stub.ExportCharacter,
                       pb.ExportCharacterRequest(character_id=character_id))
        elif kind == 5:
            self.unary(action, self.stub.UpdateCharacter, pb.UpdateCharacterRequest(
                character_id=character_id, profile=pb.CharacterProfile(name="Stolen")))
        elif kind == 6:
            self.unary(action, self.stub.DeleteCharacter,
                       pb.DeleteCharacterRequest(character_id=character_id))
        else:
            self.unary(action, self.stub.CreateSession,
                       pb.CreateSessionRequest(character_id=character_id))

    def list_probe(self):
        """ListSessions and ListCharacters of this tenant must show no other tenant's id."""
        others = self.run.registry.ids_of_others(self.tenant)
        try:
            sessions = self.stub.ListSessions(self.pb.ListSessionsRequest(page_size=1000),
                                              timeout=60, metadata=self.md)
            characters = self.stub.ListCharacters(self.pb.ListCharactersRequest(page_size=1000),
                                                  timeout=60, metadata=self.md)
        except grpc.RpcError as e:
            self.run.tally.add("cross_tenant_list", e)
            return
        seen = {s.session_id for s in sessions.sessions} | \
            {c.character_id for c in characters.characters}
        self.run.tally.add("cross_tenant_list", code="LEAKED" if seen & others else "OK")

    def loop(self):
        names = [name for name, _ in self.run.actions]
        weights = [weight for _, weight in self.run.actions]
        while time.monotonic() < self.run.stop_at:
            action = self.rng.choices(names, weights)[0]
            try:
                if action == "chat":
                    self.do_chat(True)
                elif action == "chat_inline":
                    self.do_chat(False)
                else:
                    getattr(self, "do_" + action)()
            except Exception as e:  # a driver bug must not pass as a quiet run
                self.run.tally.add("driver_error", code=type(e).__name__)
                print(f"soak: worker {self.index}: {action}: {e!r}", file=sys.stderr)
                time.sleep(0.5)


# ---- setup, sampling, drain ----

def make_characters(run, stub):
    pb = run.pb
    for tenant in sorted(run.keys) or [""]:
        md = run.metadata(tenant)
        ids = []
        for name in ("Mira", "Tobin"):
            profile = pb.CharacterProfile(
                name=name, description=f"{name} keeps the lighthouse on a stormy coast.",
                personality="warm, wry, observant", scenario="A storm night at the lighthouse.",
                first_message=f"*{name} lifts the lantern.* Who goes there?",
                lorebook=pb.Lorebook(entries=[pb.LoreEntry(
                    keys=["storm"], content="Storms here last three days.", enabled=True)]))
            ids.append(stub.CreateCharacter(pb.CreateCharacterRequest(profile=profile),
                                            timeout=60, metadata=md).character_id)
        run.registry.characters[tenant] = ids
        run.registry.sessions.setdefault(tenant, set())


def sample_loop(run, samples, t0):
    while not run.stopping.is_set():
        t = time.monotonic() - t0
        try:
            samples.append((t, troupe_rig.rss_kib(run.server.pid), troupe_rig.fd_count(run.server.pid),
                            troupe_rig.thread_count(run.server.pid)))
        except OSError:
            return
        run.stopping.wait(1.0)


def wait_idle_fds(server, target, timeout_s=30):
    """Descriptors once the clients are gone: polls until <= target or the timeout."""
    deadline = time.monotonic() + timeout_s
    count = troupe_rig.fd_count(server.pid)
    while count > target and time.monotonic() < deadline:
        time.sleep(0.5)
        count = troupe_rig.fd_count(server.pid)
    return count


def wait_kv_free(server, timeout_s):
    """Waits until the engine has nothing running or waiting and no memory write or rating is
    pending (ratings run on the engine). Returns (kv_blocks_used then, memory writes pending at
    the start, seconds the drain took)."""
    start = time.monotonic()
    deadline = start + timeout_s
    first = server.metrics()
    pending_at_start = first.get("troupe:memory_writes_pending")
    used = None
    while time.monotonic() < deadline:
        m = server.metrics()
        used = m.get("troupe:kv_blocks_used")
        if used == 0 and m.get("troupe:num_requests_running") == 0 and \
                m.get("troupe:num_requests_waiting") == 0 and \
                m.get("troupe:memory_writes_pending", 0) == 0 and \
                m.get("troupe:memory_ratings_pending", 0) == 0:
            break
        time.sleep(1.0)
    return used, pending_at_start, time.monotonic() - start


def server_codes(metrics):
    codes = {}
    for key, value in metrics.items():
        match = re.match(r'troupe:requests_total\{code="([A-Z_]+)"\}', key)
        if match:
            codes[match.group(1)] = value
    return codes


def log_problems(path):
    problems = []
    with open(path, errors="replace") as f:
        for line in f:
            if re.search(r"CHECK failed|Check failed|terminate called|AddressSanitizer|"
                         r"runtime error:|Segmentation|Aborted", line):
                problems.append(line.strip()[:200])
    return problems


def soak(args):
    work = tempfile.mkdtemp(prefix="troupe-soak.")
    print(f"soak: work folder {work}")
    protos = troupe_rig.Protos(os.path.join(work, "pb"))
    tenants_mode = "single (this server has no --api-keys)"
    extra = ["--max-waiting", str(max(256, 2 * args.streams + 64))]
    keys = {}
    if troupe_rig.supports_api_keys(args.server):
        keys = troupe_rig.write_keys_file(os.path.join(work, "keys.txt"), ["tenant-a", "tenant-b"])
        extra += ["--api-keys", os.path.join(work, "keys.txt")]
        tenants_mode = "two tenants (--api-keys)"
    extra += args.server_arg
    server = troupe_rig.Server(args.server, os.path.join(work, "data"),
                               os.path.join(work, "server.log"), extra)
    server.start()
    print(f"soak: troupe-server pid {server.pid} on {server.address}, metrics :{server.metrics_port}; "
          f"tenants: {tenants_mode}")
    run = Run(args, protos, server, keys)
    num_channels = max(1, (args.streams + 24) // 25)
    run.channels = [grpc.insecure_channel(server.address) for _ in range(num_channels)]
    run.stubs = [troupe_rig.RolePlay(c, protos) for c in run.channels]
    make_characters(run, run.stubs[0])
    server.metrics()
    fds_idle_before = troupe_rig.fd_count(server.pid)

    samples = []
    t0 = time.monotonic()
    run.stop_at = t0 + args.duration
    sampler = threading.Thread(target=sample_loop, args=(run, samples, t0), daemon=True)
    sampler.start()
    workers = [Worker(run, i) for i in range(args.streams)]
    threads = [threading.Thread(target=w.loop, daemon=True) for w in workers]
    for thread in threads:
        thread.start()
    next_print = t0 + 30
    while time.monotonic() < run.stop_at:
        time.sleep(min(1.0, max(0.0, run.stop_at - time.monotonic())))
        if time.monotonic() >= next_print and samples:
            t, rss, fds, nthreads = samples[-1]
            ok = sum(n for (a, c), n in run.tally.counts.items() if c == "OK")
            print(f"soak: t={t:.0f}s rss={rss / 1024:.1f}MiB fds={fds} threads={nthreads} ok_calls={ok}",
                  flush=True)
            next_print += 30
    # Time is up: calls still in flight get a grace period, then are cancelled.
    grace_end = time.monotonic() + args.grace
    for thread in threads:
        thread.join(timeout=max(0.0, grace_end - time.monotonic()))
    run.stopping.set()
    with run.live_lock:
        for call in list(run.live_calls):
            call.cancel()
        for child_process in list(run.live_children):
            child_process.send_signal(signal.SIGKILL)
    for thread in threads:
        thread.join(timeout=60)
    stuck = sum(t.is_alive() for t in threads)
    load_s = time.monotonic() - t0
    for channel in run.channels:
        channel.close()

    kv_end, pending_at_end, drain_s = (wait_kv_free(server, args.drain_timeout)
                                       if server.alive() else (None, None, 0.0))
    fds_idle_after = wait_idle_fds(server, fds_idle_before) if server.alive() else None
    metrics = server.metrics() if server.alive() else {}
    alive = server.alive()
    result = {
        "streams": args.streams,
        "duration_s": args.duration,
        "tenants_mode": tenants_mode,
        "counts": dict(run.tally.counts),
        "plain_actions": [a for a in soak_report.PLAIN_ACTIONS if a in dict(args.actions)],
        "server_codes": server_codes(metrics),
        "server_alive": alive,
        "server_log_problems": log_problems(server.log_path),
        "kv_blocks_end": kv_end,
        "rss_samples": [(t, rss) for t, rss, _, _ in samples if t <= args.duration],
        "fds_idle_before": fds_idle_before,
        "fds_idle_after": fds_idle_after,
    }
    if stuck:
        result["counts"][("driver_stuck_thread", "UNKNOWN")] = stuck
    checks = soak_report.evaluate(result)
    print(soak_report.format_report(result, checks))
    if run.tally.examples:
        print("first message per (action, code):")
        for (action, code), text in sorted(run.tally.examples.items()):
            print(f"  {action}:{code}: {text}")
    fd_values = [fds for _, _, fds, _ in samples]
    thread_values = [n for _, _, _, n in samples]
    if fd_values:
        print(f"descriptors during the load: min {min(fd_values)}, max {max(fd_values)}; "
              f"threads: min {min(thread_values)}, max {max(thread_values)}; "
              f"load took {load_s:.0f} s")
    print(f"memory writes pending when the load stopped: {pending_at_end}; the drain took "
          f"{drain_s:.0f} s")
    print(f"generation tokens: {metrics.get('troupe:generation_tokens_total', 0):.0f}, "
          f"prompt tokens computed: {metrics.get('troupe:prompt_tokens_total', 0):.0f}, "
          f"preemptions: {metrics.get('troupe:num_preemptions_total', 0):.0f}")
    stop_start = time.monotonic()
    code = server.stop(timeout_s=args.stop_timeout)
    stop_s = time.monotonic() - stop_start
    print(f"soak: SIGTERM -> exit {code} in {stop_s:.1f} s; log: {server.log_path}")
    passed = all(c.ok for c in checks)
    if args.samples_out:
        with open(args.samples_out, "w") as out:
            out.write("t_s rss_kib fds threads\n")
            for t, rss, fds, n in samples:
                out.write(f"{t:.1f} {rss} {fds} {n}\n")
    if passed and not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if passed else 1


def child(args):
    """A client process that streams one call and gets killed by its parent mid-stream."""
    protos = troupe_rig.Protos(args.pb_dir)
    request_bytes = sys.stdin.buffer.read()
    channel = grpc.insecure_channel(args.child)
    stub = troupe_rig.RolePlay(channel, protos)
    method = getattr(stub, args.child_method)
    request = getattr(protos, troupe_rig.METHODS[args.child_method][1]).FromString(request_bytes)
    try:
        for _ in method(request, timeout=600):
            sys.stdout.write("streaming\n")
            sys.stdout.flush()
            time.sleep(3600)  # the parent kills us here
        sys.stdout.write("done\n")
    except grpc.RpcError:
        sys.stdout.write("done\n")
    sys.stdout.flush()
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default=os.path.join(troupe_rig.REPO, "build", "server",
                                                         "troupe-server"))
    parser.add_argument("--streams", type=int, default=16)
    parser.add_argument("--minutes", type=float)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--grace", type=float, default=30.0,
                        help="seconds in-flight calls get once the time is up, before cancel")
    parser.add_argument("--drain-timeout", type=float, default=600.0,
                        help="seconds to wait for KV blocks to come back after the load")
    parser.add_argument("--server-arg", action="append", default=[],
                        help="extra troupe-server flag (repeatable), e.g. --server-arg=--threads=2")
    parser.add_argument("--stop-timeout", type=float, default=60.0,
                        help="seconds the server gets to exit after SIGTERM")
    parser.add_argument("--actions", help="weights of the actions, e.g. chat=1,cancel=1 (to find "
                        "which one a failure comes from); default: " +
                        ",".join(f"{n}={w}" for n, w in ACTIONS))
    parser.add_argument("--samples-out", help="write the RSS/fd/thread samples to this file")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--pb-dir", help=argparse.SUPPRESS)
    parser.add_argument("--child-method", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    args.duration = args.seconds if args.seconds is not None else \
        (args.minutes if args.minutes is not None else 1.0) * 60
    if args.actions:
        known = dict(ACTIONS)
        try:
            args.actions = [(name, float(weight)) for name, weight in
                            (part.split("=") for part in args.actions.split(","))]
        except ValueError:
            parser.error("--actions takes name=weight,...")
        unknown = [name for name, _ in args.actions if name not in known]
        if unknown:
            parser.error(f"unknown actions {unknown}; known: {sorted(known)}")
    else:
        args.actions = ACTIONS
    if args.streams < 1 or args.duration <= 0:
        parser.error("--streams and the duration must be positive")
    return soak(args)


if __name__ == "__main__":
    sys.exit(main())
