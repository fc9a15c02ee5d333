#!/usr/bin/env python3
"""Writes engine/embedding/bert_unicode_tables.h: the per-code-point behaviour of HF tokenizers'
BertNormalizer (clean_text, handle_chinese_chars, strip_accents, lowercase) and BertPreTokenizer.

The tables are measured, not derived from a Unicode database: every code point U+0000..U+10FFFF
(surrogates excluded) is run through the normalizer and the pre-tokenizer of the model's own
tokenizer.json with the `tokenizers` library, so they reproduce the reference's (older) Unicode
tables exactly, whatever Python's unicodedata version is. The C++ model is

    fold(c) = c dropped          if c in kDropped   (Cc, Cf, Co, Mn, NUL, U+FFFD)
              " "                if c in kWhitespace
              " " + f(c) + " "   if c in kCjk       (f: the fold map below, else c)
              f(c)                otherwise          (NFD, minus Mn marks, lowercased)

where f comes from kFoldRuns / kFoldMulti, plus Hangul syllables decomposed algorithmically (the
Unicode formula) into their jamo. Before writing, the script checks that this model reproduces
the reference for every code point (except the CJK compatibility ideographs left out below) and
that kPunctuation + kWhitespace are exactly the pre-tokenizer's split characters.

Left out, on purpose: the ~1000 CJK compatibility ideographs (U+F900..U+FAFF, U+2F800..U+2FA1F)
whose NFD is a unified ideograph. They are still split off as CJK characters, but keep their own
code point, which the vocabulary does not hold ([UNK] either way for almost all of them). Canonical
reordering of the combining marks that survive (Mc, Me) is not modelled either.

Usage (the run that produced the checked-in file; tokenizers 0.23.3):
  python3 -m venv /tmp/embvenv && /tmp/embvenv/bin/pip install tokenizers
  /tmp/embvenv/bin/python scripts/golden/make_bert_unicode_tables.py \
      [--tokenizer models/all-MiniLM-L6-v2/tokenizer.json] [--out engine/embedding/bert_unicode_tables.h]
"""

import argparse
import pathlib

import tokenizers
from tokenizers import Tokenizer

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
MAX_CP = 0x110000
HANGUL_FIRST, HANGUL_LAST = 0xAC00, 0xD7A3
CJK_COMPAT = [(0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]


def code_points():
    return [c for c in range(MAX_CP) if not 0xD800 <= c <= 0xDFFF]


def to_ranges(cps):
    out = []
    for c in sorted(cps):
        if out and out[-1][1] == c - 1:
            out[-1][1] = c
        else:
            out.append([c, c])
    return out


def in_ranges(c, ranges):
    return any(a <= c <= b for a, b in ranges)


def hangul_nfd(c):
    s = c - HANGUL_FIRST
    l, v, t = 0x1100 + s // 588, 0x1161 + (s % 588) // 28, 0x11A7 + s % 28
    return [l, v] + ([t] if t != 0x11A7 else [])


def fold_runs(single):
    """Greedy runs {first, last, to, step}: cp in [first, last] -> to + (cp - first) * step."""
    cps, runs, i = sorted(single), [], 0
    while i < len(cps):
        best, best_step = 1, 0
        for step in (0, 1):
            j = i
            while (j + 1 < len(cps) and cps[j + 1] == cps[j] + 1 and
                   single[cps[j + 1]] == single[cps[i]] + (cps[j + 1] - cps[i]) * step):
                j += 1
            if j - i + 1 > best:
                best, best_step = j - i + 1, step
        runs.append((cps[i], cps[i + best - 1], single[cps[i]], best_step))
        i += best
    return runs


def measure(tok):
    norm, pre = tok.normalizer, tok.pre_tokenizer
    dropped, whitespace, cjk, fold, split = [], [], [], {}, []
    for c in code_points():
        s = chr(c)
        out = norm.normalize_str(s)
        if out == "":
            dropped.append(c)
        elif out == " ":
            whitespace.append(c)
        elif len(out) >= 3 and out[0] == " " and out[-1] == " ":
            cjk.append(c)
            if out[1:-1] != s:
                fold[c] = [ord(x) for x in out[1:-1]]
        elif out != s:
            fold[c] = [ord(x) for x in out]
        if [p for p, _ in pre.pre_tokenize_str("a" + s + "b")] != ["a" + s + "b"]:
            split.append(c)
    return dropped, whitespace, cjk, fold, split


def pack_lines(items, width=100):
    """Initializer items, as many per 4-space-indented line as fit in `width` columns."""
    lines, line = [], ""
    for item in items:
        if line and len("    " + line + " " + item + ",") > width:
            lines.append("    " + line)
            line = ""
        line += (" " if line else "") + item + ","
    if line:
        lines.append("    " + line)
    return lines


def emit_ranges(name, ranges, comment):
    lines = [f"// {comment}", f"inline constexpr Range {name}[] = {{"]
    lines += pack_lines([f"{{0x{a:04X}, 0x{b:04X}}}" for a, b in ranges])
    lines.append("};")
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", default=REPO_ROOT / "models/all-MiniLM-L6-v2/tokenizer.json")
    ap.add_argument("--out", default=REPO_ROOT / "engine/embedding/bert_unicode_tables.h")
    args = ap.parse_args()
    tok = Tokenizer.from_file(str(args.tokenizer))
    dropped, whitespace, cjk, fold, split = measure(tok)

    # Pre-tokenizer: whitespace (Rust's char::is_whitespace) plus punctuation.
    pre_ws = [c for c in split if tok.pre_tokenizer.pre_tokenize_str("a" + chr(c) + "b")
              == [("a", (0, 1)), ("b", (2, 3))]]
    punctuation = sorted(set(split) - set(pre_ws))
    for c in punctuation:
        parts = [p for p, _ in tok.pre_tokenizer.pre_tokenize_str("a" + chr(c) + "b")]
        assert parts == ["a", chr(c), "b"], (hex(c), parts)

    # The fold map, without Hangul (algorithmic) and the CJK compatibility ideographs.
    for c in range(HANGUL_FIRST, HANGUL_LAST + 1):
        assert fold.pop(c) == hangul_nfd(c), hex(c)
    for c in [c for c in fold if in_ranges(c, CJK_COMPAT)]:
        del fold[c]
    single = {c: v[0] for c, v in fold.items() if len(v) == 1}
    multi = {c: v for c, v in fold.items() if len(v) > 1}
    assert all(len(v) <= 3 for v in multi.values())
    runs = fold_runs(single)

    # Check the C++ model against the measurement for every code point.
    cjk_r = to_ranges(cjk)
    dropped_set, ws_set, cjk_set = set(dropped), set(whitespace), set(cjk)
    norm = tok.normalizer
    for c in code_points():
        if in_ranges(c, CJK_COMPAT):
            continue
        if HANGUL_FIRST <= c <= HANGUL_LAST:
            f = hangul_nfd(c)
        elif c in multi:
            f = multi[c]
        else:
            f = [single.get(c, c)]
        body = "".join(map(chr, f))
        if c in dropped_set:
            want = ""
        elif c in ws_set:
            want = " "
        elif c in cjk_set:
            want = " " + body + " "
        else:
            want = body
        assert norm.normalize_str(chr(c)) == want, hex(c)

    out = [
        "// GENERATED by scripts/golden/make_bert_unicode_tables.py from HF tokenizers "
        f"{tokenizers.__version__}",
        "// (BertNormalizer + BertPreTokenizer of all-MiniLM-L6-v2's tokenizer.json). Do not edit.",
        "// Included only by engine/embedding/bert_unicode.cc; see bert_unicode.h for the model.",
        "#pragma once",
        "",
        "#include <cstdint>",
        "",
        "namespace troupe::bert_unicode::tables {",
        "",
        "struct Range {",
        "  uint32_t first;",
        "  uint32_t last;  // inclusive",
        "};",
        "// Code points first..last map to to + (cp - first) * step.",
        "struct FoldRun {",
        "  uint32_t first;",
        "  uint32_t last;",
        "  uint32_t to;",
        "  uint32_t step;  // 0 or 1",
        "};",
        "struct FoldMulti {",
        "  uint32_t from;",
        "  uint32_t to[3];  // 0 ends a shorter sequence",
        "};",
        "",
        "// clang-format off",
    ]
    out += emit_ranges("kDropped", to_ranges(dropped),
                       "Removed by clean_text (Cc, Cf, Co, NUL, U+FFFD) or strip_accents (Mn).")
    out += [""]
    out += emit_ranges("kWhitespace", to_ranges(set(whitespace) | set(pre_ws)),
                       "Rust's char::is_whitespace: becomes ' ' in clean_text; splits words.")
    out += [""]
    out += emit_ranges("kCjk", cjk_r, "handle_chinese_chars: padded with spaces.")
    out += [""]
    out += emit_ranges("kPunctuation", to_ranges(punctuation),
                       "BertPreTokenizer's punctuation: ASCII punctuation plus Unicode P*.")
    out += ["", "// NFD minus Mn, lowercased: single code point results, as runs.",
            "inline constexpr FoldRun kFoldRuns[] = {"]
    out += pack_lines([f"{{0x{a:04X}, 0x{b:04X}, 0x{t:04X}, {s}}}" for a, b, t, s in runs])
    out += ["};", "", "// Results of two or three code points.",
            "inline constexpr FoldMulti kFoldMulti[] = {"]
    items = []
    for c in sorted(multi):
        to = multi[c] + [0] * (3 - len(multi[c]))
        items.append(f"{{0x{c:04X}, {{0x{to[0]:04X}, 0x{to[1]:04X}, 0x{to[2]:04X}}}}}")
    out += pack_lines(items)
    out += ["};", "// clang-format on", "", "}  // namespace troupe::bert_unicode::tables", ""]
    pathlib.Path(args.out).write_text("\n".join(out))
    print(f"wrote {args.out}: {len(to_ranges(dropped))} dropped ranges, {len(cjk_r)} CJK ranges, "
          f"{len(to_ranges(punctuation))} punctuation ranges, {len(runs)} fold runs, "
          f"{len(multi)} multi folds")


if __name__ == "__main__":
    main()
