#!/usr/bin/env python3
"""Tests scripts/check-layers.py on small trees made in a temporary folder: it must pass a
layered tree, and fail on an upward edge, a folder cycle and a picture that differs."""
import os
import subprocess
import sys
import tempfile
import unittest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts",
                      "check-layers.py")


def write(root, path, text):
    full = os.path.join(root, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as f:
        f.write(text)


def run(root, *args):
    return subprocess.run([sys.executable, SCRIPT, "--root", root, *args], capture_output=True,
                          text=True)


class CheckLayersTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = self.tmp.name
        write(self.root, "common/check.h", "#pragma once\n")
        write(self.root, "kernels/rope.h", '#include "common/check.h"\n')
        write(self.root, "engine/model/weights.h", '#include "kernels/rope.h"\n')
        write(self.root, "engine/backend/cpu.cc",
              '#include "engine/model/weights.h"\n#include <vector>\n#include "absl/x.h"\n')
        write(self.root, "server/main.cc",
              '#include "engine/backend/cpu.cc"\n#include "troupe/v1/roleplay.pb.h"\n')

    def tearDown(self):
        self.tmp.cleanup()

    def test_layered_tree_passes_and_lists_its_edges(self):
        result = run(self.root, "--edges")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.splitlines(), [
            "engine/backend -> engine/model (1)",
            "engine/model -> kernels (1)",
            "kernels -> common (1)",
            "server -> engine/backend (1)",
            "server -> proto (1)",
        ])

    def test_upward_edge_fails(self):
        write(self.root, "kernels/rope.cc", '#include "engine/model/weights.h"\n')
        result = run(self.root)
        self.assertEqual(result.returncode, 1)
        self.assertIn("upward edge: kernels -> engine/model", result.stderr)

    def test_cycle_between_sibling_folders_fails(self):
        write(self.root, "engine/model/gguf.cc", '#include "engine/backend/cpu.cc"\n')
        result = run(self.root)
        self.assertEqual(result.returncode, 1)
        self.assertIn("folder cycle: engine/backend -> engine/model -> engine/backend",
                      result.stderr)

    def test_picture_must_match_the_tree(self):
        picture = run(self.root, "--mermaid").stdout
        doc = os.path.join(self.root, "arch.md")
        with open(doc, "w") as f:
            f.write("```mermaid\n%% check-layers: begin\n" + picture + "%% check-layers: end\n```\n")
        self.assertEqual(run(self.root, "--doc", doc).returncode, 0)
        with open(doc, "w") as f:
            f.write("```mermaid\n%% check-layers: begin\n" +
                    picture.replace("  server --> proto\n", "  server --> kernels\n") +
                    "%% check-layers: end\n```\n")
        result = run(self.root, "--doc", doc)
        self.assertEqual(result.returncode, 1)
        self.assertIn("picture lacks the edge server -> proto", result.stderr)
        self.assertIn("picture shows server -> kernels", result.stderr)


if __name__ == "__main__":
    unittest.main()
