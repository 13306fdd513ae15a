#!/usr/bin/env python
"""The preference benchmark's data, deterministic: pairs, KTO rows and prompts made of real English text.

Like the shared baselines' make_dataset.py (whose stdlib docstrings, system prompt and instructions it reuses),
every row asks about one Python standard library object. For pair i:

  chosen:   that object's own docstring (continued with the next objects' when short),
  rejected: another object's docstring presented as the answer (a wrong answer, equally fluent),

each cut at a line boundary so the whole chat-formatted sequence (system + user + answer + <|im_end|>) has between
--min-len and --max-len tokens (default 200-500: "pairs of 200-500 tokens a side"), its own length drawn per side.
Written next to each other in --out:

  bench_pref.json    ranking pairs (stages dpo and rm; LLaMA-Factory `ranking: true`)
  bench_kto.json     the same pairs as KTO rows: the chosen answer desirable, then the rejected one undesirable
  bench_prompts.json the prompts alone with the chosen answer as reference (stage grpo)
  dataset_info.json  the three entries, read by tunelab and LLaMA-Factory alike

Usage: python bench/make_pref_data.py [--pairs 160] [--out /tmp/bench/pref_data] [--model PATH] [--baselines DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
ALPACA = {"prompt": "instruction", "query": "input", "system": "system"}
INFO = {
    "bench_pref": {"file_name": "bench_pref.json", "ranking": True,
                   "columns": {**ALPACA, "chosen": "chosen", "rejected": "rejected"}},
    "bench_kto": {"file_name": "bench_kto.json", "columns": {**ALPACA, "response": "output", "kto_tag": "kto_tag"}},
    "bench_prompts": {"file_name": "bench_prompts.json", "columns": {**ALPACA, "response": "output"}},
}


def baselines_module(baselines: Path) -> ModuleType:
    """The shared make_dataset.py, imported for its docstring source, system prompt and instructions."""
    spec = importlib.util.spec_from_file_location("make_dataset", baselines / "make_dataset.py")
    if spec is None or spec.loader is None or not (baselines / "make_dataset.py").is_file():
        sys.exit(f"bench: {baselines / 'make_dataset.py'} not found; give --baselines")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cut_answer(head: str, lines: list[str], target: int, length: Callable[[str], int]) -> str:
    """head plus as many whole lines as keep the sequence at or under target tokens."""
    out = head
    for line in lines:
        candidate = f"{out}\n{line}"
        if length(candidate) > target:
            break
        out = candidate
    return out


def answer(name: str, docs: list[tuple[str, str]], start: int, target: int, length: Callable[[str], int]) -> str:
    """A docstring presented as the answer about `name`, continued with the next ones' until it is long enough."""
    lines: list[str] = []
    for offset in range(6):
        other, text = docs[(start + offset) % len(docs)]
        lines += ([""] if lines else []) + ([f"Related: `{other}`:", ""] if offset else []) + text.splitlines()
        if length("\n".join([f"`{name}`:", *lines])) > target:
            break
    return cut_answer(f"`{name}`:\n", lines, target, length)


def make_pairs(module: ModuleType, tokenizer: object, n: int, low: int, high: int, seed: int) -> list[dict[str, str]]:
    """n pairs whose sides each have low-high tokens in the chat format."""
    rng = random.Random(seed)
    docs = list(module.docs())
    pairs: list[dict[str, str]] = []
    index = 0
    while len(pairs) < n:
        name = docs[index % len(docs)][0]
        instruction = rng.choice(module.INSTR).format(q=name)

        def length(text: str) -> int:
            messages = [{"role": "system", "content": module.SYSTEM}, {"role": "user", "content": instruction},
                        {"role": "assistant", "content": text}]
            return len(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])

        chosen = answer(name, docs, index, rng.randint(low, high), length)
        rejected = answer(name, docs, index + len(docs) // 2, rng.randint(low, high), length)
        index += 1
        if all(low <= length(text) <= high for text in (chosen, rejected)) and chosen != rejected:
            pairs.append({"system": module.SYSTEM, "instruction": instruction, "input": "", "chosen": chosen,
                          "rejected": rejected})
    return pairs


def write(out: Path, pairs: list[dict[str, str]]) -> None:
    """The three files and dataset_info.json."""
    out.mkdir(parents=True, exist_ok=True)
    common = [{k: p[k] for k in ("system", "instruction", "input")} for p in pairs]
    kto = [row for c, p in zip(common, pairs) for row in ({**c, "output": p["chosen"], "kto_tag": True},
                                                          {**c, "output": p["rejected"], "kto_tag": False})]
    files = {"bench_pref.json": pairs, "bench_kto.json": kto,
             "bench_prompts.json": [{**c, "output": p["chosen"]} for c, p in zip(common, pairs)]}
    for name, rows in files.items():
        (out / name).write_text(json.dumps(rows, indent=1, ensure_ascii=False), encoding="utf-8")
    (out / "dataset_info.json").write_text(json.dumps(INFO, indent=1), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Make the data and say its lengths."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=160)
    ap.add_argument("--min-len", type=int, default=200)
    ap.add_argument("--max-len", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", type=Path, default=Path("/tmp/models/smollm2-135m-instruct"))
    ap.add_argument("--baselines", type=Path, default=REPO.parent / "shared" / "baselines")
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench/pref_data"))
    args = ap.parse_args(argv)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    pairs = make_pairs(baselines_module(args.baselines), tokenizer, args.pairs, args.min_len, args.max_len, args.seed)
    write(args.out, pairs)
    print(f"bench: wrote {len(pairs)} pairs (and their KTO rows and prompts) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
