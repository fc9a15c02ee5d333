"""The soak's verdict (scripts/soak.sh): from what the driver saw and what was sampled from the
server, decide each check and print the report. Pure logic, no gRPC, so that
tests/scripts/soak_report_test.py can feed it made-up runs.

Checks:
  codes      every call ended with a code its action provokes (ALLOWED); none with a code in
             NEVER, on the client's side or in the server's troupe:requests_total{code}
  traffic    the plain actions (chat, chat_inline, generate) each finished OK at least once
  server     the server process was alive at the end and logged no CHECK failure
  kv         troupe:kv_blocks_used came back to 0 once the load stopped
  rss        VmRSS grew less than 5% from just after warm-up to the end of the load
  fds        the open-descriptor count with no client connected is the same after as before
"""
import statistics

# The codes each action may end with. Anything else is a failure.
ALLOWED = {
    "chat": {"OK"},               # a turn on a durable session (a stored character)
    "chat_inline": {"OK"},        # a turn on an in-memory session (an inline character)
    "generate": {"OK"},
    "create_session": {"OK"},
    "delete_session": {"OK"},
    "cancel": {"OK", "CANCELLED"},             # cancelled by the client mid-stream
    "deadline": {"OK", "DEADLINE_EXCEEDED"},   # a short deadline
    "disconnect": {"OK", "CANCELLED"},         # the client's channel or process goes away
    "stop": {"OK", "CANCELLED"},               # in flight when the run's time was up
    "oversized": {"INVALID_ARGUMENT"},
    "malformed": {"INVALID_ARGUMENT"},
    # Bytes that are no protobuf at all: gRPC C++ refuses them before troupe's code runs.
    "wire_garbage": {"INVALID_ARGUMENT", "UNIMPLEMENTED"},
    "unknown_id": {"NOT_FOUND"},
    "cross_tenant": {"NOT_FOUND"},
    "cross_tenant_list": {"OK"},  # a List RPC of tenant B; "LEAKED" when it shows A's ids
    "no_key": {"UNAUTHENTICATED"},
}
# Codes no client may ever cause.
NEVER = {"INTERNAL", "UNKNOWN", "UNAVAILABLE", "DATA_LOSS"}
PLAIN_ACTIONS = ("chat", "chat_inline", "generate")
RSS_LIMIT = 0.05


def warmup_seconds(duration_s):
    """The part of the run that RSS growth is not measured over: 20% of the run, and a minute
    once the run is long enough to afford it (at most half of it)."""
    return max(0.2 * duration_s, min(60.0, 0.5 * duration_s))


def window_median(samples, start_s, end_s):
    values = [value for t, value in samples if start_s <= t <= end_s]
    return statistics.median(values) if values else None


def rss_growth(samples, duration_s):
    """RSS growth from just after warm-up to the end of the load, as a fraction.

    samples: [(seconds since the load started, VmRSS kB)]. Each end is the median of a window
    of max(10% of the run, 5 s), so one allocator spike does not decide. None when a window
    has no sample."""
    warmup = warmup_seconds(duration_s)
    window = max(0.1 * duration_s, 5.0)
    baseline = window_median(samples, warmup, warmup + window)
    final = window_median(samples, duration_s - window, duration_s)
    if not baseline or final is None:
        return None, baseline, final
    return final / baseline - 1.0, baseline, final


class Check:
    def __init__(self, name, ok, detail):
        self.name, self.ok, self.detail = name, ok, detail


def evaluate(run):
    """run: dict with
      counts            {(action, code): n} as the driver saw them
      plain_actions     the PLAIN_ACTIONS the run had (default: all of them)
      server_codes      {code: n} from troupe:requests_total at the end
      server_alive      bool; server_log_problems: [line]
      kv_blocks_end     troupe:kv_blocks_used after the drain (None = never read)
      rss_samples       [(t, kB)] during the load; duration_s: the load's length
      fds_idle_before, fds_idle_after   descriptors with no client connected
    Returns [Check]."""
    checks = []
    counts = run["counts"]

    bad = []
    for (action, code), n in sorted(counts.items()):
        allowed = ALLOWED.get(action)
        if code in NEVER or allowed is None or code not in allowed:
            bad.append(f"{action}:{code} x{n}")
    server_bad = [f"server {code} x{int(n)}" for code, n in sorted(run["server_codes"].items())
                  if code in NEVER and n > 0]
    checks.append(Check("codes", not bad and not server_bad,
                        "only provoked codes" if not bad and not server_bad
                        else "unexpected: " + ", ".join(bad + server_bad)))

    missing = [a for a in run.get("plain_actions", PLAIN_ACTIONS) if counts.get((a, "OK"), 0) == 0]
    checks.append(Check("traffic", not missing,
                        "every plain action finished OK at least once" if not missing
                        else "no OK call of: " + ", ".join(missing)))

    problems = list(run.get("server_log_problems", []))
    alive = run["server_alive"]
    checks.append(Check("server", alive and not problems,
                        "alive, clean log" if alive and not problems
                        else ("dead; " if not alive else "") + "; ".join(problems[:3])))

    kv = run["kv_blocks_end"]
    checks.append(Check("kv", kv == 0, f"kv_blocks_used at the end = {kv}"))

    growth, baseline, final = rss_growth(run["rss_samples"], run["duration_s"])
    if growth is None:
        checks.append(Check("rss", False, "too few RSS samples"))
    else:
        checks.append(Check("rss", growth < RSS_LIMIT,
                            f"{baseline / 1024:.1f} MiB after warm-up -> {final / 1024:.1f} MiB "
                            f"at the end ({growth * 100:+.2f}%, limit +{RSS_LIMIT * 100:.0f}%)"))

    before, after = run["fds_idle_before"], run["fds_idle_after"]
    checks.append(Check("fds", after is not None and before is not None and after <= before,
                        f"open descriptors with no client: {before} before, {after} after"))
    return checks


def format_report(run, checks):
    lines = ["", "== soak report =="]
    lines.append(f"load: {run['streams']} streams for {run['duration_s']:.0f} s, "
                 f"tenants: {run.get('tenants_mode', 'single')}")
    lines.append("calls by action and code (client side):")
    by_action = {}
    for (action, code), n in counts_sorted(run["counts"]):
        by_action.setdefault(action, []).append(f"{code} {n}")
    for action, parts in by_action.items():
        lines.append(f"  {action:18s} {', '.join(parts)}")
    lines.append("server troupe:requests_total: " + ", ".join(
        f"{code} {int(n)}" for code, n in sorted(run["server_codes"].items())))
    for check in checks:
        lines.append(f"  [{'PASS' if check.ok else 'FAIL'}] {check.name}: {check.detail}")
    lines.append("soak: " + ("PASSED" if all(c.ok for c in checks) else "FAILED"))
    return "\n".join(lines)


def counts_sorted(counts):
    return sorted(counts.items(), key=lambda item: (item[0][0], -item[1]))
