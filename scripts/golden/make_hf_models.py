#!/usr/bin/env python3
"""Writes tests/testdata/hf/: tiny random Hugging Face model folders and transformers' outputs.

Each folder is what `save_pretrained` writes for a tiny random-weight model of one architecture
troupe loads with `--model DIR` (config.json, safetensors, tokenizer.json, tokenizer_config.json,
generation_config.json), so the C++ tests check troupe against transformers itself without
torch in CI (tests/engine/model/hf_checkpoint_test.cc, tests/engine/tokenizer/
hf_tokenizer_test.cc).

Models (dim 64, 2 layers, 4 query heads, 2 KV heads, FFN 128, context 256):
  llama-f32          LlamaForCausalLM, f32, untied, Llama 3 tokenizer rules (BOS added,
                     ignore_merges), Llama 3 chat template
  llama3rope-bf16    Llama with llama3 RoPE scaling, bf16, tied, sharded (index.json + 3 files)
  mistral-f16        MistralForCausalLM, f16, untied, Mistral 7B's SentencePiece-style BPE
                     (legacy "▁" normalizer, byte fallback), Mistral template
  qwen2-f32          Qwen2ForCausalLM, f32, tied, q/k/v biases, Qwen2 rules + NFC, ChatML
Each tokenizer is BPE trained here with `tokenizers` on CORPUS (about 600 tokens), with the
family's special tokens and one non-special added token. Two more tokenizer-only folders
(tokenizers/<name>) cover the GPT-2 split rule and Llama 2's Metaspace prepend_scheme "first".

golden.json holds, per model:
  cases: prompt ids, transformers' greedy ids (GREEDY_STEPS, argmax of float32 logits: the
         stored bf16/f16 weights upcast, as troupe's float kernels compute), top-5 logprobs of
         the first TOP_STEPS steps (float64 log-softmax) and the top-2 logit gap of every step;
  tokenizer: for every string of TEXTS, `tokenizers`' ids with add_special_tokens True (the
         special-token texts in it matched, as HF does) and the decoded text;
  chat: conversations rendered by Python's jinja2 from the folder's template string itself
         (transformers' environment: trim_blocks, lstrip_blocks), bos_token "" (troupe leaves
         BOS to the tokenizer), with and without the generation prompt.

templates: SmolLM2's real chat template (read from models/SmolLM2-135M-Instruct.Q4_1.gguf, so
         run scripts/fetch-model.sh first) and jinja2's renders of the same conversations.

Requires (not CI): pip install torch==2.15.0 transformers==5.25.0 tokenizers==0.23.3
jinja2==3.1.6 gguf==0.19.0 (the versions these files were made with).
Usage: scripts/golden/make_hf_models.py [--out-dir DIR]
"""

import argparse
import json
import pathlib
import shutil
import sys

import gguf
import jinja2
import numpy as np
import tokenizers
import torch
import transformers
from tokenizers import decoders, models, normalizers, pre_tokenizers, processors, trainers

GREEDY_STEPS = 24
TOP_STEPS = 4
TOP_K = 5
SEED = 1234
INIT_RANGE = 0.25  # large enough for varied, decisive greedy chains on random weights

LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
               r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

# Written for these tests after each family's reference template (chat_template.cc quotes them).
LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    " + message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    "{% endif %}")
MISTRAL_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}"
    "{% endif %}{% endfor %}")
CHATML_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")

CORPUS = [
    "Once upon a time there was a little fox who lived by the river.",
    "The ferryman said: \"I've crossed this water 1234 times, and I'll cross it again.\"",
    "She'd never seen the lighthouse at night; its lamp turned slowly, 360 degrees.",
    "Robin: Where are we going?\nMara: North, to the mountains, before the snow comes.",
    "   Indented lines, tabs\tand    runs of spaces matter to byte-level tokenizers.",
    "Numbers like 3.14159, 2026-12-07 and 1,000,000 are split by the pre-tokenizer.",
    "Café, naïve, résumé, Straße, smörgåsbord: Latin letters with marks.",
    "日本語の文章も少し入れておきます。東京は大きい街です。",
    "Emoji too 🙂🚀 and symbols © ™ → ∞.",
    "Привет, как дела? Всё хорошо.",
    "def main():\n    return 0  # code has its own shapes\n",
    "You are a helpful assistant. The user asks, and the character answers in kind.",
]

TEXTS = [
    "Hello world",
    " leading space, and trailing space ",
    "Numbers: 1 12 123 1234 12345 3.14159",
    "can't won't I'm you'll they'd it's WE'RE",
    "line one\nline two\n\n\nafter blank lines\r\nwindows line",
    "tabs\tand    spaces   ",
    "Café naïve Straße ÅNGSTRÖM",
    "e\u0301 combining acute (decomposed), é composed",
    "日本語のテキスト、東京。",
    "emoji 🙂🚀👍🏽 and ZWJ 👩‍👩‍👧",
    "Привет мир",
    "مرحبا بالعالم",
    "special text inside: <|im_start|>user hi<|im_end|> and <|eot_id|> and </s>",
    "the added word <|user_defined|> in the middle",
    "a" * 300,
    "",
]

CONVERSATIONS = [
    [{"role": "system", "content": "You are Mara, a ferryman's daughter."},
     {"role": "user", "content": "Who are you?"}],
    [{"role": "user", "content": "  Hello there!  "}],
    [{"role": "system", "content": "Be brief."},
     {"role": "user", "content": "First question"},
     {"role": "assistant", "content": "First answer."},
     {"role": "user", "content": "Second\nquestion, with a newline"}],
    [{"role": "user", "content": "Say <|im_end|> or [INST] or <|eot_id|> literally"},
     {"role": "assistant", "content": " spaced reply "},
     {"role": "user", "content": "ok"}],
]


class Family:
    def __init__(self, name, specials, bos, eos, pre, post_bos=False, nfc=False,
                 ignore_merges=False, template="", spm=None):
        self.name, self.specials, self.bos, self.eos = name, specials, bos, eos
        self.pre, self.post_bos, self.nfc = pre, post_bos, nfc
        self.ignore_merges, self.template = ignore_merges, template
        self.spm = spm  # None: byte-level; "legacy": Prepend + Replace normalizer; "first": Metaspace


FAMILIES = {
    "llama3": Family("llama3", ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                                "<|end_header_id|>", "<|eot_id|>"],
                     "<|begin_of_text|>", "<|eot_id|>",
                     pre=pre_tokenizers.Sequence([
                         pre_tokenizers.Split(tokenizers.Regex(LLAMA3_REGEX), behavior="isolated"),
                         pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]),
                     post_bos=True, ignore_merges=True, template=LLAMA3_TEMPLATE),
    "gpt2": Family("gpt2", ["<s>", "</s>"], "<s>", "</s>",
                   pre=pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
                   template=CHATML_TEMPLATE),
    # Mistral 7B / Llama 2 tokenizer.json: SentencePiece-style BPE with byte fallback.
    "spm-legacy": Family("spm-legacy", ["<unk>", "<s>", "</s>"], "<s>", "</s>", pre=None,
                         post_bos=True, template=MISTRAL_TEMPLATE, spm="legacy"),
    "spm-first": Family("spm-first", ["<unk>", "<s>", "</s>"], "<s>", "</s>", pre=None,
                        post_bos=True, template=MISTRAL_TEMPLATE, spm="first"),
    "qwen2": Family("qwen2", ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                    None, "<|im_end|>",
                    pre=pre_tokenizers.Sequence([
                        pre_tokenizers.Split(tokenizers.Regex(QWEN2_REGEX), behavior="isolated"),
                        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]),
                    nfc=True, template=CHATML_TEMPLATE),
}

MODELS = [
    # name, architecture, family, dtype, tied, extra config, shard size
    ("llama-f32", "llama", "llama3", torch.float32, False, {}, None),
    ("llama3rope-bf16", "llama", "llama3", torch.bfloat16, True,
     {"rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                       "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
      "rope_theta": 500000.0}, "60KB"),
    ("mistral-f16", "mistral", "spm-legacy", torch.float16, False, {"sliding_window": None}, None),
    ("qwen2-f32", "qwen2", "qwen2", torch.float32, True, {"rope_theta": 1000000.0}, None),
]


def train_spm(f: Family) -> tokenizers.Tokenizer:
    """SentencePiece-style BPE as Llama 2's and Mistral 7B's tokenizer.json hold it: <unk>, <s>,
    </s>, the 256 <0xXX> byte tokens in the model's vocabulary, then the merged pieces."""
    spm_normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"),
                                           normalizers.Replace(" ", "\u2581")])
    trainer_tok = tokenizers.Tokenizer(models.BPE(unk_token="<unk>"))
    trainer_tok.normalizer = spm_normalizer
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=f.specials, show_progress=False)
    trainer_tok.train_from_iterator(CORPUS * 4, trainer=trainer)
    trained = json.loads(trainer_tok.to_str())["model"]
    vocab = {t: i for i, t in enumerate(f.specials)}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for t, _ in sorted(trained["vocab"].items(), key=lambda kv: kv[1]):
        if t not in vocab:
            vocab[t] = len(vocab)
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1)) for m in trained["merges"]]
    tok = tokenizers.Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>",
                                          byte_fallback=True, fuse_unk=True))
    if f.spm == "legacy":
        tok.normalizer = spm_normalizer
    else:
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme=f.spm,
                                                     split=False)
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(),
                                     decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    tok.add_special_tokens([tokenizers.AddedToken(t, special=True) for t in f.specials])
    return tok


def train_tokenizer(f: Family) -> transformers.PreTrainedTokenizerFast:
    if f.spm:
        tok = train_spm(f)
        # Matched in the raw text, as the added tokens of Llama 2's and Mistral's files are.
        tok.add_tokens([tokenizers.AddedToken("<|user_defined|>", special=False,
                                              normalized=False)])
        tok.post_processor = processors.TemplateProcessing(
            single=f"{f.bos} $A", pair=f"{f.bos} $A {f.bos} $B",
            special_tokens=[(f.bos, tok.token_to_id(f.bos))])
        return transformers.PreTrainedTokenizerFast(
            tokenizer_object=tok, bos_token=f.bos, eos_token=f.eos, unk_token="<unk>",
            chat_template=f.template)
    tok = tokenizers.Tokenizer(models.BPE(ignore_merges=f.ignore_merges))
    if f.nfc:
        tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = f.pre
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=f.specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(CORPUS * 4, trainer=trainer)
    tok.add_tokens([tokenizers.AddedToken("<|user_defined|>", special=False)])
    if f.post_bos:
        tok.post_processor = processors.TemplateProcessing(
            single=f"{f.bos} $A", pair=f"{f.bos} $A {f.bos} $B",
            special_tokens=[(f.bos, tok.token_to_id(f.bos))])
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=f.bos, eos_token=f.eos, chat_template=f.template)


def make_model(arch: str, vocab: int, tied: bool, extra: dict, f: Family):
    common = dict(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                  rms_norm_eps=1e-5, tie_word_embeddings=tied, initializer_range=INIT_RANGE,
                  bos_token_id=None, eos_token_id=None)
    common.update(extra)
    cls = {"llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM),
           "mistral": (transformers.MistralConfig, transformers.MistralForCausalLM),
           "qwen2": (transformers.Qwen2Config, transformers.Qwen2ForCausalLM)}[arch]
    config = cls[0](**common)
    torch.manual_seed(SEED)
    model = cls[1](config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.uniform_(0.6, 1.4)  # not all ones: a wrong norm shows
            elif name.endswith(".bias"):
                p.normal_(0.0, 0.3)  # not the default zeros: a missing bias shows
    return model.eval()


def top_logprobs(logits: torch.Tensor) -> list:
    lp = torch.log_softmax(logits.double(), dim=-1).numpy()
    order = np.argsort(-lp, kind="stable")[:TOP_K]
    return [[int(i), round(float(lp[i]), 6)] for i in order]


def run_case(model, prompt: list) -> dict:
    ids = list(prompt)
    greedy, steps, gaps = [], [], []
    with torch.no_grad():
        for step in range(GREEDY_STEPS):
            logits = model(torch.tensor([ids])).logits[0, -1].float()
            nxt = int(torch.argmax(logits))
            top2 = torch.topk(logits, 2).values
            gaps.append(round(float(top2[0] - top2[1]), 6))
            if step < TOP_STEPS:
                steps.append({"id": nxt, "top_logprobs": top_logprobs(logits)})
            greedy.append(nxt)
            ids.append(nxt)
    return {"prompt_tokens": prompt, "greedy_tokens": greedy, "first_steps_top5_logprobs": steps,
            "top2_logit_gaps": gaps, "min_top2_logit_gap": min(gaps)}


def tokenizer_cases(tok) -> list:
    cases = []
    for text in TEXTS:
        enc = tok.backend_tokenizer.encode(text, add_special_tokens=True)
        pieces = [tok.backend_tokenizer.id_to_token(i) for i in enc.ids]
        cases.append({"text": text, "ids": enc.ids, "tokens": pieces})
    return cases


def render(template: str, messages: list, add_generation_prompt: bool, eos: str) -> str:
    # transformers' environment for chat templates.
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    env.globals["raise_exception"] = raise_exception
    return env.from_string(template).render(messages=messages, bos_token="", eos_token=eos,
                                            add_generation_prompt=add_generation_prompt)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = pathlib.Path(__file__).resolve().parents[2]
    parser.add_argument("--out-dir", default=str(root / "tests/testdata/hf"))
    args = parser.parse_args()
    out = pathlib.Path(args.out_dir)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    golden = {"oracle": f"transformers {transformers.__version__}, tokenizers "
                        f"{tokenizers.__version__}, torch {torch.__version__}, jinja2 "
                        f"{jinja2.__version__}",
              "generator": "scripts/golden/make_hf_models.py", "greedy_steps": GREEDY_STEPS,
              "models": []}
    rng = np.random.default_rng(SEED)
    for name, arch, family_name, dtype, tied, extra, shard in MODELS:
        f = FAMILIES[family_name]
        tok = train_tokenizer(f)
        vocab = len(tok)
        model = make_model(arch, vocab, tied, extra, f).to(dtype)
        folder = out / name
        kwargs = {"max_shard_size": shard} if shard else {}
        model.save_pretrained(folder, **kwargs)
        tok.save_pretrained(folder)
        # The reference: the saved files, read back by transformers, in float32.
        ref = transformers.AutoModelForCausalLM.from_pretrained(
            folder, dtype=torch.float32, attn_implementation="eager").eval()
        chat_ids = tok.apply_chat_template(
            [{"role": "user", "content": "Tell me about the river."}],
            add_generation_prompt=True, tokenize=True)
        if isinstance(chat_ids, dict) or hasattr(chat_ids, "keys"):
            chat_ids = chat_ids["input_ids"]
        prompts = [tok(CORPUS[0])["input_ids"], list(chat_ids),
                   [int(x) for x in rng.integers(0, vocab, size=40)]]
        cases = [run_case(ref, p) for p in prompts]
        if dtype != torch.float32:
            # Printed only: how far transformers' own computation in the stored dtype moves the
            # logprobs, the scale of rounding troupe's bf16/f16 activations add.
            native = transformers.AutoModelForCausalLM.from_pretrained(
                folder, dtype=dtype, attn_implementation="eager").eval()
            diffs = []
            for c in cases:
                ids = list(c["prompt_tokens"])
                for step in c["first_steps_top5_logprobs"]:
                    with torch.no_grad():
                        lp = torch.log_softmax(native(torch.tensor([ids])).logits[0, -1].double(), -1)
                    diffs += [abs(float(lp[i]) - v) for i, v in step["top_logprobs"]]
                    ids.append(step["id"])
            print(f"{name}: transformers in {dtype} vs float32, |logprob| diff median "
                  f"{float(np.median(diffs)):.4f}, max {max(diffs):.4f}")
        entry = {"name": name, "dir": name, "architecture": arch, "dtype": str(dtype),
                 "tied_embeddings": tied, "vocab_size": vocab, "cases": cases,
                 "tokenizer": [], "chat": []}
        entry["tokenizer"] = tokenizer_cases(tok)
        for messages in CONVERSATIONS:
            for gen in (True, False):
                try:
                    text = render(f.template, messages, gen, f.eos)
                except jinja2.exceptions.TemplateError:
                    continue  # Mistral's template refuses a system role
                entry["chat"].append({"messages": messages, "add_generation_prompt": gen,
                                      "text": text})
        golden["models"].append(entry)
        print(f"{name}: vocab {vocab}, files {sorted(p.name for p in folder.iterdir())}, "
              f"min top-2 gap {min(c['min_top2_logit_gap'] for c in cases):.4f}, distinct greedy "
              f"{[len(set(c['greedy_tokens'])) for c in cases]}, "
              f"{len(entry['chat'])} chat renders")
    golden["tokenizers"] = []
    for family_name in ("gpt2", "spm-first"):
        tok = train_tokenizer(FAMILIES[family_name])
        folder = out / "tokenizers" / family_name
        tok.save_pretrained(folder)
        golden["tokenizers"].append({"name": family_name, "dir": f"tokenizers/{family_name}",
                                     "tokenizer": tokenizer_cases(tok)})
        print(f"tokenizer {family_name}: vocab {len(tok)}")
    # Real templates, read from the project's own model files (SmolLM2's ChatML with its default
    # system prompt): jinja2's renders, for the family renderer to match.
    golden["templates"] = []
    smollm = root / "models/SmolLM2-135M-Instruct.Q4_1.gguf"
    reader = gguf.GGUFReader(str(smollm))
    field = reader.fields["tokenizer.chat_template"]
    template = bytes(field.parts[field.data[0]]).decode("utf-8")
    renders = []
    for messages in CONVERSATIONS:
        for gen in (True, False):
            renders.append({"messages": messages, "add_generation_prompt": gen,
                            "text": render(template, messages, gen, "<|im_end|>")})
    golden["templates"].append({"name": "SmolLM2-135M-Instruct (GGUF tokenizer.chat_template)",
                                "template": template, "chat": renders})
    (out / "golden.json").write_text(json.dumps(golden, indent=1, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
