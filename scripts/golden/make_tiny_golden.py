#!/usr/bin/env python3
"""Writes tests/testdata/tiny/golden.json: llama.cpp's greedy outputs for the tiny models.

The oracle is llama.cpp through llama-cpp-python (`pip install llama-cpp-python==0.3.36`, or
the bindings and shared library scripts/peer/build-llama-bench.sh builds:
PYTHONPATH=third_party_cache/llama.cpp-0.3.36/python
LLAMA_CPP_LIB_PATH=third_party_cache/llama.cpp-0.3.36/bin), run on the files
scripts/golden/make_tiny_models.py and scripts/golden/make_kquant_tiny_models.py write. For each model and each of its three
prompts (token ids, BOS first) it records GREEDY_STEPS greedy ids (argmax of the logits after
each eval, lowest id on ties; not llama.cpp's sampler), the top-5 log-probabilities
(log-softmax, float64) of the first TOP_STEPS steps, and the gap between the two largest logits
at every step (an implementation whose logits are off by less than half of it reproduces the
chain).

llama.cpp runs with an F32 KV cache and flash attention off: troupe keeps K/V in f32, and
llama.cpp's default F16 cache would add its own rounding to the reference. The script also
reports (stdout only) how the streams change with the default F16 cache, how closely
llama.cpp's F32 models follow the float64 numpy reference in make_tiny_models.py, and how far
each quantized type follows its float parent.

--keep-existing keeps the entries the output file already has (byte for byte) and records only
the models it lacks: on another CPU llama.cpp's own results may move in the last digits (this
script rerun on an AMD EPYC with AVX-512 in 2026-12 reproduced every entry exactly except bf16,
whose logprobs moved by up to 0.019, its BF16 dot product depending on the CPU's features), and
a new model should not rewrite the others' goldens.

Usage: scripts/golden/make_tiny_golden.py [--dir DIR] [--out PATH] [--keep-existing]
"""

import argparse
import hashlib
import json
import pathlib
import sys

import llama_cpp
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import make_tiny_models as tiny  # noqa: E402  (sibling script: weights, prompts, reference)
import make_kquant_tiny_models as kquant  # noqa: E402  (the llama-quantize'd K-quant models)

GREEDY_STEPS = 32
TOP_STEPS = 4
TOP_K = 5
N_CTX = tiny.CONTEXT
GGML_TYPE_F32 = 0
# llama.cpp commit vendored by each llama-cpp-python release we have used (same table as
# make_smollm2_golden.py).
VENDORED_LLAMA_CPP = {"0.3.36": "0c1e57098bba (2026-10-01)"}


def load(path: pathlib.Path, f32_kv: bool = True) -> llama_cpp.Llama:
    kv = {"type_k": GGML_TYPE_F32, "type_v": GGML_TYPE_F32} if f32_kv else {}
    return llama_cpp.Llama(model_path=str(path), n_ctx=N_CTX, n_batch=N_CTX, n_threads=2,
                           logits_all=True, seed=0, flash_attn=False, verbose=False, **kv)


def top_logprobs(logits: np.ndarray) -> list:
    lp = tiny.log_softmax(logits)
    order = np.argsort(-lp, kind="stable")[:TOP_K]  # descending, lowest id first on ties
    return [[int(i), round(float(lp[i]), 6)] for i in order]


def last_logits(llm: llama_cpp.Llama) -> np.ndarray:
    # With logits_all=True, scores[i] holds the logits after token i: [n_vocab] float32.
    return np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)


def run_case(llm: llama_cpp.Llama, prompt: list) -> dict:
    llm.reset()
    llm.eval(prompt)  # the whole prompt as one batch (n_batch = n_ctx)
    greedy, steps, gaps = [], [], []
    for step in range(GREEDY_STEPS):
        logits = last_logits(llm)
        token = int(np.argmax(logits))  # first maximum: lowest id wins ties
        top2 = np.sort(logits)[-2:]
        gaps.append(round(float(top2[1] - top2[0]), 6))
        if step < TOP_STEPS:
            steps.append({"id": token, "top_logprobs": top_logprobs(logits)})
        greedy.append(token)
        llm.eval([token])
    return {
        "prompt_tokens": [int(t) for t in prompt],
        "greedy_tokens": greedy,
        "first_steps_top5_logprobs": steps,
        "top2_logit_gaps": gaps,
        "min_top2_logit_gap": min(gaps),
    }


def forced_agreement(llm: llama_cpp.Llama, prompt: list, stream: list) -> int:
    """Steps at which llm's argmax equals `stream` when fed `stream` itself (teacher forcing)."""
    llm.reset()
    llm.eval(prompt + stream[:-1])
    n = len(prompt)
    return sum(int(np.argmax(np.array(llm.scores[n - 1 + i]))) == tok
               for i, tok in enumerate(stream))


def check_against_numpy(name: str, llm: llama_cpp.Llama, variant) -> float:
    """Max |logprob diff| between llama.cpp and the float64 reference at the first step."""
    w = tiny.variant_weights(tiny.make_weights(), variant)
    worst = 0.0
    for prompt in tiny.prompts():
        llm.reset()
        llm.eval(prompt)
        want = tiny.log_softmax(tiny.forward(w, prompt, variant.theta)[-1])
        got = tiny.log_softmax(last_logits(llm))
        worst = max(worst, float(np.abs(got - want).max()))
    print(f"  {name}: llama.cpp vs numpy float64 reference, first step: max |dlogprob| "
          f"{worst:.2e}")
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=pathlib.Path, default=tiny.DEFAULT_OUT)
    parser.add_argument("--out", type=pathlib.Path, default=None)
    parser.add_argument("--keep-existing", action="store_true",
                        help="keep the output file's entries; record only missing models")
    args = parser.parse_args()
    out = args.out or args.dir / "golden.json"
    kept = {}
    if args.keep_existing and out.is_file():
        kept = {m["name"]: m for m in json.loads(out.read_text())["models"]}

    version = llama_cpp.__version__
    commit = VENDORED_LLAMA_CPP.get(version, "unknown commit")
    golden = {
        "oracle": (f"llama.cpp {commit} via llama-cpp-python {version}, CPU, n_threads=2, "
                   f"n_ctx={N_CTX}, KV cache F32, flash attention off; greedy = argmax of the "
                   f"logits after each single-token eval; prompt evaluated as one batch"),
        "generator": "scripts/golden/make_tiny_models.py (seed %d)" % tiny.SEED,
        "greedy_steps": GREEDY_STEPS,
        "models": [],
    }
    streams = {}
    for v in tiny.VARIANTS + kquant.VARIANTS:
        path = args.dir / v.file_name
        if v.name in kept:
            golden["models"].append(kept[v.name])
            streams[v.name] = [c["greedy_tokens"] for c in kept[v.name]["cases"]]
            continue
        if not path.is_file():
            print(f"no model at {path}; run scripts/golden/make_tiny_models.py and "
                  f"make_kquant_tiny_models.py", file=sys.stderr)
            return 1
        llm = load(path)
        cases = [run_case(llm, p) for p in tiny.prompts()]
        streams[v.name] = [c["greedy_tokens"] for c in cases]
        golden["models"].append({
            "name": v.name,
            "file": path.name,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "tensor_type": getattr(v, "type_label", None) or v.qtype.name,
            "tied_embeddings": v.tied,
            "rope": "llama3" if v.llama3 else "default",
            "cases": cases,
        })
        print(f"{path.name}: min top-2 logit gap "
              f"{min(c['min_top2_logit_gap'] for c in cases):.4f}")
        is_f32 = getattr(v, "qtype", None) == tiny.Q.F32
        if is_f32 and check_against_numpy(v.name, llm, v) > 1e-3:
            print(f"{v.name}: llama.cpp disagrees with the reference", file=sys.stderr)
            return 1

        default_kv = load(path, f32_kv=False)
        same = sum(run_case(default_kv, p)["greedy_tokens"] == s
                   for p, s in zip(tiny.prompts(), streams[v.name]))
        print(f"  with llama.cpp's default F16 KV cache: {same}/3 streams identical")

    print("Quantization noise (llama.cpp, F32 KV):")
    for v in tiny.VARIANTS:
        parent = "f32-tied" if v.tied else "f32"
        if v.llama3 or v.name == parent:
            continue
        same_streams = sum(a == b for a, b in zip(streams[v.name], streams[parent]))
        equal_prefix = [next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), len(a))
                        for a, b in zip(streams[v.name], streams[parent])]
        llm = load(args.dir / v.file_name)
        forced = sum(forced_agreement(llm, p, s)
                     for p, s in zip(tiny.prompts(), streams[parent]))
        print(f"  {v.name} vs {parent}: {same_streams}/3 streams identical, equal prefixes "
              f"{equal_prefix}; argmax agrees on {forced}/{3 * GREEDY_STEPS} steps of "
              f"{parent}'s streams (teacher-forced)")

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(golden, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
