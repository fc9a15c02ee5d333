#!/usr/bin/env python3
"""Re-runs an existing golden file's prompts through llama.cpp with an f32 KV cache.

llama.cpp's defaults keep K and V in f16 (and its flash-attention path also accumulates
softmax(QK)V in f16). troupe's CPU backend keeps the KV cache in f32, so the closest oracle for
its arithmetic is llama.cpp with type_k = type_v = F32 and flash attention off. This script
writes such a golden file, in the shape of ../shared/golden/stories260K-greedy.json, for the
prompts (token ids) of an existing golden file.

Usage: scripts/golden/make_f32kv_golden.py --model M.gguf --prompts-from G.json --out OUT.json
       [--steps N]
Oracle: llama-cpp-python 0.3.36 (pip install llama-cpp-python==0.3.36).
"""

import argparse
import json
import pathlib

import llama_cpp
import numpy as np

GGML_TYPE_F32 = 0
TOP_STEPS = 4
TOP_K = 5


def log_softmax(logits):
    x = np.asarray(logits, dtype=np.float64)
    x = x - x.max()
    return x - np.log(np.exp(x).sum())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=pathlib.Path, required=True)
    ap.add_argument("--prompts-from", type=pathlib.Path, required=True)
    ap.add_argument("--out", type=pathlib.Path, required=True)
    ap.add_argument("--steps", type=int, default=0, help="greedy steps; 0 = as many as the source")
    args = ap.parse_args()
    source = json.loads(args.prompts_from.read_text())
    llm = llama_cpp.Llama(model_path=str(args.model), n_ctx=1024, n_threads=2, logits_all=True,
                          type_k=GGML_TYPE_F32, type_v=GGML_TYPE_F32, flash_attn=False,
                          verbose=False)
    cases = []
    for case in source["cases"]:
        prompt = list(case["prompt_tokens"])
        steps = args.steps or len(case["greedy_tokens"])
        llm.reset()
        llm.eval(prompt)
        tokens, first_steps = [], []
        for step in range(steps):
            logits = np.asarray(llm.scores[llm.n_tokens - 1], dtype=np.float64)
            token = int(np.argmax(logits))  # lowest id on ties
            if step < TOP_STEPS:
                lp = log_softmax(logits)
                order = np.argsort(-lp, kind="stable")[:TOP_K]
                first_steps.append({"id": token,
                                    "top_logprobs": [[int(t), round(float(lp[t]), 5)] for t in order]})
            tokens.append(token)
            llm.eval([token])
        cases.append({"prompt": case["prompt"], "prompt_tokens": prompt, "greedy_tokens": tokens,
                      "greedy_text": llm.detokenize(tokens).decode("utf-8", errors="replace"),
                      "first_steps_top5_logprobs": first_steps})
    golden = {"model": args.model.name,
              "oracle": (f"llama.cpp via llama-cpp-python {llama_cpp.__version__}, CPU, n_threads=2, "
                         "KV cache F32 (type_k=type_v=F32), flash attention off, greedy = argmax "
                         "after each single-token eval"),
              "cases": cases}
    args.out.write_text(json.dumps(golden, indent=1) + "\n")


if __name__ == "__main__":
    main()
