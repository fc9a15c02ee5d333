#!/usr/bin/env python3
"""Writes engine/tokenizer/nfc_tables.h: the data of Unicode Normalization Form C (NFC), for the
NFC normalizer Qwen2's tokenizer.json names (engine/tokenizer/nfc.cc).

The reference is the `tokenizers` library's NFC, whose Unicode data is older than Python's: marks
added since are starters to it (no reordering) and a few compositions are missing. So the tables
are measured from tokenizers where they can be, as make_bert_unicode_tables.py does, with
Python's unicodedata only naming the candidates:
  kDecompositions  every code point whose NFD (tokenizers') differs from itself (Hangul
                   syllables excluded: they decompose by formula), as offsets into
                   kDecompositionData;
  kCombiningClass  runs of code points with a non-zero canonical combining class: unicodedata's
                   class, kept where tokenizers reorders the mark against a class-1 or a
                   class-230 mark (it is a non-starter to tokenizers too);
  kCompositions    the primary composites: (first, second) -> composite for every code point
                   whose canonical decomposition is a pair that tokenizers' NFC recomposes (so
                   the composition exclusions and singletons are left out), sorted by pair.
  kStableBelow     every code point below it is NFC and a starter, so text under it is left as is.

Before writing, the script checks the C++ algorithm's model of NFC (decompose, order marks,
compose), run here in Python over these tables, against tokenizers' NFC for every code point
alone and for 20000 random strings of letters and combining marks.

Requires: pip install tokenizers==0.23.3 (the version the checked-in file was made with).
Usage: scripts/golden/make_nfc_tables.py [--out engine/tokenizer/nfc_tables.h]
"""

import argparse
import pathlib
import random
import sys
import unicodedata

import tokenizers
import tokenizers.normalizers

NFC = tokenizers.normalizers.NFC()
NFD = tokenizers.normalizers.NFD()

HANGUL_S, HANGUL_L, HANGUL_V, HANGUL_T = 0xAC00, 0x1100, 0x1161, 0x11A7
L_COUNT, V_COUNT, T_COUNT = 19, 21, 28
S_COUNT = L_COUNT * V_COUNT * T_COUNT


def code_points():
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        yield cp


def canonical_pair(cp):
    d = unicodedata.decomposition(chr(cp))
    if not d or d.startswith("<"):
        return None
    parts = [int(x, 16) for x in d.split()]
    return parts


def build():
    decomp, ccc, comp = {}, {}, {}
    for cp in code_points():
        if HANGUL_S <= cp < HANGUL_S + S_COUNT:
            continue
        c = chr(cp)
        nfd = NFD.normalize_str(c)
        if nfd != c:
            decomp[cp] = [ord(x) for x in nfd]
        cc = unicodedata.combining(c)
        if cc and (NFD.normalize_str("a" + c + "\u0334") != "a" + c + "\u0334" or
                   NFD.normalize_str("a\u0301" + c) != "a\u0301" + c):
            ccc[cp] = cc
        parts = canonical_pair(cp)
        if parts and len(parts) == 2 and NFC.normalize_str(chr(parts[0]) + chr(parts[1])) == c:
            comp[(parts[0], parts[1])] = cp
    stable = 0
    for cp in code_points():
        c = chr(cp)
        if NFC.normalize_str(c) != c or cp in ccc or cp in decomp:
            break
        stable = cp + 1
    return decomp, ccc, comp, stable


def model_nfc(s, decomp, ccc, comp):
    """The algorithm engine/tokenizer/nfc.cc implements, over the tables."""
    out = []
    for ch in s:
        cp = ord(ch)
        if HANGUL_S <= cp < HANGUL_S + S_COUNT:
            i = cp - HANGUL_S
            out += [HANGUL_L + i // (V_COUNT * T_COUNT), HANGUL_V + (i % (V_COUNT * T_COUNT)) // T_COUNT]
            if i % T_COUNT:
                out.append(HANGUL_T + i % T_COUNT)
        else:
            out += decomp.get(cp, [cp])
    # Canonical order: stable sort of each run of non-starters by class.
    i = 0
    while i < len(out):
        if ccc.get(out[i], 0) == 0:
            i += 1
            continue
        j = i
        while j < len(out) and ccc.get(out[j], 0) != 0:
            j += 1
        out[i:j] = sorted(out[i:j], key=lambda c: ccc[c])
        i = j
    # Compose.
    res = []
    starter = -1
    last_cc = -1
    for cp in out:
        cc = ccc.get(cp, 0)
        if starter >= 0 and (last_cc < cc or (last_cc == 0 and res and len(res) - 1 == starter)):
            first = res[starter]
            composite = None
            if HANGUL_L <= first < HANGUL_L + L_COUNT and HANGUL_V <= cp < HANGUL_V + V_COUNT:
                composite = HANGUL_S + ((first - HANGUL_L) * V_COUNT + (cp - HANGUL_V)) * T_COUNT
            elif (HANGUL_S <= first < HANGUL_S + S_COUNT and (first - HANGUL_S) % T_COUNT == 0
                  and HANGUL_T < cp < HANGUL_T + T_COUNT):
                composite = first + (cp - HANGUL_T)
            else:
                composite = comp.get((first, cp))
            if composite is not None:
                res[starter] = composite
                continue
        if cc == 0:
            starter = len(res)
            last_cc = 0
        else:
            last_cc = cc
        res.append(cp)
    return "".join(chr(c) for c in res)


def check(decomp, ccc, comp):
    bad = 0
    for cp in code_points():
        c = chr(cp)
        if model_nfc(c, decomp, ccc, comp) != NFC.normalize_str(c):
            bad += 1
    rng = random.Random(7)
    marks = [cp for cp in code_points() if unicodedata.combining(chr(cp))]
    letters = [cp for cp in range(0x41, 0x250)] + [0x3B1, 0x3C9, 0x1100, 0x1161, 0x11A8, 0xAC00,
                                                    0x915, 0x93C, 0x1E36, 0x212B, 0x0F71, 0x0F72]
    samples = []
    for _ in range(20000):
        s = "".join(chr(rng.choice(letters if rng.random() < 0.5 else marks))
                    for _ in range(rng.randint(1, 8)))
        if model_nfc(s, decomp, ccc, comp) != NFC.normalize_str(s):
            bad += 1
    return bad


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = pathlib.Path(__file__).resolve().parents[2]
    parser.add_argument("--out", default=str(root / "engine/tokenizer/nfc_tables.h"))
    args = parser.parse_args()
    decomp, ccc, comp, stable = build()
    bad = check(decomp, ccc, comp)
    if bad:
        print(f"the model of NFC disagrees with tokenizers' on {bad} cases", file=sys.stderr)
        return 1
    lines = [
        "// Generated by scripts/golden/make_nfc_tables.py, measured from tokenizers "
        f"{tokenizers.__version__}'s NFC (candidates from",
        f"// Python's unicodedata {unicodedata.unidata_version}). Do not edit.",
        "// The data of NFC for engine/tokenizer/nfc.cc: full canonical decompositions, non-zero",
        "// canonical combining classes, and primary composites (pairs sorted).",
        "#pragma once", "", "#include <cstdint>", "", "namespace troupe::unicode::nfc_tables {", "",
        f"inline constexpr uint32_t kStableBelow = 0x{stable:X};", "",
        "struct Decomposition {", "  uint32_t cp;", "  uint16_t offset;  // into kDecompositionData",
        "  uint8_t length;", "};", "",
    ]
    data, entries = [], []
    for cp in sorted(decomp):
        entries.append((cp, len(data), len(decomp[cp])))
        data += decomp[cp]
    assert len(data) < 65536
    lines.append("inline constexpr uint32_t kDecompositionData[] = {")
    for i in range(0, len(data), 10):
        lines.append("    " + " ".join(f"0x{x:X}," for x in data[i:i + 10]))
    lines += ["};", "", "inline constexpr Decomposition kDecompositions[] = {"]
    for i in range(0, len(entries), 4):
        lines.append("    " + " ".join(f"{{0x{c:X}, {o}, {n}}}," for c, o, n in entries[i:i + 4]))
    lines += ["};", "", "struct ClassRun {", "  uint32_t first, last;", "  uint8_t ccc;", "};", "",
              "inline constexpr ClassRun kCombiningClass[] = {"]
    runs = []
    for cp in sorted(ccc):
        if runs and runs[-1][1] == cp - 1 and runs[-1][2] == ccc[cp]:
            runs[-1][1] = cp
        else:
            runs.append([cp, cp, ccc[cp]])
    for i in range(0, len(runs), 4):
        lines.append("    " + " ".join(f"{{0x{a:X}, 0x{b:X}, {c}}}," for a, b, c in runs[i:i + 4]))
    lines += ["};", "", "struct Composition {", "  uint32_t first, second, composite;", "};", "",
              "inline constexpr Composition kCompositions[] = {"]
    pairs = sorted(comp.items())
    for i in range(0, len(pairs), 3):
        lines.append("    " + " ".join(f"{{0x{a:X}, 0x{b:X}, 0x{c:X}}},"
                                       for (a, b), c in pairs[i:i + 3]))
    lines += ["};", "", "}  // namespace troupe::unicode::nfc_tables", ""]
    pathlib.Path(args.out).write_text("\n".join(lines))
    print(f"{args.out}: {len(entries)} decompositions, {len(runs)} class runs, {len(pairs)} "
          f"compositions, stable below U+{stable:04X}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
