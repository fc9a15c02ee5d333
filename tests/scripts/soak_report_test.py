#!/usr/bin/env python3
"""Tests the soak's verdict (scripts/reliability/soak_report.py) on made-up runs: a clean run
passes, and each way a run can go wrong fails exactly the check that should catch it."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts",
                                "reliability"))
import soak_report  # noqa: E402


def clean_run(duration_s=100.0):
    return {
        "streams": 4,
        "duration_s": duration_s,
        "counts": {("chat", "OK"): 40, ("chat_inline", "OK"): 20, ("generate", "OK"): 15,
                   ("cancel", "CANCELLED"): 5, ("cancel", "OK"): 1,
                   ("deadline", "DEADLINE_EXCEEDED"): 3, ("malformed", "INVALID_ARGUMENT"): 4,
                   ("cross_tenant", "NOT_FOUND"): 6, ("no_key", "UNAUTHENTICATED"): 2},
        "server_codes": {"OK": 76, "CANCELLED": 5, "INVALID_ARGUMENT": 4},
        "server_alive": True,
        "server_log_problems": [],
        "kv_blocks_end": 0,
        "rss_samples": [(float(t), 100_000) for t in range(int(duration_s) + 1)],
        "fds_idle_before": 12,
        "fds_idle_after": 12,
    }


def failed(run):
    return sorted(check.name for check in soak_report.evaluate(run) if not check.ok)


class SoakReportTest(unittest.TestCase):
    def test_clean_run_passes(self):
        run = clean_run()
        self.assertEqual(failed(run), [])
        self.assertIn("soak: PASSED", soak_report.format_report(run, soak_report.evaluate(run)))

    def test_unprovoked_code_fails(self):
        run = clean_run()
        run["counts"][("chat", "RESOURCE_EXHAUSTED")] = 1
        self.assertEqual(failed(run), ["codes"])

    def test_code_of_another_action_is_not_allowed(self):
        run = clean_run()
        run["counts"][("generate", "CANCELLED")] = 1  # nobody cancelled a plain generate
        self.assertEqual(failed(run), ["codes"])

    def test_internal_fails_even_where_errors_are_provoked(self):
        for code in ("INTERNAL", "UNKNOWN", "UNAVAILABLE"):
            run = clean_run()
            run["counts"][("malformed", code)] = 1
            self.assertEqual(failed(run), ["codes"], code)

    def test_internal_counted_by_the_server_fails(self):
        run = clean_run()
        run["server_codes"]["INTERNAL"] = 1
        self.assertEqual(failed(run), ["codes"])
        run["server_codes"]["INTERNAL"] = 0
        self.assertEqual(failed(run), [])

    def test_leaked_list_and_unknown_action_fail(self):
        run = clean_run()
        run["counts"][("cross_tenant_list", "LEAKED")] = 1
        self.assertEqual(failed(run), ["codes"])
        run = clean_run()
        run["counts"][("driver_error", "KeyError")] = 1
        self.assertEqual(failed(run), ["codes"])

    def test_run_without_plain_traffic_fails(self):
        run = clean_run()
        del run["counts"][("generate", "OK")]
        self.assertEqual(failed(run), ["traffic"])

    def test_dead_server_or_check_failure_in_log_fails(self):
        run = clean_run()
        run["server_alive"] = False
        self.assertEqual(failed(run), ["server"])
        run = clean_run()
        run["server_log_problems"] = ["F1206 check.h:12] CHECK failed: x"]
        self.assertEqual(failed(run), ["server"])

    def test_kv_blocks_left_in_use_fail(self):
        for value in (3, None):
            run = clean_run()
            run["kv_blocks_end"] = value
            self.assertEqual(failed(run), ["kv"], value)

    def test_rss_growth_past_five_percent_after_warmup_fails(self):
        run = clean_run(100.0)
        # Warm-up growth (the first 50 s here) does not count; +6% after it does.
        run["rss_samples"] = [(float(t), 80_000 if t < 50 else (100_000 if t < 80 else 106_000))
                              for t in range(101)]
        self.assertEqual(failed(run), ["rss"])
        run["rss_samples"] = [(float(t), 80_000 if t < 50 else (100_000 if t < 80 else 104_000))
                              for t in range(101)]
        self.assertEqual(failed(run), [])

    def test_one_rss_spike_does_not_decide(self):
        run = clean_run(100.0)
        run["rss_samples"] = [(float(t), 150_000 if t == 95 else 100_000) for t in range(101)]
        self.assertEqual(failed(run), [])

    def test_too_few_rss_samples_fail(self):
        run = clean_run(100.0)
        run["rss_samples"] = [(1.0, 100_000)]
        self.assertEqual(failed(run), ["rss"])

    def test_descriptor_leak_fails(self):
        run = clean_run()
        run["fds_idle_after"] = 13
        self.assertEqual(failed(run), ["fds"])
        run["fds_idle_after"] = 11
        self.assertEqual(failed(run), [])

    def test_warmup_is_a_fifth_or_a_minute(self):
        self.assertEqual(soak_report.warmup_seconds(60), 30)    # half of a short run
        self.assertEqual(soak_report.warmup_seconds(180), 60)   # a minute
        self.assertEqual(soak_report.warmup_seconds(600), 120)  # a fifth of a long one


if __name__ == "__main__":
    unittest.main()
