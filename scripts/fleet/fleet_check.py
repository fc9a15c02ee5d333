#!/usr/bin/env python3
"""The verdict of scripts/fleet-test.sh: reads what troupe-bench recorded (--result-json,
--save-replies), which replica nginx sent each RPC to (its access log, log format
troupe_routes of deploy/gateway/nginx.conf) and what the shared PostgreSQL database holds, and
checks, for issue #14's fleet run:
  - every session completed all its turns (clients retried UNAVAILABLE);
  - no acknowledged turn is lost: the turns troupe-bench saw finish OK are in the database, each
    reply word for word, in its session, in order;
  - sessions that never moved between replicas kept >= 90% of their turn-2+ prompt tokens
    from the prefix cache (only checked with session routing; round-robin is reported).
Prints a summary and writes it as JSON (--summary); exits 1 when a check fails.
"""
import argparse
import csv
import io
import json
import subprocess
import sys


def load_routes(access_log):
    """{session_id: [upstream, ...]} of the Chat RPCs, in log order."""
    routes = {}
    with open(access_log) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 5 or not parts[-1].endswith("/Chat") or parts[0] in ("-", ""):
                continue
            # $upstream_addr lists every replica tried for the RPC: "a, b" when nginx moved on.
            upstreams = " ".join(parts[1:-3]).replace(",", " ").split()
            routes.setdefault(parts[0], []).extend(upstreams)
    return routes


def load_db_turns(database_url):
    """{session_id: [reply_text, ...]} ordered by turn index, read with psql."""
    sql = "COPY (SELECT session_id, turn_index, reply_text FROM turns ORDER BY session_id, turn_index) TO STDOUT WITH CSV"
    out = subprocess.run(["psql", database_url, "-qAtc", sql], check=True, capture_output=True, text=True).stdout
    turns = {}
    for session_id, _, reply in csv.reader(io.StringIO(out)):
        turns.setdefault(session_id, []).append(reply)
    return turns


def percentile(values, q):
    if not values:
        return None
    values = sorted(values)
    k = (len(values) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--result", required=True, help="troupe-bench --result-json")
    parser.add_argument("--replies", required=True, help="troupe-bench --save-replies")
    parser.add_argument("--access-log", required=True)
    parser.add_argument("--database", required=True, help="the replicas' postgresql:// URL")
    parser.add_argument("--routing", required=True, choices=["session", "round-robin"])
    parser.add_argument("--turns", type=int, required=True, help="turns per session")
    parser.add_argument("--summary", help="write the summary here as JSON")
    args = parser.parse_args()

    with open(args.result) as f:
        result = json.load(f)
    requests = result["requests"]
    replies = [json.loads(line) for line in open(args.replies) if line.strip()]
    routes = load_routes(args.access_log)
    db_turns = load_db_turns(args.database)
    failures = []

    # Every session completed.
    sessions = {}
    for r in requests:
        sessions.setdefault(r["conversation"], []).append(r)
    incomplete = [c for c, rs in sessions.items() if sum(1 for r in rs if r["ok"]) != args.turns]
    if incomplete:
        failures.append(f"{len(incomplete)} of {len(sessions)} sessions did not complete {args.turns} turns")

    # No acknowledged turn lost: each session's acknowledged replies appear in its stored turns, in
    # order (the database may hold more: a turn committed just before its replica died, whose
    # client never saw the end and sent it again).
    lost = 0
    acknowledged = 0
    by_session = {}
    for r in sorted(replies, key=lambda r: (r["conversation"], r["turn"])):
        if r["ok"]:
            # The server stores the reply with ASCII whitespace trimmed from both ends
            # (server/generate_reactor.cc); the client saw it as streamed.
            by_session.setdefault(r["session_id"], []).append(r["reply"].strip(" \t\n\r\f\v"))
    for session_id, acked in by_session.items():
        stored = db_turns.get(session_id, [])
        acknowledged += len(acked)
        position = 0
        for reply in acked:
            found = next((i for i in range(position, len(stored)) if stored[i] == reply), None)
            if found is None:
                lost += 1
                print(f"lost: session {session_id}: acknowledged {reply!r} is not among the stored turns "
                      f"after turn {position}: {stored!r}", file=sys.stderr)
            else:
                position = found + 1
    if lost:
        failures.append(f"{lost} of {acknowledged} acknowledged turns are not in the database")

    # Cache: turn 2+ of sessions that never moved.
    def cache_share(rs):
        prompt = sum(r["prompt_tokens"] for r in rs)
        return sum(r["cached_prompt_tokens"] for r in rs) / prompt if prompt else None

    later = [r for r in requests if r["ok"] and r["turn"] >= 1]
    stayed = {sid for sid, ups in routes.items() if len(set(ups)) == 1}
    stayed_later = [r for r in later if r["session_id"] in stayed]
    moved_sessions = {r["session_id"] for r in requests if r["session_id"] and r["session_id"] not in stayed}
    stayed_share = cache_share(stayed_later)
    if args.routing == "session":
        if stayed_share is None:
            failures.append("no session stayed on one replica")
        elif stayed_share < 0.90:
            failures.append(f"sessions that never moved took {stayed_share:.1%} of their turn-2+ prompt tokens "
                            f"from the cache (goal >= 90%)")

    ok = [r for r in requests if r["ok"]]
    ttft_by_turn = {}
    for r in ok:
        ttft_by_turn.setdefault(r["turn"] + 1, []).append(r["ttft_ms"])
    duration = result.get("duration_s") or result.get("summary", {}).get("duration_s")
    completion = sum(r["completion_tokens"] for r in ok)
    summary = {
        "routing": args.routing,
        "sessions": len(sessions),
        "turns_ok": len(ok),
        "turns_failed": sum(1 for r in requests if not r["ok"]),
        "retried_turns": sum(1 for r in requests if r.get("retries", 0) > 0),
        "acknowledged_turns": acknowledged,
        "lost_turns": lost,
        "sessions_that_moved": len(moved_sessions),
        "sessions_that_stayed": len(stayed & {r["session_id"] for r in requests}),
        "cache_share_turn2plus_stayed": stayed_share,
        "cache_share_turn2plus_all": cache_share(later),
        "ttft_ms_p50_by_turn": {t: percentile(v, 50) for t, v in sorted(ttft_by_turn.items())},
        "ttft_ms_p50": percentile([r["ttft_ms"] for r in ok], 50),
        "ttft_ms_p95": percentile([r["ttft_ms"] for r in ok], 95),
        "e2el_ms_p50": percentile([r["e2el_ms"] for r in ok], 50),
        "duration_s": duration,
        "output_tokens_per_s": completion / duration if duration else None,
        "turns_per_s": len(ok) / duration if duration else None,
        "failures": failures,
    }
    print(json.dumps(summary, indent=1))
    if args.summary:
        with open(args.summary, "w") as f:
            json.dump(summary, f, indent=1)
    for failure in failures:
        print("FAIL:", failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
