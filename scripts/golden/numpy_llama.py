#!/usr/bin/env python3
"""A float64 reference forward pass of a GGUF Llama model, in numpy, for checking troupe's
arithmetic independently of llama.cpp's own rounding (8-bit activations, f16 KV).

Weights are dequantized with the `gguf` package (pip install gguf numpy) and every operation
runs in float64, so the result is the model's exact output up to float64 rounding. Prints, for
each prompt of a golden file, the greedy ids and the top-5 logprobs of the first steps, and
can write them as a golden file of the usual shape.

Usage: scripts/golden/numpy_llama.py --model M.gguf --prompts-from G.json [--steps 8] [--out F]
"""

import argparse
import json
import pathlib

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize


def field(reader, key, default=None):
    f = reader.fields.get(key)
    if f is None:
        return default
    v = f.parts[f.data[0]]
    return v.tolist()[0] if len(v) == 1 else v.tolist()


class Model:
    def __init__(self, path):
        r = GGUFReader(path)
        self.t = {}
        for t in r.tensors:
            w = dequantize(t.data, t.tensor_type).astype(np.float64)
            self.t[t.name] = w.reshape([int(x) for x in reversed(t.shape)]) if w.ndim == 1 and len(t.shape) > 1 else w
        arch = "llama"
        self.dim = field(r, f"{arch}.embedding_length")
        self.n_layers = field(r, f"{arch}.block_count")
        self.n_heads = field(r, f"{arch}.attention.head_count")
        self.n_kv = field(r, f"{arch}.attention.head_count_kv", self.n_heads)
        self.eps = field(r, f"{arch}.attention.layer_norm_rms_epsilon", 1e-5)
        self.theta = field(r, f"{arch}.rope.freq_base", 10000.0)
        self.hd = self.dim // self.n_heads
        self.rot = field(r, f"{arch}.rope.dimension_count", self.hd)
        self.out = self.t.get("output.weight", self.t["token_embd.weight"])

    def norm(self, x, w):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + self.eps) * w

    def rope(self, x, pos):  # x [T, H, hd]; interleaved pairs (Llama GGUF)
        i = np.arange(self.rot // 2)
        inv = self.theta ** (-2.0 * i / self.rot)
        ang = pos[:, None] * inv[None, :]
        c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        x = x.copy()
        a, b = x[..., 0:self.rot:2].copy(), x[..., 1:self.rot:2].copy()
        x[..., 0:self.rot:2] = a * c - b * s
        x[..., 1:self.rot:2] = a * s + b * c
        return x

    def logits(self, tokens):
        T = len(tokens)
        x = self.t["token_embd.weight"][tokens]
        pos = np.arange(T, dtype=np.float64)
        mask = np.triu(np.full((T, T), -np.inf), 1)
        g = self.n_heads // self.n_kv
        for l in range(self.n_layers):
            p = f"blk.{l}."
            h = self.norm(x, self.t[p + "attn_norm.weight"])
            q = (h @ self.t[p + "attn_q.weight"].T).reshape(T, self.n_heads, self.hd)
            k = (h @ self.t[p + "attn_k.weight"].T).reshape(T, self.n_kv, self.hd)
            v = (h @ self.t[p + "attn_v.weight"].T).reshape(T, self.n_kv, self.hd)
            q, k = self.rope(q, pos), self.rope(k, pos)
            att = np.empty((T, self.n_heads, self.hd))
            for hh in range(self.n_heads):
                s = q[:, hh] @ k[:, hh // g].T / np.sqrt(self.hd) + mask
                s = np.exp(s - s.max(-1, keepdims=True))
                att[:, hh] = (s / s.sum(-1, keepdims=True)) @ v[:, hh // g]
            x = x + att.reshape(T, -1) @ self.t[p + "attn_output.weight"].T
            h = self.norm(x, self.t[p + "ffn_norm.weight"])
            gate = h @ self.t[p + "ffn_gate.weight"].T
            up = h @ self.t[p + "ffn_up.weight"].T
            x = x + (gate / (1 + np.exp(-gate)) * up) @ self.t[p + "ffn_down.weight"].T
        return self.norm(x[-1], self.t["output_norm.weight"]) @ self.out.T


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompts-from", required=True)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--out")
    args = ap.parse_args()
    m = Model(args.model)
    src = json.loads(pathlib.Path(args.prompts_from).read_text())
    cases = []
    for case in src["cases"]:
        toks = list(case["prompt_tokens"])
        out, first = [], []
        for step in range(args.steps):
            lg = m.logits(toks)
            lp = lg - lg.max()
            lp = lp - np.log(np.exp(lp).sum())
            t = int(np.argmax(lg))
            order = np.argsort(-lp, kind="stable")[:5]
            if step < 4:
                first.append({"id": t, "top_logprobs": [[int(i), round(float(lp[i]), 5)] for i in order]})
            out.append(t)
            toks.append(t)
        print(case["prompt"][:40], out, first[0]["top_logprobs"])
        cases.append({"prompt": case["prompt"], "prompt_tokens": case["prompt_tokens"],
                      "greedy_tokens": out, "first_steps_top5_logprobs": first})
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps(
            {"model": pathlib.Path(args.model).name,
             "oracle": "scripts/golden/numpy_llama.py: float64 numpy forward pass of the dequantized weights",
             "cases": cases}, indent=1) + "\n")


if __name__ == "__main__":
    main()
