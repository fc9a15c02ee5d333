"""Two troupe servers on one PostgreSQL database, from outside (issue #14): a session created
and chatted on the first continues on the second, with its whole history, after the first is
killed with SIGKILL; and while both run, a turn given on one is in the other's next read.

Each server is the real binary (argument 1) with --database pointing at a database of this
test's own on the server of ctest's fixture "postgres" (TROUPE_TEST_POSTGRES_URL, the admin
URL; scripts/postgres-test-server.sh). Needs python3-grpcio and python3-protobuf, and psql.
"""
import os
import signal
import subprocess
import sys
import tempfile

import grpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "reliability"))
import troupe_rig as rig  # noqa: E402


def psql(url, sql):
    subprocess.run(["psql", url, "-qAtc", sql], check=True, capture_output=True, text=True)


def chat(stub, pb, session_id, text):
    request = pb.ChatRequest(session_id=session_id, message=text.encode())
    request.sampling.max_tokens = 16
    request.sampling.temperature = 0
    final = None
    for response in stub.Chat(request, timeout=300, metadata=(("x-session-id", session_id),)):
        if response.finish_reason:
            final = response
    return final


def user_messages(session):
    return [m.content for m in session.history if m.role == 2]  # ROLE_USER


def main():
    binary = sys.argv[1]
    admin = os.environ.get("TROUPE_TEST_POSTGRES_URL")
    if not admin:
        print("FAIL: TROUPE_TEST_POSTGRES_URL is not set: run through ctest (fixture postgres)")
        return 1
    name = f"shared_db_test_{os.getpid()}"
    psql(admin, f"DROP DATABASE IF EXISTS {name}")
    psql(admin, f"CREATE DATABASE {name}")
    database = admin.replace("/postgres?", f"/{name}?", 1)
    check = rig.Checks()

    servers = []
    try:
        with tempfile.TemporaryDirectory(prefix="troupe-shared-db-") as tmp:
            pb = rig.Protos(os.path.join(tmp, "protos"))

            def start(tag):
                server = rig.Server(binary, os.path.join(tmp, f"data-{tag}"), os.path.join(tmp, f"{tag}.log"),
                                    extra_args=["--database", database, "--threads", "2"])
                server.start()
                servers.append(server)
                return server, rig.RolePlay(grpc.insecure_channel(server.address), pb)

            first, stub1 = start("first")
            character = stub1.CreateCharacter(pb.CreateCharacterRequest(profile=pb.CharacterProfile(
                name="Ione", description="Ione runs the ferry across the grey river.",
                first_message="Ione waves from the ferry.")), timeout=60).character_id
            session_id = stub1.CreateSession(pb.CreateSessionRequest(
                character_id=character, setup=pb.SessionSetup(user_name="Wren", user_id="wren")),
                timeout=60).session_id
            said = ["My sister Lyra keeps bees behind the old mill.", "I also have a dog called Pip."]
            turn2 = None
            for text in said:
                turn2 = chat(stub1, pb, session_id, text)
                check(turn2 is not None, f"turn {text!r} finished on the first server")

            # Both running: a turn given on the second is in the first's next read.
            second, stub2 = start("second")
            turn3 = chat(stub2, pb, session_id, "We crossed at dawn.")
            said.append("We crossed at dawn.")
            check(turn3 is not None, "turn 3 finished on the second server while the first runs")
            seen_by_first = stub1.GetSession(pb.GetSessionRequest(session_id=session_id), timeout=60)
            check(user_messages(seen_by_first) == said, f"the first server reads turn 3: {user_messages(seen_by_first)}")

            first.kill(signal.SIGKILL)
            session = stub2.GetSession(pb.GetSessionRequest(session_id=session_id), timeout=60)
            check(user_messages(session) == said, f"the second server has the whole history: {user_messages(session)}")
            check(session.history[0].content == "Ione waves from the ferry.", "the greeting is first")
            turn4 = chat(stub2, pb, session_id, "Who keeps bees behind the mill?")
            check(turn4 is not None, "turn 4 finished on the second server after the first was killed")
            if turn4 is not None and turn2 is not None:
                check(turn4.usage.prompt_tokens > turn2.usage.prompt_tokens,
                      f"turn 4's prompt ({turn4.usage.prompt_tokens} tokens) holds more history than turn 2's "
                      f"({turn2.usage.prompt_tokens})")
            final = stub2.GetSession(pb.GetSessionRequest(session_id=session_id), timeout=60)
            check(len(user_messages(final)) == 4, "four turns in the session")
    finally:
        for server in servers:
            server.kill()
        psql(admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    print(f"shared_database_test: {len(check.failures)} failure(s)")
    return check.exit_code()


if __name__ == "__main__":
    sys.exit(main())
