#!/usr/bin/env python3
"""Writes tests/testdata/tokenizer_golden.json: llama.cpp's tokenization of varied strings.

For each model (loaded with llama_cpp.Llama(model_path, vocab_only=True)) and each string it
records the ids from llama_tokenize with add_special=True/parse_special=True ("ids_special") and
with add_special=False/parse_special=False ("ids_plain"), and the concatenated
llama_token_to_piece(lstrip=0) of ids_special with special=False ("text") and special=True
("text_special"). Per model it also records BOS/EOS, add_bos, the end-of-generation ids and an
FNV-1a-64 hash over every token's piece, so a test can check all pieces without storing them.

Usage: python3 scripts/golden/make_tokenizer_golden.py [--out PATH] [MODEL.gguf ...]
Defaults to the two project models, plus SmolLM2's vocabulary re-labelled with other
pre-tokenizers (entries with "pre_override"). Needs llama-cpp-python.
"""
import argparse
import ctypes
import json
import os
import struct
import sys
import tempfile

import llama_cpp

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_MODELS = [
    os.path.join(REPO, "..", "shared", "models", "stories260K.gguf"),
    os.path.join(REPO, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"),
]

STRINGS = [
    "Hello world",
    "Hello, world! How are you today?",
    "Once upon a time, there was a little girl named Lily.",
    " leading space",
    "trailing space ",
    "multiple   spaces   between    words",
    "numbers 12345 3.14 and 1,000,000",
    "12345678901234567890",
    "line one\nline two\n\nline four",
    "tabs\tand\t\ttabs",
    "mixed \t\n whitespace \r\n end",
    "Hello\tworld\n\tindented\r\nwindows line",
    "end.\n\nNew paragraph!\n\n\n",
    "'tis O'Neil's 'TIS",
    "   \n\n   ",
    " ",
    "\n",
    "",
    "emoji \U0001F600\U0001F389\U0001F44D\U0001F3FD family \U0001F468\u200d\U0001F469\u200d\U0001F467",
    "CJK \u4f60\u597d\u4e16\u754c \u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8 \ud55c\uad6d\uc5b4",
    "accents: caf\u00e9 na\u00efve r\u00e9sum\u00e9 Z\u00fcrich S\u00e3o Paulo \u00c5ngstr\u00f6m",
    "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440! \u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac",
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u0928\u092e\u0938\u094d\u0924\u0947 \u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22",
    "code: def f(x):\n    return x**2 + 1  # comment\n",
    "json {\"key\": [1, 2, 3], \"nested\": {\"a\": null}}",
    "contractions: don't I'll we're they've she'd it's I'M YOU'RE",
    "punctuation!!! ??? ... --- ((())) [brackets] {braces} <angle>",
    "URL https://example.com/path?query=1&b=2#frag",
    "email: someone@example.org, price $19.99 (50% off)",
    "math: x\u00b2 + y\u00b3 = z\u00bd, \u2460\u2461\u2462, \u216b",
    "fullwidth \uff21\uff22\uff23\uff11\uff12\uff13 and ideographic\u3000space",
    "ALL CAPS SHOUTING and MiXeD CaSe",
    "Roleplay: *She smiles softly* \"Welcome back,\" she said. \u2014 \u201cquoted\u201d \u2026",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|> <repo_name> <|im_end|>x",
    "<s>hello</s> [INST] inst [/INST]",
]


# Pre-tokenizers without a model of their own here: the SmolLM2 vocabulary is re-labelled with
# each (a metadata-only GGUF copy with another tokenizer.ggml.pre), so llama.cpp's splitting for
# Llama-3, Qwen2, GPT-2 and its default regexes is exercised on real merges.
PRE_VARIANTS = ["llama-bpe", "qwen2", "gpt-2", "default"]
GGUF_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def _skip_value(f, vtype):
    if vtype == 8:
        (n,) = struct.unpack("<Q", f.read(8))
        f.seek(n, 1)
    elif vtype == 9:
        atype, count = struct.unpack("<IQ", f.read(12))
        if atype in GGUF_SCALAR_SIZES:
            f.seek(GGUF_SCALAR_SIZES[atype] * count, 1)
        else:
            for _ in range(count):
                _skip_value(f, atype)
    else:
        f.seek(GGUF_SCALAR_SIZES[vtype], 1)


def write_pre_variant(src, pre, dst):
    """Copies src's metadata (no tensors) to dst with tokenizer.ggml.pre set to `pre`."""
    with open(src, "rb") as f:
        magic, version, _, n_kv = struct.unpack("<4sIQQ", f.read(24))
        assert magic == b"GGUF" and version == 3, src
        kvs = []
        for _ in range(n_kv):
            start = f.tell()
            (klen,) = struct.unpack("<Q", f.read(8))
            key = f.read(klen).decode()
            (vtype,) = struct.unpack("<I", f.read(4))
            _skip_value(f, vtype)
            end = f.tell()
            f.seek(start)
            kvs.append((key, f.read(end - start)))
    out = []
    for key, raw in kvs:
        if key == "tokenizer.ggml.pre":
            continue
        out.append(raw)
    k, v = b"tokenizer.ggml.pre", pre.encode()
    out.append(struct.pack("<Q", len(k)) + k + struct.pack("<IQ", 8, len(v)) + v)
    with open(dst, "wb") as f:
        f.write(struct.pack("<4sIQQ", b"GGUF", 3, 0, len(out)))
        for raw in out:
            f.write(raw)
        f.write(b"\0" * (-f.tell() % 32))


def piece(vocab, token, special):
    buf = ctypes.create_string_buffer(256)
    n = llama_cpp.llama_token_to_piece(vocab, token, buf, len(buf), 0, special)
    if n < 0:
        buf = ctypes.create_string_buffer(-n)
        n = llama_cpp.llama_token_to_piece(vocab, token, buf, len(buf), 0, special)
    return buf.raw[:n]


def fnv1a64(h, data):
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def pieces_hash(vocab, n_vocab, special):
    """FNV-1a 64 over, for every id in order, the 4-byte little-endian length then the piece."""
    h = 0xCBF29CE484222325
    for i in range(n_vocab):
        p = piece(vocab, i, special)
        h = fnv1a64(h, len(p).to_bytes(4, "little"))
        h = fnv1a64(h, p)
    return "%016x" % h


def model_golden(path, name=None, pre=None):
    llm = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
    vocab = llm._model.vocab
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
    cases = []
    for text in STRINGS:
        data = text.encode("utf-8")
        ids_special = llm.tokenize(data, add_bos=True, special=True)
        ids_plain = llm.tokenize(data, add_bos=False, special=False)
        cases.append({
            "text_in": text,
            "ids_special": ids_special,
            "ids_plain": ids_plain,
            "text": b"".join(piece(vocab, t, False) for t in ids_special).decode("utf-8"),
            "text_special": b"".join(piece(vocab, t, True) for t in ids_special).decode("utf-8"),
        })
    return {
        "model": name or os.path.basename(path),
        "pre_override": pre,
        "n_vocab": n_vocab,
        "bos": llama_cpp.llama_vocab_bos(vocab),
        "eos": llama_cpp.llama_vocab_eos(vocab),
        "add_bos": bool(llama_cpp.llama_vocab_get_add_bos(vocab)),
        "eog_ids": [i for i in range(n_vocab) if llama_cpp.llama_vocab_is_eog(vocab, i)],
        "pieces_fnv1a64": pieces_hash(vocab, n_vocab, False),
        "pieces_special_fnv1a64": pieces_hash(vocab, n_vocab, True),
        "cases": cases,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=DEFAULT_MODELS)
    parser.add_argument("--out", default=os.path.join(REPO, "tests", "testdata",
                                                      "tokenizer_golden.json"))
    parser.add_argument("--pre-variants-of", default=DEFAULT_MODELS[1],
                        help="gpt2 model whose vocabulary is re-labelled with PRE_VARIANTS "
                             "('' to skip)")
    args = parser.parse_args()
    models = [model_golden(os.path.normpath(m)) for m in args.models]
    if args.pre_variants_of:
        with tempfile.TemporaryDirectory() as tmp:
            for pre in PRE_VARIANTS:
                dst = os.path.join(tmp, "vocab-%s.gguf" % pre)
                write_pre_variant(args.pre_variants_of, pre, dst)
                models.append(model_golden(dst, os.path.basename(args.pre_variants_of), pre))
    golden = {
        "oracle": "llama.cpp via llama-cpp-python %s (llama_tokenize, llama_token_to_piece)"
                  % llama_cpp.__version__,
        "models": models,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print("wrote %s (%d models x %d strings)" % (args.out, len(golden["models"]), len(STRINGS)),
          file=sys.stderr)


if __name__ == "__main__":
    main()
