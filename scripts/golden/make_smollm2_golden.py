#!/usr/bin/env python3
"""Writes tests/testdata/smollm2-greedy.json: llama.cpp's greedy outputs for the default model.

The oracle is llama.cpp through llama-cpp-python (`pip install llama-cpp-python==0.3.36`, or
the bindings scripts/peer/build-llama-bench.sh leaves: PYTHONPATH=third_party_cache/
llama.cpp-0.3.36/python LLAMA_CPP_LIB_PATH=third_party_cache/llama.cpp-0.3.36/bin; that build
reproduces tests/testdata/smollm2-greedy.json exactly).
For each prompt it records the prompt token ids, GREEDY_STEPS greedy token ids (argmax of
the logits, computed here rather than by llama.cpp's sampler, lowest id on ties), their text,
the top-5 log-probabilities (log-softmax of the logits, float64) of the first TOP_STEPS
steps, and the top-1/top-2 logit gap of every step. Generation does not stop at end-of-turn
tokens: the chain is the model's argmax continuation, which is what a forward-pass
comparison needs.

Same shape as ../shared/golden/stories260K-greedy.json, plus model-level fields.
--f32-kv runs llama.cpp with an F32 KV cache and flash attention off (the default is llama.cpp's
default, an F16 cache): troupe's f16 cache follows llama.cpp's flash-attention arithmetic, its
f32 cache has no rounding to disagree about.
Usage: scripts/golden/make_smollm2_golden.py [--model PATH] [--out PATH] [--f32-kv]
"""

import argparse
import hashlib
import json
import pathlib
import sys

import llama_cpp
import numpy as np

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
GREEDY_STEPS = 32
TOP_STEPS = 4
TOP_K = 5
# llama.cpp commit vendored by each llama-cpp-python release we have used (from the sdist's
# submodule metadata; see scripts/peer/build-llama-bench.sh).
VENDORED_LLAMA_CPP = {"0.3.36": "0c1e57098bba (2026-10-01)"}


def chatml(system: str, user: str) -> str:
    """The model's chat template (GGUF tokenizer.chat_template) with add_generation_prompt."""
    return (f"<|im_start|>system\n{system}<|im_end|>\n"
            f"<|im_start|>user\n{user}<|im_end|>\n"
            "<|im_start|>assistant\n")


PROMPTS = [
    "Once upon a time",
    "The capital of France is",
    "def fibonacci(n):\n",
    chatml("You are a helpful AI assistant named SmolLM, trained by Hugging Face",
           "Write a short story about a brave knight and a dragon."),
    chatml("You are Captain Mira, a cheerful pirate captain. Stay in character.",
           "Captain, where are we sailing today, and what treasure are we after?"),
]


def log_softmax(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64)
    x = x - x.max()
    return x - np.log(np.exp(x).sum())


def top_logprobs(logits: np.ndarray) -> list:
    lp = log_softmax(logits)
    # Sort by descending logprob, ascending id on ties (stable sort of -lp).
    order = np.argsort(-lp, kind="stable")[:TOP_K]
    return [[int(i), round(float(lp[i]), 5)] for i in order]


def run_case(llm: llama_cpp.Llama, prompt: str, add_bos: bool) -> dict:
    prompt_tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=add_bos, special=True)
    llm.reset()
    llm.eval(prompt_tokens)
    greedy, steps, gaps = [], [], []
    for step in range(GREEDY_STEPS):
        # With logits_all=True, scores[i] holds the logits after token i: [n_vocab] float32.
        logits = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
        token = int(np.argmax(logits))  # first maximum: lowest id wins ties
        top2 = np.partition(logits, -2)[-2:]
        gaps.append(round(float(top2[1] - top2[0]), 5))
        if step < TOP_STEPS:
            steps.append({"id": token, "top_logprobs": top_logprobs(logits)})
        greedy.append(token)
        llm.eval([token])
    text = llm.detokenize(greedy, special=True).decode("utf-8", errors="replace")
    return {
        "prompt": prompt,
        "prompt_tokens": [int(t) for t in prompt_tokens],
        "greedy_tokens": greedy,
        "greedy_text": text,
        "first_steps_top5_logprobs": steps,
        # Per step, the logit gap between the greedy token and the runner-up: an implementation
        # whose logits differ by less than half the gap picks the same token at that step.
        "top2_logit_gaps": gaps,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=pathlib.Path,
                        default=REPO_ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf")
    parser.add_argument("--out", type=pathlib.Path,
                        default=REPO_ROOT / "tests" / "testdata" / "smollm2-greedy.json")
    parser.add_argument("--f32-kv", action="store_true", help="F32 KV cache, flash attention off")
    args = parser.parse_args()
    if not args.model.is_file():
        print(f"no model at {args.model}; run scripts/fetch-model.sh", file=sys.stderr)
        return 1

    kv = {"type_k": 0, "type_v": 0, "flash_attn": False} if args.f32_kv else {}  # 0 = F32
    llm = llama_cpp.Llama(model_path=str(args.model), n_ctx=2048, n_threads=2,
                          logits_all=True, seed=0, verbose=False, **kv)
    add_bos = llm.metadata.get("tokenizer.ggml.add_bos_token", "true") == "true"
    version = llama_cpp.__version__
    commit = VENDORED_LLAMA_CPP.get(version, "unknown commit")
    golden = {
        "model": args.model.name,
        "model_sha256": hashlib.sha256(args.model.read_bytes()).hexdigest(),
        "oracle": (f"llama.cpp {commit} via llama-cpp-python {version}, CPU, n_threads=2, "
                   f"n_ctx=2048{', KV cache F32, flash attention off' if args.f32_kv else ''}; "
                   f"greedy = argmax of logits after each single-token eval; "
                   f"prompt evaluated as one batch; no stop at end-of-turn tokens"),
        "add_bos": add_bos,
        "bos_token_id": llm.token_bos(),
        "eos_token_id": llm.token_eos(),
        "n_vocab": llm.n_vocab(),
        "cases": [run_case(llm, p, add_bos) for p in PROMPTS],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(golden, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
