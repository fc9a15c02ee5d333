#!/usr/bin/env python3
"""Lists troupe's folder-to-folder include edges and fails on a cycle or an upward edge.

Every `#include "a/b/c.h"` in product code (common/, kernels/, engine/, server/, bench/) is
one edge from the includer's folder to the included file's folder (the repository root is the
include root; `troupe/v1/*.pb.h` is proto/). Folders sit in layers, lowest first:

    common  <  kernels  <  engine  <  proto  <  server  <  bench

An edge into a higher layer is an upward edge; inside a layer (engine/'s subfolders, say) the
folders must form no cycle. Tests are not product code and may include anything.

    scripts/check-layers.py                      check; print the edges on failure
    scripts/check-layers.py --edges              print every edge "from -> to (count)"
    scripts/check-layers.py --mermaid            print the edges as a Mermaid flowchart
    scripts/check-layers.py --doc docs/architecture.md
                                                 also check that the doc's Mermaid block
                                                 (between the markers) shows exactly these edges
"""
import argparse
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRODUCT_DIRS = ["common", "kernels", "engine", "server", "bench"]
LAYERS = ["common", "kernels", "engine", "proto", "server", "bench"]
SUFFIXES = (".h", ".cc", ".cu", ".cuh")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.MULTILINE)
DOC_BEGIN = "%% check-layers: begin"
DOC_END = "%% check-layers: end"


def layer_of(folder):
    top = folder.split("/")[0]
    return LAYERS.index(top) if top in LAYERS else None


def folder_of_include(path, includer_dir, root):
    """The folder an include resolves to, or None for a file outside product code."""
    if path.startswith("troupe/v1/"):
        return "proto"
    for base in (root, os.path.join(root, includer_dir)):
        full = os.path.normpath(os.path.join(base, path))
        if os.path.isfile(full):
            rel = os.path.relpath(os.path.dirname(full), root)
            return rel if layer_of(rel) is not None else None
    return None


def collect_edges(root):
    """Returns {(from_folder, to_folder): count} and {folder} for every product folder."""
    edges, folders = {}, set()
    for top in PRODUCT_DIRS:
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            for name in sorted(files):
                if not name.endswith(SUFFIXES):
                    continue
                rel_dir = os.path.relpath(dirpath, root)
                folders.add(rel_dir)
                with open(os.path.join(dirpath, name), encoding="utf-8", errors="replace") as f:
                    text = f.read()
                for inc in INCLUDE.findall(text):
                    to = folder_of_include(inc, rel_dir, root)
                    if to is None or to == rel_dir:
                        continue
                    edges[(rel_dir, to)] = edges.get((rel_dir, to), 0) + 1
    return edges, folders


def find_cycles(edges):
    """Every folder cycle, one per strongly connected component: [[a, b, ..., a], ...]."""
    graph = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index, low, on_stack, stack, components = {}, {}, set(), [], []

    def connect(node):  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(set(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    cycles = []
    for component in components:  # walk one loop inside the component, for the message
        path = [min(component)]
        while path.count(path[-1]) < 2:
            path.append(min(n for n in graph[path[-1]] if n in component))
        cycles.append(path[path.index(path[-1]):])
    return cycles


def problems(edges):
    out = []
    for (a, b), n in sorted(edges.items()):
        if layer_of(b) > layer_of(a):
            out.append(f"upward edge: {a} -> {b} ({n} includes); {a} is below {b}")
    for cycle in find_cycles(edges):
        out.append("folder cycle: " + " -> ".join(cycle))
    return out


def node_id(folder):
    return folder.replace("/", "_")


def mermaid(edges, folders):
    """A flowchart with one box per layer (highest first) holding its folders, then the edges."""
    lines = ["flowchart TD"]
    everything = folders | {"proto"}
    for layer in reversed(LAYERS):
        members = sorted(f for f in everything if f.split("/")[0] == layer)
        lines.append(f'  subgraph layer_{layer}["{layer} layer"]')
        for folder in members:
            lines.append(f'    {node_id(folder)}["{folder}/"]')
        lines.append("  end")
    for (a, b) in sorted(edges):
        lines.append(f"  {node_id(a)} --> {node_id(b)}")
    return lines


def doc_edges(doc_path):
    """The edges written in the doc's Mermaid block between the check-layers markers."""
    with open(doc_path, encoding="utf-8") as f:
        text = f.read()
    if DOC_BEGIN not in text or DOC_END not in text:
        raise SystemExit(f"{doc_path}: no '{DOC_BEGIN}' ... '{DOC_END}' block")
    block = text.split(DOC_BEGIN, 1)[1].split(DOC_END, 1)[0]
    names = dict(re.findall(r'^\s*(\w+)\["([^"]+)/"\]', block, re.MULTILINE))
    pairs = set()
    for a, b in re.findall(r"^\s*(\w+)\s*-->\s*(\w+)\s*$", block, re.MULTILINE):
        pairs.add((names.get(a, a), names.get(b, b)))
    return pairs


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=ROOT, help="repository root (default: this checkout)")
    parser.add_argument("--edges", action="store_true", help="print every folder edge")
    parser.add_argument("--mermaid", action="store_true", help="print a Mermaid flowchart")
    parser.add_argument("--doc", help="a doc whose Mermaid block must show exactly these edges")
    args = parser.parse_args()

    edges, folders = collect_edges(args.root)
    if args.edges:
        for (a, b), n in sorted(edges.items()):
            print(f"{a} -> {b} ({n})")
    if args.mermaid:
        print("\n".join(mermaid(edges, folders)))

    failures = problems(edges)
    if args.doc:
        shown, real = doc_edges(args.doc), set(edges)
        for a, b in sorted(real - shown):
            failures.append(f"{args.doc}: picture lacks the edge {a} -> {b}")
        for a, b in sorted(shown - real):
            failures.append(f"{args.doc}: picture shows {a} -> {b}, which the tree does not have")
    if failures:
        for line in failures:
            print("check-layers: " + line, file=sys.stderr)
        if args.doc:
            print("check-layers: regenerate the picture with scripts/check-layers.py --mermaid",
                  file=sys.stderr)
        return 1
    if not (args.edges or args.mermaid):
        print(f"check-layers: {len(edges)} folder edges among {len(folders)} folders, "
              "no cycle, none upward")
    return 0


if __name__ == "__main__":
    sys.exit(main())
