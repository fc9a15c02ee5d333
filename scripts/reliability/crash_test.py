#!/usr/bin/env python3
"""Crash safety (scripts/crash-test.sh): kills troupe-server with SIGKILL at random points of a
multi-turn chat load on durable sessions (stored characters, --data-dir), restarts it each
time, and checks that every acknowledged turn (a Chat whose stream ended OK) is in the
session's history afterwards (crash_check.py), that every acknowledged character and session
still exists, and that SQLite's `PRAGMA integrity_check` says ok on troupe.db as the kill left
it (checked on a copy, so the server's own recovery runs on the original). Exit 1 on any lost
acknowledged turn or failed check.
"""
import argparse
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import threading
import time

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import crash_check  # noqa: E402
import troupe_rig  # noqa: E402

WORDS = "amber brook cedar dune ember fjord grove harbor isle juniper kestrel lagoon".split()
ROLES = {2: crash_check.USER, 3: crash_check.ASSISTANT}


class Ledger:
    """What the client knows: acknowledged and in-doubt turns per session. Thread-safe."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked = {}     # session id -> [(message, reply)]
        self.in_doubt = {}  # session id -> {message}
        self.characters = []
        self.unexpected = []  # (where, code, details) of errors no kill explains

    def add_session(self, session_id):
        with self.lock:
            self.acked.setdefault(session_id, [])
            self.in_doubt.setdefault(session_id, set())

    def sessions(self):
        with self.lock:
            return list(self.acked)


def integrity(db_path, work):
    """PRAGMA integrity_check of a copy of troupe.db and its WAL, as the kill left them."""
    copy_dir = tempfile.mkdtemp(dir=work, prefix="check.")
    try:
        for suffix in ("", "-wal"):
            if os.path.exists(db_path + suffix):
                shutil.copy2(db_path + suffix, os.path.join(copy_dir, "troupe.db" + suffix))
        connection = sqlite3.connect(os.path.join(copy_dir, "troupe.db"))
        try:
            rows = connection.execute("PRAGMA integrity_check").fetchall()
        finally:
            connection.close()
        return ", ".join(str(row[0]) for row in rows)
    finally:
        shutil.rmtree(copy_dir, ignore_errors=True)


def chat_loop(stub, pb, ledger, session_id, round_index, stop, rng, counters):
    turn = 0
    while not stop.is_set():
        turn += 1
        message = f"r{round_index} t{turn} {session_id[:6]} " + \
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 8)))
        with ledger.lock:
            ledger.in_doubt[session_id].add(message)
        request = pb.ChatRequest(session_id=session_id, message=message.encode(),
                                 sampling=pb.SamplingParams(max_tokens=rng.randint(4, 20),
                                                            temperature=0.7,
                                                            seed=rng.randint(1, 1 << 30)))
        reply = []
        try:
            for response in stub.Chat(request, timeout=120):
                reply.append(response.text)
        except grpc.RpcError as e:
            code = troupe_rig.code_name(e)
            if code != "UNAVAILABLE" and not stop.is_set():
                with ledger.lock:
                    ledger.unexpected.append((f"Chat {session_id}", code, e.details()))
            return  # the kill; whether this turn was stored is in doubt
        with ledger.lock:
            ledger.in_doubt[session_id].discard(message)
            ledger.acked[session_id].append((message, "".join(reply)))
            counters["acked"] += 1


def create_loop(stub, pb, ledger, stop, rng):
    """Makes a session now and then during the load: each acknowledged one must survive."""
    while not stop.wait(rng.uniform(1.0, 5.0)):
        try:
            session = stub.CreateSession(pb.CreateSessionRequest(
                character_id=rng.choice(ledger.characters),
                setup=pb.SessionSetup(user_name="Wren", user_id="wren")), timeout=30)
        except grpc.RpcError as e:
            if troupe_rig.code_name(e) != "UNAVAILABLE" and not stop.is_set():
                with ledger.lock:
                    ledger.unexpected.append(("CreateSession", troupe_rig.code_name(e), e.details()))
            return
        ledger.add_session(session.session_id)


def verify(stub, pb, ledger):
    """Problems with the restarted server's view of every acknowledged thing."""
    problems = []
    for character_id in ledger.characters:
        try:
            stub.GetCharacter(pb.GetCharacterRequest(character_id=character_id), timeout=60)
        except grpc.RpcError as e:
            problems.append(f"character {character_id}: {troupe_rig.code_name(e)} {e.details()}")
    turns = 0
    for session_id in ledger.sessions():
        try:
            session = stub.GetSession(pb.GetSessionRequest(session_id=session_id), timeout=60)
        except grpc.RpcError as e:
            problems.append(f"session {session_id}: {troupe_rig.code_name(e)} {e.details()}")
            continue
        history = [(ROLES.get(m.role, str(m.role)), m.content) for m in session.history]
        with ledger.lock:
            acked = list(ledger.acked[session_id])
            in_doubt = set(ledger.in_doubt[session_id])
        turns += len(acked)
        found = crash_check.check_session(acked, in_doubt, history)
        problems += [f"session {session_id}: {p}" for p in found]
        if not found:
            # The restarted server has settled the turns in doubt: from now on those it kept
            # count as acknowledged and those it lost must never come back.
            with ledger.lock:
                ledger.acked[session_id] = crash_check.settle(acked, in_doubt, history)
                ledger.in_doubt[session_id] = set()
    return problems, turns


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default=os.path.join(troupe_rig.REPO, "build", "server",
                                                         "troupe-server"))
    parser.add_argument("--kills", type=int, default=24)
    parser.add_argument("--sessions", type=int, default=4, help="sessions chatting at once")
    parser.add_argument("--min-run", type=float, default=1.0, help="seconds of load before a kill, at least")
    parser.add_argument("--max-run", type=float, default=16.0, help="... and at most")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--stop-timeout", type=float, default=60.0,
                        help="seconds the server gets to exit after the last SIGTERM")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    work = tempfile.mkdtemp(prefix="troupe-crash.")
    print(f"crash-test: work folder {work}")
    pb = troupe_rig.Protos(os.path.join(work, "pb"))
    data_dir = os.path.join(work, "data")
    db_path = os.path.join(data_dir, "troupe.db")
    server = troupe_rig.Server(args.server, data_dir, os.path.join(work, "server.log"))
    ledger = Ledger()
    failures = []
    counters = {"acked": 0, "cut": 0, "kept": 0}

    server.start()
    channel = grpc.insecure_channel(server.address)
    stub = troupe_rig.RolePlay(channel, pb)
    for name in ("Ione", "Bram"):
        profile = pb.CharacterProfile(name=name, description=f"{name} runs a ferry.",
                                      first_message=f"{name} waves from the ferry.")
        ledger.characters.append(stub.CreateCharacter(pb.CreateCharacterRequest(profile=profile),
                                                      timeout=60).character_id)
    for i in range(args.sessions):
        session = stub.CreateSession(pb.CreateSessionRequest(
            character_id=ledger.characters[i % 2],
            setup=pb.SessionSetup(user_name="Wren", user_id=f"u{i % 3}")), timeout=60)
        ledger.add_session(session.session_id)

    for round_index in range(1, args.kills + 1):
        stop = threading.Event()
        sessions = ledger.sessions()
        chatting = rng.sample(sessions, min(args.sessions, len(sessions)))
        threads = [threading.Thread(target=chat_loop, daemon=True,
                                    args=(stub, pb, ledger, s, round_index, stop,
                                          random.Random(rng.random()), counters))
                   for s in chatting]
        threads.append(threading.Thread(target=create_loop, daemon=True,
                                        args=(stub, pb, ledger, stop, random.Random(rng.random()))))
        for thread in threads:
            thread.start()
        delay = rng.uniform(args.min_run, args.max_run)
        time.sleep(delay)
        server.kill()
        stop.set()
        for thread in threads:
            thread.join(timeout=150)
        channel.close()
        verdict = integrity(db_path, work)
        if verdict != "ok":
            failures.append(f"kill {round_index}: integrity_check: {verdict}")

        server.start()
        channel = grpc.insecure_channel(server.address)
        stub = troupe_rig.RolePlay(channel, pb)
        with ledger.lock:
            cut = sum(len(v) for v in ledger.in_doubt.values())
            before = sum(len(v) for v in ledger.acked.values())
        problems, turns = verify(stub, pb, ledger)
        failures += [f"kill {round_index}: {p}" for p in problems]
        with ledger.lock:
            kept = sum(len(v) for v in ledger.acked.values()) - before
        counters["cut"] += cut
        counters["kept"] += kept
        print(f"crash-test: kill {round_index:2d} after {delay:4.1f} s: integrity {verdict}; "
              f"{turns} acknowledged turns in {len(ledger.sessions())} sessions checked; "
              f"{cut} turns cut by the kill, {kept} of them stored whole; "
              f"{len(problems)} problems", flush=True)

    channel.close()
    stop_start = time.monotonic()
    code = server.stop(timeout_s=args.stop_timeout)
    stop_s = time.monotonic() - stop_start
    final = integrity(db_path, work)
    if final != "ok":
        failures.append(f"after the last clean stop: integrity_check: {final}")
    with ledger.lock:
        unexpected = list(ledger.unexpected)
    failures += [f"unexpected {status} from {where}: {details}"
                 for where, status, details in unexpected]
    # Not a crash-safety failure, but worth seeing: SIGTERM waits for every queued memory write.
    stop_note = (f"SIGTERM stopped the server in {stop_s:.1f} s (exit {code})" if code is not None
                 else f"WARNING: SIGTERM did not stop the server in {args.stop_timeout:.0f} s; killed")
    print(f"\n== crash-test report ==\n{args.kills} SIGKILLs, {counters['acked']} acknowledged "
          f"turns in {len(ledger.sessions())} sessions, {len(ledger.characters)} characters; "
          f"{counters['cut']} turns cut by kills, {counters['kept']} of them stored whole, the "
          f"rest not at all; final integrity_check: {final}; {stop_note}")
    for failure in failures[:50]:
        print(f"  FAIL {failure}")
    print("crash-test: " + ("PASSED" if not failures else f"FAILED ({len(failures)} problems)"))
    if not failures and not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
