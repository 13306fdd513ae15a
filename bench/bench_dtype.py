"""Greedy answers and speed of tunelab's decoding in bfloat16 against float32, in one process, dtypes alternating.

The prompts are bench_predict.py's (the first --rows of its 200, rendered with SmolLM2's chat template), answered
with `batch_generate.generate` at one batch size, longest prompts first, as `tunelab predict` does. Reported: the
answers identical in both dtypes, the token where the others first differ, and each dtype's generated tokens/s
(median over --rounds). For the full predict benchmark against LLaMA-Factory use bench_predict.py.

    /path/to/venv/bin/python bench/bench_dtype.py --rows 200 --max-new-tokens 128 --batch 32
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench_predict import prompt_rows
from bench_sft import REPO, machine


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "dtype_2026-12-04")
    return parser.parse_args(argv)


def answer_all(bundle: Any, prompts: list[list[int]], batch: int, max_new: int) -> tuple[list[list[int]], float]:
    """Every prompt's greedy answer (token ids), longest prompts first in batches; and the seconds it took."""
    from tunelab.infer.batch_generate import GenRequest, generate, stop_token_ids

    stop = stop_token_ids(bundle.tokenizer, bundle.model)
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    answers: list[list[int]] = [[] for _ in prompts]
    started = time.perf_counter()
    for start in range(0, len(order), batch):
        chunk = order[start:start + batch]
        requests = [GenRequest(prompts[i], max_new, stop_token_ids=stop) for i in chunk]
        for i, result in zip(chunk, generate(bundle.model, requests, bundle.tokenizer.pad_token_id or 0)):
            answers[i] = result.token_ids
    return answers, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    """Both dtypes, alternating per round; the comparison to --out .json/.md."""
    import torch

    from tunelab.data.render import generation_prompt
    from tunelab.model.load import load_bundle

    args = parse_args(argv)
    bundles = {dtype: load_bundle("smollm2-135m-instruct", getattr(torch, dtype), template="smollm2")
               for dtype in ("float32", "bfloat16")}
    tokenizer = bundles["float32"].tokenizer
    prompts = [generation_prompt(tokenizer, [{"role": "user", "content": "\n".join(
        t for t in (row["instruction"], row["input"]) if t)}])[1] for row in prompt_rows(200)[:args.rows]]
    speed: dict[str, list[float]] = {"float32": [], "bfloat16": []}
    answers: dict[str, list[list[int]]] = {}
    for _ in range(args.rounds):
        for dtype, bundle in bundles.items():
            answers[dtype], seconds = answer_all(bundle, prompts, args.batch, args.max_new_tokens)
            speed[dtype].append(sum(map(len, answers[dtype])) / seconds)
            print(f"{dtype}: {speed[dtype][-1]:.1f} tokens/s", flush=True)
    write(args, answers, {d: statistics.median(v) for d, v in speed.items()})
    return 0


def write(args: argparse.Namespace, answers: dict[str, list[list[int]]], speed: dict[str, float]) -> None:
    """The agreement and speed figures as JSON and Markdown."""
    pairs = list(zip(answers["float32"], answers["bfloat16"]))
    first = sorted(next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
                   for a, b in pairs if a != b)
    result = {"rows": len(pairs), "identical": sum(a == b for a, b in pairs), "first_differing_token": first,
              "tokens_per_s": {d: round(v, 2) for d, v in speed.items()},
              "bf16_speedup": round(speed["bfloat16"] / speed["float32"], 2),
              "args": {k: str(v) for k, v in vars(args).items()}, "machine": machine()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    lines = ["# tunelab decoding: bfloat16 against float32", "",
             f"{len(pairs)} prompts of bench_predict.py, SmolLM2-135M-Instruct, greedy, max_new_tokens "
             f"{args.max_new_tokens}, batch {args.batch}, {result['machine']['cpu_model']}, "
             f"{result['machine']['torch_threads']} torch thread(s)", "",
             f"- identical answers: **{result['identical']} of {len(pairs)}**; the others first differ at token "
             f"{first}", f"- tokens/s: float32 {speed['float32']:.2f}, bfloat16 {speed['bfloat16']:.2f}: "
             f"**{result['bf16_speedup']}x**"]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    sys.exit(main())
