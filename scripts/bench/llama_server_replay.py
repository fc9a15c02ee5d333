#!/usr/bin/env python3
"""Replays troupe-bench's multi-turn conversations against llama.cpp's llama-server.

troupe and llama.cpp can then be compared on one workload: save the conversations with
`troupe-bench --save-dataset conv.jsonl ...`, run troupe-bench against troupe and this script
against llama-server with the same --dataset, --sessions and --max-tokens, and compare the
two tables (or the two --result-json files, which have the same keys).

How it maps to troupe-bench (bench/troupe_bench.cc, bench/load/, docs/troupe_bench.md):
  - Workload: multi-turn closed loop. --sessions clients each run whole conversations one after
    another, turn by turn, pausing --think-time-ms before each next message; a client takes the
    next conversation when one ends. (troupe-bench's open-loop mode is not mirrored.)
  - Sessions: llama-server keeps none, so each conversation keeps its history here and every turn
    sends the full prompt, rendered with ChatML (SmolLM2's template):
        <|im_start|>system\\n{character}<|im_end|>\\n
        <|im_start|>user\\n{user}<|im_end|>\\n<|im_start|>assistant\\n{reply}<|im_end|>\\n  (past turns)
        <|im_start|>user\\n{user}<|im_end|>\\n<|im_start|>assistant\\n
    An empty character gets --default-system, as the template's default system message.
    Requests go to the native POST /completion with stream, cache_prompt, n_predict, ignore_eos
    and temperature; the server picks the slot (by prompt similarity), as any client's would.
  - Timestamps: client side, taken as each SSE event arrives. An event carries as many tokens
    as its running "tokens_predicted" grew by. (Not len("tokens"): llama-server holds back the
    byte tokens of an unfinished UTF-8 character and then sends one event with all their text
    but only the last token's id, so a CJK character or emoji of 3 tokens shows as 1.) Events
    without tokens_predicted count len("tokens"), or 1 if they have content. As in troupe-bench,
    one event may thus carry several tokens, and its ITL gap covers them all.
  - Usage: from the final event, prompt tokens = timings.prompt_n + timings.cache_n, cached
    prompt tokens = timings.cache_n, completion tokens = tokens_predicted (or predicted_n).
  - Metrics (vLLM bench serve's, as troupe-bench): TTFT = first token event - send,
    TPOT = (E2EL - TTFT) / (completion tokens - 1), ITL = every gap between token events,
    E2EL = end of stream - send; percentiles interpolate linearly (numpy's default). Reported
    overall, for turns 2 and later, and per turn; the JSON has troupe-bench's keys plus "config".
  - Errors: a failed request (HTTP status, error event, stream cut short, exception) is counted
    as failed and ends its conversation; the exit status is 1 when any request failed.
  - "send" is taken before the TCP connect: each request opens its own connection to the
    server (about 0.1 ms on loopback).

Example (llama.cpp's server, SmolLM2-135M, 16 slots of 2048 tokens each):
    llama-server -m models/SmolLM2-135M-Instruct.Q4_1.gguf -t 2 -np 16 -c 32768 --port 8091 &
    scripts/bench/llama_server_replay.py --url http://127.0.0.1:8091 --dataset conv.jsonl \\
        --sessions 16 --max-tokens 48 --result-json llama.json

llama-server behaviour that shows in the figures (build 0c1e570):
  - -c is split evenly over the -np slots: -c 16384 -np 16 gives 1024 tokens a slot, too few
    for multiturn.sh's 8-turn default (turn 8 prompts are ~1070 tokens: HTTP 400
    exceed_context_size_error).
  - A slot's cache serves at most prompt - 1 tokens (the last prompt token is always evaluated),
    and conversations of one character on a fresh server do not share the character prompt: each
    first turn lands on an empty slot.
  - Greedy replies can differ between runs: batch composition changes the numerics.
  - With -t 2 on a 2-core machine that something else keeps busy, decode collapses to seconds per
    token; -t 1 does not.

Standard library only (Python 3.8+).
"""

import argparse
import http.client
import json
import math
import sys
import threading
import time
import urllib.parse

DEFAULT_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


# ---- conversations ----

class DatasetError(Exception):
    pass


def parse_conversations(text):
    """Parses troupe-bench's JSONL: {"id", "character", "turns": [{"user", "max_tokens"}]}.

    Returns a list of dicts {id, character, turns: [(user, max_tokens or 0)]}; raises
    DatasetError naming the line and field, as troupe-bench's ParseConversationsJsonl does.
    """
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            j = json.loads(line)
        except ValueError:
            j = None
        if not isinstance(j, dict):
            raise DatasetError("line %d: not a JSON object" % number)
        conv_id = j["id"] if isinstance(j.get("id"), str) else "line%d" % number
        character = j.get("character", "")
        if not isinstance(character, str):
            raise DatasetError('line %d: "character" must be a string' % number)
        turns_json = j.get("turns")
        if not isinstance(turns_json, list) or not turns_json:
            raise DatasetError('line %d: "turns" must be a non-empty array' % number)
        turns = []
        for t in turns_json:
            if not isinstance(t, dict) or not isinstance(t.get("user"), str) or not t["user"]:
                raise DatasetError('line %d: every turn needs a non-empty string "user"' % number)
            max_tokens = 0
            if "max_tokens" in t:
                m = t["max_tokens"]
                if isinstance(m, bool) or not isinstance(m, int) or m <= 0:
                    raise DatasetError('line %d: "max_tokens" must be a positive integer' % number)
                max_tokens = m
            turns.append((t["user"], max_tokens))
        out.append({"id": conv_id, "character": character, "turns": turns})
    if not out:
        raise DatasetError("no conversations in the input")
    return out


def render_chatml(system, history, user):
    """The full prompt for one turn: system, past (user, reply) pairs, the new user message."""
    parts = ["<|im_start|>system\n", system, "<|im_end|>\n"]
    for past_user, reply in history:
        parts += ["<|im_start|>user\n", past_user, "<|im_end|>\n",
                  "<|im_start|>assistant\n", reply, "<|im_end|>\n"]
    parts += ["<|im_start|>user\n", user, "<|im_end|>\n<|im_start|>assistant\n"]
    return "".join(parts)


# ---- requests ----

class Record:
    """One request: times in seconds since the run started, token counts from the server."""

    def __init__(self, conversation, turn):
        self.conversation = conversation
        self.turn = turn            # 0-based turn index within its conversation
        self.start = 0.0
        self.end = 0.0
        self.token_times = []       # arrival of each event that carried tokens
        self.token_counts = []      # tokens in that event
        self.prompt_tokens = 0
        self.cached_prompt_tokens = 0
        self.completion_tokens = 0
        self.ok = False
        self.error = ""
        self.reply = ""


class Client:
    """Sends one streamed /completion request and records it. Thread-safe (no shared state)."""

    def __init__(self, url, timeout_s, clock, extra_body):
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError("--url must look like http://HOST:PORT")
        self.https = parsed.scheme == "https"
        self.host = parsed.hostname
        self.port = parsed.port or (443 if self.https else 80)
        self.base = parsed.path.rstrip("/")
        self.timeout_s = timeout_s
        self.clock = clock
        self.extra_body = extra_body

    def _connect(self):
        cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        return cls(self.host, self.port, timeout=self.timeout_s)

    def get_json(self, path):
        conn = self._connect()
        try:
            conn.request("GET", self.base + path)
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                raise RuntimeError("GET %s: HTTP %d %s" % (path, resp.status, body[:200]))
            return json.loads(body)
        finally:
            conn.close()

    def complete(self, record, prompt, n_predict, ignore_eos, temperature):
        body = {"prompt": prompt, "stream": True, "cache_prompt": True, "n_predict": n_predict,
                "ignore_eos": ignore_eos, "temperature": temperature}
        body.update(self.extra_body)
        data = json.dumps(body).encode("utf-8")
        record.start = self.clock()
        conn = None
        try:
            conn = self._connect()
            conn.request("POST", self.base + "/completion", body=data,
                         headers={"Content-Type": "application/json", "Accept": "text/event-stream"})
            resp = conn.getresponse()
            if resp.status != 200:
                text = resp.read().decode("utf-8", "replace").strip()
                record.error = "HTTP %d: %s" % (resp.status, text[:300])
                return
            self._read_stream(resp, record)
        except (OSError, http.client.HTTPException, ValueError) as e:
            record.error = "%s: %s" % (type(e).__name__, e)
        finally:
            record.end = self.clock()
            if conn is not None:
                conn.close()

    def _read_stream(self, resp, record):
        """Reads SSE events until the one with "stop": true; fills record."""
        reply = []
        final = None
        predicted_so_far = 0  # the server's running tokens_predicted
        while final is None:
            line = resp.readline()
            if not line:
                break
            now = self.clock()
            line = line.strip()
            if not line or line.startswith(b":"):
                continue
            if line.startswith(b"error:"):
                record.error = "error event: " + line[6:].decode("utf-8", "replace").strip()
                return
            if not line.startswith(b"data:"):
                continue
            payload = line[5:].strip()
            if payload == b"[DONE]":
                break
            event = json.loads(payload)
            if "error" in event:
                record.error = "error event: %s" % json.dumps(event["error"])
                return
            content = event.get("content", "")
            predicted = event.get("tokens_predicted")
            if isinstance(predicted, int):
                count = predicted - predicted_so_far
                predicted_so_far = predicted
            elif isinstance(event.get("tokens"), list):
                count = len(event["tokens"])
            else:
                count = 1 if content else 0
            if count > 0:
                record.token_times.append(now)
                record.token_counts.append(count)
            reply.append(content)
            if event.get("stop"):
                final = event
        record.reply = "".join(reply)
        if final is None:
            record.error = "stream ended before the final event (%d token events)" % len(record.token_times)
            return
        timings = final.get("timings", {})
        record.cached_prompt_tokens = int(timings.get("cache_n", 0))
        record.prompt_tokens = int(timings.get("prompt_n", 0)) + record.cached_prompt_tokens
        record.completion_tokens = int(final.get("tokens_predicted", timings.get("predicted_n", 0)))
        record.ok = True


# ---- load ----

class Run:
    """Closed-loop clients over the conversations; records are appended under a lock."""

    def __init__(self, args, conversations, client):
        self.args = args
        self.conversations = conversations
        self.client = client
        self.lock = threading.Lock()
        self.next_conversation = 0
        self.records = []
        self.done = 0
        self.output_tokens = 0
        self.total = sum(len(c["turns"]) for c in conversations)

    def _take_conversation(self):
        with self.lock:
            i = self.next_conversation
            self.next_conversation += 1
        return i if i < len(self.conversations) else None

    def _converse(self, index):
        conv = self.conversations[index]
        system = conv["character"] or self.args.default_system
        history = []
        for t, (user, max_tokens) in enumerate(conv["turns"]):
            if t > 0 and self.args.think_time_ms > 0:
                time.sleep(self.args.think_time_ms / 1e3)
            r = Record(index, t)
            self.client.complete(r, render_chatml(system, history, user),
                                 max_tokens or self.args.max_tokens, self.args.ignore_eos,
                                 self.args.temperature)
            with self.lock:
                self.records.append(r)
                self.done += 1
                self.output_tokens += sum(r.token_counts)
                if not r.ok:
                    self.done += len(conv["turns"]) - t - 1
            if not r.ok:
                return
            history.append((user, r.reply))

    def client_loop(self):
        while True:
            i = self._take_conversation()
            if i is None:
                return
            self._converse(i)


def progress_monitor(run, clock, stop, tty):
    last_decile = -1
    while True:
        finished = stop.wait(0.25)
        with run.lock:
            done, tokens = run.done, run.output_tokens
        elapsed = clock()
        frac = done / run.total if run.total else 0.0
        rate = tokens / elapsed if elapsed > 0 else 0.0
        if tty:
            filled = int(frac * 30)
            sys.stderr.write("\r[%s%s] %d/%d requests  %.1f s  %.1f output tok/s " % (
                "#" * filled, "." * (30 - filled), done, run.total, elapsed, rate))
            if finished:
                sys.stderr.write("\n")
        elif int(frac * 10) != last_decile:
            last_decile = int(frac * 10)
            sys.stderr.write("progress: %d/%d requests, %.1f s, %.1f output tok/s\n" % (
                done, run.total, elapsed, rate))
        sys.stderr.flush()
        if finished:
            return


# ---- statistics (bench/load/stats.cc) ----

def percentile(values, q):
    """Linear interpolation between order statistics (numpy's default); q in [0, 100]."""
    if not values:
        return 0.0
    v = sorted(values)
    rank = q / 100.0 * (len(v) - 1)
    lo = int(math.floor(rank))
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (rank - lo)


def summarize(values):
    if not values:
        return {"count": 0, "mean": 0.0, "p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0}
    return {"count": len(values), "mean": sum(values) / len(values), "p50": percentile(values, 50),
            "p90": percentile(values, 90), "p99": percentile(values, 99), "max": max(values)}


def group(records):
    g = {"requests": 0, "failed": 0, "good": 0}
    ttft, tpot, itl, e2el = [], [], [], []
    prompt = cached = completion = 0
    for r in records:
        if not r.ok:
            g["failed"] += 1
            continue
        g["requests"] += 1
        e2el_ms = (r.end - r.start) * 1e3
        ttft_ms = (r.token_times[0] - r.start) * 1e3 if r.token_times else 0.0
        ttft.append(ttft_ms)
        e2el.append(e2el_ms)
        if r.completion_tokens > 1:
            tpot.append((e2el_ms - ttft_ms) / (r.completion_tokens - 1))
        itl += [(b - a) * 1e3 for a, b in zip(r.token_times, r.token_times[1:])]
        prompt += r.prompt_tokens
        cached += r.cached_prompt_tokens
        completion += r.completion_tokens
    g.update({"ttft_ms": summarize(ttft), "tpot_ms": summarize(tpot), "itl_ms": summarize(itl),
              "e2el_ms": summarize(e2el), "prompt_tokens": prompt, "cached_prompt_tokens": cached,
              "completion_tokens": completion,
              "cache_hit_rate": cached / prompt if prompt > 0 else 0.0})
    return g


def build_report(records, duration_s):
    max_turn = max((r.turn for r in records), default=-1)
    overall = group(records)
    report = {
        "duration_s": duration_s,
        "request_throughput": 0.0,
        "output_throughput": 0.0,
        "total_token_throughput": 0.0,
        "goodput": 0.0,  # no SLOs here
        "overall": overall,
        "turns_2_and_later": group([r for r in records if r.turn >= 1]),
        "per_turn": [group([r for r in records if r.turn == t]) for t in range(max_turn + 1)],
        "output_tokens_per_second": [],
    }
    if duration_s > 0:
        report["request_throughput"] = overall["requests"] / duration_s
        report["output_throughput"] = overall["completion_tokens"] / duration_s
        report["total_token_throughput"] = (overall["prompt_tokens"] + overall["completion_tokens"]) / duration_s
        bins = [0.0] * int(math.ceil(duration_s))
        for r in records:
            for at, count in zip(r.token_times, r.token_counts):
                bins[min(len(bins) - 1, int(max(0.0, at)))] += count
        report["output_tokens_per_second"] = bins
    return report


def _row(label, g):
    return "%-8s %5d %9.1f %9.1f %9.1f %8.1f %8.1f %8.1f %9.1f %8.1f %6.1f%%\n" % (
        label, g["requests"], g["ttft_ms"]["mean"], g["ttft_ms"]["p50"], g["ttft_ms"]["p99"],
        g["tpot_ms"]["mean"], g["itl_ms"]["p50"], g["itl_ms"]["p99"], g["e2el_ms"]["mean"],
        g["e2el_ms"]["p99"], 100.0 * g["cache_hit_rate"])


def format_report(report):
    """troupe-bench's text table (FormatReport), character for character."""
    o = report["overall"]
    out = ("duration %.1f s; %d requests ok, %d failed\n"
           "throughput: %.2f req/s, output %.1f tok/s, total %.1f tok/s" % (
               report["duration_s"], o["requests"], o["failed"], report["request_throughput"],
               report["output_throughput"], report["total_token_throughput"]))
    out += "\nprefix cache: %.1f%% of all prompt tokens, %.1f%% from turn 2 on\n\n" % (
        100.0 * o["cache_hit_rate"], 100.0 * report["turns_2_and_later"]["cache_hit_rate"])
    out += "turn      reqs  TTFT mean  TTFT p50  TTFT p99 TPOT mean  ITL p50  ITL p99 E2EL mean E2EL p99  cache\n"
    for t, g in enumerate(report["per_turn"]):
        out += _row(str(t + 1), g)
    out += _row("all", o)
    out += "(milliseconds; cache = prompt tokens served from the prefix cache)\n"
    return out


# ---- main ----

class RunClock:
    """Seconds since restart(), from the monotonic performance counter."""

    def __init__(self):
        self.t0 = time.perf_counter()

    def restart(self):
        self.t0 = time.perf_counter()

    def __call__(self):
        return time.perf_counter() - self.t0


def parse_bool(text):
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError("want true or false, got %r" % text)


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Replays troupe-bench conversations (JSONL) against llama.cpp's llama-server "
                    "and reports troupe-bench's figures.",
        epilog="Example: %(prog)s --url http://127.0.0.1:8091 --dataset conv.jsonl --sessions 16 "
               "--result-json llama.json")
    p.add_argument("--url", default="http://127.0.0.1:8091", help="llama-server base URL")
    p.add_argument("--dataset", required=True, help="troupe-bench JSONL conversations (--save-dataset)")
    p.add_argument("--sessions", type=int, default=16,
                   help="concurrent clients, each running whole conversations in turn (closed loop)")
    p.add_argument("--max-tokens", type=int, default=48, help="reply tokens per turn unless the dataset says")
    p.add_argument("--think-time-ms", type=float, default=0.0, help="pause before each next message")
    p.add_argument("--ignore-eos", type=parse_bool, nargs="?", const=True, default=True, metavar="BOOL",
                   help="generate exactly max-tokens per turn (default true; =false to stop at EOS)")
    p.add_argument("--temperature", type=float, default=0.0, help="sampling temperature (0 = greedy)")
    p.add_argument("--default-system", default=DEFAULT_SYSTEM,
                   help="system message for conversations without a character (SmolLM2's default)")
    p.add_argument("--request-extra", default="{}", metavar="JSON",
                   help='fields merged into every /completion body, e.g. \'{"logit_bias": [[3, false]]}\'')
    p.add_argument("--timeout-s", type=float, default=600.0, help="per-request socket timeout")
    p.add_argument("--connect-timeout-s", type=float, default=10.0,
                   help="how long to wait for the server to answer GET /props before the run")
    p.add_argument("--result-json", default="", help="write the full result as JSON")
    p.add_argument("--save-replies", default="",
                   help="write every reply as JSONL {conversation, turn, ok, reply}, in conversation order")
    p.add_argument("--no-progress", action="store_true", help="no progress output")
    args = p.parse_args(argv)
    if args.sessions < 1:
        p.error("--sessions must be >= 1")
    if args.max_tokens < 1:
        p.error("--max-tokens must be >= 1")
    try:
        args.extra_body = json.loads(args.request_extra)
    except ValueError as e:
        p.error("--request-extra: %s" % e)
    if not isinstance(args.extra_body, dict):
        p.error("--request-extra must be a JSON object")
    return args


def wait_for_server(client, timeout_s):
    """GET /props until it answers 200 (llama-server says 503 while loading); None on timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return client.get_json("/props")
        except (OSError, http.client.HTTPException, RuntimeError, ValueError) as e:
            if time.monotonic() >= deadline:
                sys.stderr.write("llama_server_replay: cannot reach server: %s\n" % e)
                return None
            time.sleep(0.5)


def main(argv):
    args = parse_args(argv)
    try:
        with open(args.dataset, encoding="utf-8") as f:
            conversations = parse_conversations(f.read())
    except (OSError, UnicodeDecodeError) as e:
        sys.stderr.write("llama_server_replay: cannot read %s: %s\n" % (args.dataset, e))
        return 2
    except DatasetError as e:
        sys.stderr.write("llama_server_replay: %s: %s\n" % (args.dataset, e))
        return 2

    clock = RunClock()
    try:
        client = Client(args.url, args.timeout_s, clock, args.extra_body)
    except ValueError as e:
        sys.stderr.write("llama_server_replay: %s\n" % e)
        return 2
    props = wait_for_server(client, args.connect_timeout_s)
    if props is None:
        return 1

    run = Run(args, conversations, client)
    num_clients = max(1, min(args.sessions, len(conversations)))
    threads = [threading.Thread(target=run.client_loop, daemon=True) for _ in range(num_clients)]
    clock.restart()  # times are relative to the run's start
    stop = threading.Event()
    monitor = None
    if not args.no_progress:
        monitor = threading.Thread(target=progress_monitor,
                                   args=(run, clock, stop, sys.stderr.isatty()), daemon=True)
        monitor.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    duration_s = clock()
    stop.set()
    if monitor is not None:
        monitor.join()

    records = run.records
    report = build_report(records, duration_s)
    sys.stdout.write(format_report(report))
    failures = sorted((r for r in records if not r.ok), key=lambda r: (r.conversation, r.turn))
    if failures:
        r = failures[0]
        sys.stdout.write("first failure: conversation %d turn %d: %s\n" % (r.conversation, r.turn + 1, r.error))
    mismatched = sum(1 for r in records if r.ok and sum(r.token_counts) != r.completion_tokens)
    if mismatched:
        sys.stdout.write("note: %d requests streamed a different token count than tokens_predicted\n" % mismatched)
    sys.stdout.flush()

    status = 1 if failures else 0
    if args.result_json:
        report["config"] = {
            "url": args.url, "mode": "multi-turn", "sessions": args.sessions,
            "conversations": len(conversations),
            "characters": len({c["character"] for c in conversations}),
            "turns": max(len(c["turns"]) for c in conversations),
            "max_tokens": args.max_tokens, "think_time_ms": args.think_time_ms,
            "ignore_eos": args.ignore_eos, "temperature": args.temperature,
            "dataset": args.dataset, "request_extra": args.extra_body,
            "server": {"build_info": props.get("build_info", ""),
                       "model_path": props.get("model_path", ""),
                       "total_slots": props.get("total_slots", 0),
                       "n_ctx": props.get("default_generation_settings", {}).get("n_ctx", 0)},
        }
        try:
            with open(args.result_json, "w", encoding="utf-8") as f:
                json.dump(report, f, indent=1)
                f.write("\n")
        except OSError as e:
            sys.stderr.write("llama_server_replay: cannot write %s: %s\n" % (args.result_json, e))
            status = 1
    if args.save_replies:
        try:
            with open(args.save_replies, "w", encoding="utf-8") as f:
                for r in sorted(records, key=lambda r: (r.conversation, r.turn)):
                    f.write(json.dumps({"conversation": r.conversation, "turn": r.turn, "ok": r.ok,
                                        "reply": r.reply}, ensure_ascii=False) + "\n")
        except OSError as e:
            sys.stderr.write("llama_server_replay: cannot write %s: %s\n" % (args.save_replies, e))
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
