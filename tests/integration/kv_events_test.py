"""KV-cache events of the real server, as a router would receive them (issue #14).

Starts troupe-server with --kv-events-endpoint and two API keys (two tenants), subscribes with
pyzmq before the server binds, runs two chat turns of one session per tenant through gRPC, stops
the server with SIGTERM and checks what arrived, decoded with msgpack:
  - every message has the configured topic and consecutive 8-byte big-endian sequence numbers;
  - the first batch says AllBlocksCleared, and so does the last (the server stopped);
  - each BlockStored carries block_size tokens per hash, the block size /metrics reports in
    troupe:cache_config_info, and a parent that is nil (a chain's first block) or a hash stored
    before: the hashes chain block to block;
  - turn 1 of a session stores at least its prompt's full blocks; turn 2's cached prompt tokens,
    as the server reports them in the final ChatResponse, cover every block turn 1 stored on
    that chain, and turn 2's new blocks hang from the end of that chain;
  - the two tenants' identical prompts give disjoint hashes (the tenant salt is folded in) and
    no tenant name or key appears in any message.

Usage: kv_events_test.py TROUPE_SERVER_BINARY   (ctest passes the build's binary)
Needs python3-zmq, python3-msgpack, python3-grpcio, python3-protobuf (scripts/install-deps.sh).
"""
import os
import socket
import sys
import tempfile
import time

import grpc
import msgpack
import zmq

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "reliability"))
import troupe_rig as rig  # noqa: E402

TOPIC = b"kv@test-host@smollm2"
SYSTEM = ("You are Mara, a lighthouse keeper on a windy northern island. You speak plainly, you love "
          "storms and old sea charts, and you keep a logbook of every ship that passes. ") * 6


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Subscriber:
    def __init__(self, endpoint):
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.SUB)
        self.socket.setsockopt(zmq.SUBSCRIBE, TOPIC)
        self.socket.connect(endpoint)  # before the server binds: ZeroMQ connects when it does
        self.messages = []  # (topic, seq, raw payload, decoded batch)

    def drain(self, quiet_s=1.5, timeout_s=60):
        """Receives until nothing arrived for quiet_s."""
        deadline = time.monotonic() + timeout_s
        last = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - last < quiet_s:
            if self.socket.poll(100):
                topic, seq, payload = self.socket.recv_multipart()
                self.messages.append((topic, int.from_bytes(seq, "big"), payload, msgpack.unpackb(payload)))
                last = time.monotonic()

    def events(self, since=0):
        return [e for _, _, _, batch in self.messages[since:] for e in batch[1]]


def chat(stub, protos, metadata, session_id, message):
    request = protos.ChatRequest(session_id=session_id, message=message.encode())
    request.sampling.max_tokens = 24
    request.sampling.temperature = 0
    final = None
    for response in stub.Chat(request, timeout=300, metadata=metadata):
        if response.finish_reason:
            final = response
    assert final is not None, "no final ChatResponse"
    return final.usage


def stored_chains(events):
    """{hash: parent} and the stored events of `events`."""
    parents = {}
    stored = [e for e in events if e[0] == "BlockStored"]
    for e in stored:
        previous = e[2]
        for h in e[1]:
            parents[h] = previous
            previous = h
    return parents, stored


def chain_end(parents, start_hashes):
    """The longest chain (hashes, root first) made only of `start_hashes`, each linked to the
    one before it by its stored parent."""
    hashes = set(start_hashes)
    children = {}
    for h in hashes:
        children.setdefault(parents.get(h), []).append(h)
    best = []

    def walk(h, path):
        nonlocal best
        path = path + [h]
        if len(path) > len(best):
            best = path
        for c in children.get(h, []):
            walk(c, path)

    for root in children.get(None, []):
        walk(root, [])
    return best


def main():
    binary = sys.argv[1]
    check = rig.Checks()

    with tempfile.TemporaryDirectory(prefix="troupe-kv-events-") as tmp:
        keys = rig.write_keys_file(os.path.join(tmp, "keys"), ["acme", "globex"])
        endpoint = f"tcp://127.0.0.1:{free_port()}"
        subscriber = Subscriber(endpoint)
        server = rig.Server(binary, os.path.join(tmp, "data"), os.path.join(tmp, "server.log"),
                            extra_args=["--kv-events-endpoint", endpoint, "--kv-events-topic", TOPIC.decode(),
                                        "--api-keys", os.path.join(tmp, "keys"), "--threads", "2"])
        server.start()
        try:
            protos = rig.Protos(os.path.join(tmp, "protos"))
            channel = grpc.insecure_channel(server.address)
            stub = rig.RolePlay(channel, protos)
            metrics = server.metrics()
            config = [k for k in metrics if k.startswith("troupe:cache_config_info{")]
            check(len(config) == 1, f"one troupe:cache_config_info series, got {config}")
            block_size = int(config[0].split('block_size="')[1].split('"')[0]) if config else 16
            subscriber.drain()

            per_tenant = {}
            for tenant in ("acme", "globex"):
                md = (("authorization", "Bearer " + keys[tenant]),)
                session = stub.CreateSession(protos.CreateSessionRequest(
                    character=protos.Character(name="Mara", system_prompt=SYSTEM)), timeout=60, metadata=md)
                before = len(subscriber.messages)
                usage1 = chat(stub, protos, md, session.session_id, "Tell me about the last storm.")
                subscriber.drain()
                turn1 = subscriber.events(before)
                before = len(subscriber.messages)
                usage2 = chat(stub, protos, md, session.session_id, "And what did you write in the logbook?")
                subscriber.drain()
                turn2 = subscriber.events(before)
                per_tenant[tenant] = (usage1, usage2, turn1, turn2)
        finally:
            server.stop()
        subscriber.drain(quiet_s=1.0, timeout_s=15)

    messages = subscriber.messages
    check(len(messages) >= 3, f"at least 3 batches, got {len(messages)}")
    check(all(topic == TOPIC for topic, _, _, _ in messages), "every message has the topic")
    seqs = [seq for _, seq, _, _ in messages]
    check(seqs == list(range(seqs[0], seqs[0] + len(seqs))) if seqs else False,
          f"consecutive sequence numbers, got {seqs[:5]}...")
    check(bool(messages) and messages[0][1] == 0, "the first batch is sequence number 0")
    check(bool(messages) and messages[0][3][1][0] == ["AllBlocksCleared"], "the first batch clears everything")
    check(bool(messages) and messages[-1][3][1][-1] == ["AllBlocksCleared"], "the last batch (shutdown) clears everything")
    for _, _, _, batch in messages:
        check(isinstance(batch[0], float) and abs(batch[0] - time.time()) < 3600, "ts is seconds since the epoch")

    all_events = subscriber.events()
    parents, stored = stored_chains(all_events)
    seen = set()
    for e in all_events:
        if e[0] == "BlockStored":
            check(len(e) == 7, f"BlockStored has 7 fields: {e[:2]}")
            check(len(e[3]) == len(e[1]) * block_size, "BlockStored carries block_size tokens per hash")
            check(e[4] == block_size, f"block_size {e[4]} == /metrics' {block_size}")
            check(e[5] is None and e[6] == "CPU", f"lora_id nil and medium CPU: {e[5:]}")
            check(e[2] is None or e[2] in seen, "a stored block's parent is nil or a block stored before")
            seen.update(e[1])
        elif e[0] == "BlockRemoved":
            check(len(e) == 3, "BlockRemoved has 3 fields")

    hashes_of = {}
    for tenant, (usage1, usage2, turn1, turn2) in per_tenant.items():
        chain1 = chain_end(parents, [h for e in turn1 if e[0] == "BlockStored" for h in e[1]])
        check(len(chain1) >= usage1.prompt_tokens // block_size,
              f"{tenant}: turn 1 stored {len(chain1)} chained blocks for a {usage1.prompt_tokens}-token prompt")
        check(usage2.cached_prompt_tokens >= len(chain1) * block_size,
              f"{tenant}: turn 2 reports {usage2.cached_prompt_tokens} cached tokens, turn 1 stored "
              f"{len(chain1)} blocks of {block_size}")
        new2 = [e for e in turn2 if e[0] == "BlockStored"]
        check(bool(new2) and new2[0][2] == (chain1[-1] if chain1 else None),
              f"{tenant}: turn 2's first new block hangs from turn 1's last")
        hashes_of[tenant] = {h for e in turn1 + turn2 if e[0] == "BlockStored" for h in e[1]}
    check(not (hashes_of.get("acme", set()) & hashes_of.get("globex", set())),
          "the tenants' identical prompts have disjoint hashes")
    raw = b"".join(payload for _, _, payload, _ in messages)
    for secret in [b"acme", b"globex"] + [k.encode() for k in keys.values()]:
        check(secret not in raw, f"{secret[:8]!r}... never appears in an event")

    print(f"kv_events_test: {len(messages)} batches, {len(stored)} BlockStored events, "
          f"{len(check.failures)} failure(s)")
    return check.exit_code()


if __name__ == "__main__":
    sys.exit(main())
