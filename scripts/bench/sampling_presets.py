#!/usr/bin/env python3
"""Compares sampling presets on chat replies of a real server (docs/sampling.md, "The chat
preset"): the same role-play sessions are played under each preset with fixed seeds, and each
reply is scored on
  - nll: mean negative log-likelihood per reply token under the model itself at temperature 1
    (the raw logprobs the server returns): how far into the unlikely tail the sampler wandered;
    greedy is the floor, and high values read as incoherent;
  - loops: share of replies in which some 4-token sequence occurs 3 or more times;
  - distinct-2: distinct word bigrams over all word bigrams of the preset's replies (variety);
  - user lines: share of replies holding a line that starts with the user's name and a colon,
    i.e. the model writing the user's turn.

    scripts/reliability/run-python.sh scripts/bench/sampling_presets.py \\
        --server build/server/troupe-server [--sessions 6 --turns 5 --max-tokens 96]

Prints one row per preset and writes the replies to --out (JSON) for reading.
"""
import argparse
import json
import os
import re
import sys
import tempfile

import grpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reliability"))
import troupe_rig as rig  # noqa: E402

# name -> fields set on every request (unset fields take the server's chat preset).
PRESETS = {
    "temperature 1.0 (the old default)": {"temperature": 1.0, "min_p": 0.0, "dry_multiplier": 0.0},
    "greedy": {"temperature": 0.0, "min_p": 0.0, "dry_multiplier": 0.0},
    "temperature 0.8 + min-p 0.05": {"temperature": 0.8, "min_p": 0.05, "dry_multiplier": 0.0},
    "chat preset (+ DRY 0.8)": {},
}

# The project's test cards (tests/testdata/cards): a V1, a V2 and a V3 card.
CARDS = ["v1_tavern_cat.json", "v2_lighthouse_keeper.json", "v3_clockwork_archivist.json"]
MESSAGES = [
    "Hello there. Who are you, and what are you doing here?",
    "Tell me about the last time something went badly wrong.",
    "What do you want more than anything?",
    "I don't trust you. Give me one reason I should.",
    "Describe the place around us right now.",
    "What would you do if we were attacked tonight?",
]


def repeated_ngram(tokens, n=4, times=3):
    counts = {}
    for i in range(len(tokens) - n + 1):
        key = tuple(tokens[i:i + n])
        counts[key] = counts.get(key, 0) + 1
        if counts[key] >= times:
            return True
    return False


def import_cards(stub, pb):
    """The test cards as stored characters: [(character_id, name)]."""
    characters = []
    for card in CARDS:
        with open(os.path.join(rig.REPO, "tests", "testdata", "cards", card), "rb") as f:
            stored = stub.CreateCharacter(pb.CreateCharacterRequest(card_json=f.read()), timeout=60)
        characters.append((stored.character_id, stored.profile.name))
    return characters


def play(stub, pb, preset, args, user_name, characters):
    """All sessions under one preset; returns [(reply text, token ids, logprobs)]."""
    replies = []
    for s in range(args.sessions):
        character_id, name = characters[s % len(characters)]
        session = stub.CreateSession(pb.CreateSessionRequest(
            character_id=character_id, setup=pb.SessionSetup(user_name=user_name)), timeout=60)
        for t in range(args.turns):
            sampling = pb.SamplingParams(max_tokens=args.max_tokens, seed=1000 * s + t,
                                         logprobs=True, **preset)
            request = pb.ChatRequest(session_id=session.session_id,
                                     message=MESSAGES[(s + t) % len(MESSAGES)].encode(),
                                     sampling=sampling,
                                     memory=pb.MemoryOptions(strategy=pb.RETRIEVAL_STRATEGY_NONE))
            text, ids, logprobs = "", [], []
            for response in stub.Chat(request, timeout=1200):
                text += response.text
                ids.extend(response.token_ids)
                logprobs.extend(lp.logprob for lp in response.logprobs)
            replies.append({"character": name, "turn": t, "text": text, "ids": ids,
                            "logprobs": logprobs})
        stub.DeleteSession(pb.DeleteSessionRequest(session_id=session.session_id), timeout=60)
    return replies


def score(replies, user_name):
    tokens = sum(len(r["logprobs"]) for r in replies)
    nll = -sum(sum(r["logprobs"]) for r in replies) / max(tokens, 1)
    loops = sum(repeated_ngram(r["ids"]) for r in replies) / len(replies)
    bigrams = []
    for r in replies:
        words = r["text"].split()
        bigrams.extend(zip(words, words[1:]))
    distinct = len(set(bigrams)) / max(len(bigrams), 1)
    user_line = re.compile(r"(^|\n)\s*" + re.escape(user_name) + r"\s*:")
    user_lines = sum(bool(user_line.search(r["text"])) for r in replies) / len(replies)
    return {"replies": len(replies), "tokens": tokens, "nll": nll, "loops": loops,
            "distinct2": distinct, "user_lines": user_lines}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", required=True, help="troupe-server binary")
    parser.add_argument("--sessions", type=int, default=6)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--user-name", default="Robin")
    parser.add_argument("--out", default="", help="write the replies and scores here (JSON)")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="troupe-presets-")
    pb = rig.Protos(os.path.join(work, "py"))
    # One engine thread: the figures are about text, not speed, and a busy machine slows a
    # spinning thread pool more than one thread.
    server = rig.Server(args.server, os.path.join(work, "data"), os.path.join(work, "server.log"),
                        extra_args=["--threads", "1"])
    server.start()
    results = {}
    try:
        stub = rig.RolePlay(grpc.insecure_channel(server.address), pb)
        characters = import_cards(stub, pb)
        for name, preset in PRESETS.items():
            replies = play(stub, pb, preset, args, args.user_name, characters)
            results[name] = {"score": score(replies, args.user_name), "replies": replies}
    finally:
        server.stop()
    print(f"{'preset':36} {'replies':>7} {'tokens':>7} {'nll':>6} {'loops':>6} "
          f"{'distinct-2':>10} {'user lines':>10}")
    for name, result in results.items():
        s = result["score"]
        print(f"{name:36} {s['replies']:7d} {s['tokens']:7d} {s['nll']:6.3f} {s['loops']:6.1%} "
              f"{s['distinct2']:10.3f} {s['user_lines']:10.1%}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
