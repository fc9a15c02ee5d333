"""The crash test's verdict on one session (scripts/crash-test.sh): does the history the server
returns after a SIGKILL and a restart hold every turn the client saw acknowledged? Pure logic,
no gRPC, tested by tests/scripts/crash_check_test.py.

A turn is acknowledged when its Chat stream ended OK: the server commits a durable turn before
it sends the final message, so it must survive any crash after that. A turn whose stream was
cut by the kill is in doubt: it may be there or not, but never half (a user message with no
reply after it).
"""

USER, ASSISTANT = "user", "assistant"


def check_session(acked, in_doubt, history):
    """acked: [(user message, streamed reply)] in the order their streams ended OK.
    in_doubt: {user message} sent but not acknowledged.
    history: [(role, content)] as GetSession returns it (greeting first).
    Returns a list of problems; empty when the history is consistent with the ledger."""
    problems = []
    positions = {}
    for i, (role, content) in enumerate(history):
        if role != USER:
            continue
        if content in positions:
            problems.append(f"user message {content!r} appears twice")
        positions[content] = i
        if content not in in_doubt and all(content != message for message, _ in acked):
            problems.append(f"user message {content!r} was never sent")

    def reply_after(i):
        if i + 1 < len(history) and history[i + 1][0] == ASSISTANT:
            return history[i + 1][1]
        return None

    last = -1
    for message, reply in acked:
        i = positions.get(message)
        if i is None:
            problems.append(f"acknowledged turn {message!r} is missing")
            continue
        stored = reply_after(i)
        if stored is None:
            problems.append(f"acknowledged turn {message!r} has no reply in the history")
        elif stored != reply.strip():
            problems.append(f"acknowledged turn {message!r}: reply {stored!r} != streamed "
                            f"{reply.strip()!r}")
        if i < last:
            problems.append(f"acknowledged turn {message!r} is out of order")
        last = max(last, i)
    for message in in_doubt:
        i = positions.get(message)
        if i is not None and reply_after(i) is None:
            problems.append(f"turn {message!r} was stored half (no reply)")
    return problems


def settle(acked, in_doubt, history):
    """The acknowledged turns once a restarted server has decided the ones in doubt: those in
    the history join the acknowledged ones (with the stored reply), in history order.
    REQUIRES: check_session(acked, in_doubt, history) found no problem."""
    replies = dict(acked)
    turns = []
    for i, (role, content) in enumerate(history):
        if role == USER and (content in replies or content in in_doubt):
            reply = replies.get(content, history[i + 1][1])
            turns.append((content, reply))
    return turns
