#!/usr/bin/env python3
"""Rewrites a kernel .cu file into C++ that the host compiler builds against cuda_cpu.h.

  K<<<grid, block, shared, stream>>>(args);  ->  ::troupe::cuda_cpu::Launch(K, grid, block,
                                                  shared, stream)(args);
  extern __shared__ [__align__(n)] T name[];  ->  T* name = reinterpret_cast<T*>(
                                                  ::troupe::cuda_cpu::DynamicShared());

Usage: translate.py IN.cu OUT.cc
"""
import os
import re
import sys

LAUNCH = re.compile(r"^(?P<indent>\s*)(?P<kernel>[\w:<>, ]+?)<<<(?P<config>.*?)>>>(?P<rest>.*)$")
EXTERN_SHARED = re.compile(
    r"extern\s+__shared__\s+(?:__align__\(\d+\)\s+)?(?P<type>[\w\s:]+?)\s+(?P<name>\w+)\s*\[\s*\]\s*;")


def translate(text, path):
    out = ['#include "tests/cuda_cpu/cuda_cpu.h"', f'#line 1 "{path}"']
    for number, line in enumerate(text.splitlines(), 1):
        if "<<<" in line:
            m = LAUNCH.match(line)
            if not m:
                sys.exit(f"{path}:{number}: cannot translate this launch: {line.strip()}")
            line = (f"{m['indent']}::troupe::cuda_cpu::Launch({m['kernel']}, {m['config']})"
                    f"{m['rest']}")
        line = EXTERN_SHARED.sub(
            lambda m: (f"{m['type']}* {m['name']} = reinterpret_cast<{m['type']}*>("
                       "::troupe::cuda_cpu::DynamicShared());"), line)
        if "__shared__" in line and "extern" in line:
            sys.exit(f"{path}:{number}: cannot translate this shared declaration: {line.strip()}")
        out.append(line)
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, dst = sys.argv[1], sys.argv[2]
    with open(src) as f:
        result = translate(f.read(), src)
    # Ninja makes an output's folder before running its command; Unix Makefiles does not.
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    with open(dst, "w") as f:
        f.write(result)


if __name__ == "__main__":
    main()
