#!/usr/bin/env python3
"""Tests the crash test's per-session verdict (scripts/reliability/crash_check.py): a lost,
changed, reordered or half-stored turn is caught; turns in doubt may be kept or lost whole."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts",
                                "reliability"))
from crash_check import ASSISTANT, USER, check_session, settle  # noqa: E402

GREETING = (ASSISTANT, "Welcome aboard.")


class CrashCheckTest(unittest.TestCase):
    def test_every_acknowledged_turn_present_passes(self):
        acked = [("a", " Hello there. "), ("b", "Bye.")]
        history = [GREETING, (USER, "a"), (ASSISTANT, "Hello there."), (USER, "b"),
                   (ASSISTANT, "Bye.")]
        self.assertEqual(check_session(acked, set(), history), [])

    def test_lost_acknowledged_turn_fails(self):
        acked = [("a", "x"), ("b", "y")]
        history = [GREETING, (USER, "a"), (ASSISTANT, "x")]
        problems = check_session(acked, set(), history)
        self.assertEqual(len(problems), 1)
        self.assertIn("'b' is missing", problems[0])

    def test_changed_reply_fails(self):
        history = [GREETING, (USER, "a"), (ASSISTANT, "not what was streamed")]
        self.assertEqual(len(check_session([("a", "x")], set(), history)), 1)

    def test_acknowledged_turn_without_reply_fails(self):
        history = [GREETING, (USER, "a")]
        self.assertIn("no reply", check_session([("a", "x")], set(), history)[0])

    def test_reordered_turns_fail(self):
        acked = [("a", "x"), ("b", "y")]
        history = [GREETING, (USER, "b"), (ASSISTANT, "y"), (USER, "a"), (ASSISTANT, "x")]
        self.assertIn("out of order", " ".join(check_session(acked, set(), history)))

    def test_turn_in_doubt_may_be_kept_or_lost_but_not_half(self):
        acked = [("a", "x")]
        kept = [GREETING, (USER, "a"), (ASSISTANT, "x"), (USER, "d"), (ASSISTANT, "z")]
        lost = [GREETING, (USER, "a"), (ASSISTANT, "x")]
        half = [GREETING, (USER, "a"), (ASSISTANT, "x"), (USER, "d")]
        self.assertEqual(check_session(acked, {"d"}, kept), [])
        self.assertEqual(check_session(acked, {"d"}, lost), [])
        self.assertIn("half", check_session(acked, {"d"}, half)[0])

    def test_message_nobody_sent_or_duplicated_fails(self):
        history = [GREETING, (USER, "a"), (ASSISTANT, "x"), (USER, "zzz"), (ASSISTANT, "q")]
        self.assertIn("never sent", check_session([("a", "x")], set(), history)[0])
        twice = [GREETING, (USER, "a"), (ASSISTANT, "x"), (USER, "a"), (ASSISTANT, "x")]
        self.assertIn("twice", " ".join(check_session([("a", "x")], set(), twice)))

    def test_settle_keeps_stored_doubtful_turns_in_history_order(self):
        acked = [("a", "x"), ("c", "w")]
        history = [GREETING, (USER, "a"), (ASSISTANT, "x"), (USER, "d"), (ASSISTANT, "z"),
                   (USER, "c"), (ASSISTANT, "w")]
        self.assertEqual(check_session(acked, {"d", "e"}, history), [])
        settled = settle(acked, {"d", "e"}, history)
        self.assertEqual(settled, [("a", "x"), ("d", "z"), ("c", "w")])
        # "e" was lost for good: from now on it showing up is a message nobody sent.
        later = history + [(USER, "e"), (ASSISTANT, "v")]
        self.assertIn("never sent", check_session(settled, set(), later)[0])


if __name__ == "__main__":
    unittest.main()
