"""Decode-step speed on the CPU: tunelab's decoding (dynamic KV cache, eager) against a preallocated (static) KV
cache, eager and under torch.compile, per dtype and batch size, variants alternating within each round.

Each measurement prefills a batch of equal-length random prompts (no padding), then times `--steps` greedy decode
steps, one token per row each; the figure is the median step time over the rounds (tokens/s = batch / step time).
Compilation time is reported apart (it is paid once per process and per new shape).

    /path/to/venv/bin/python bench/bench_decode.py                          # a few minutes on 2 cores
    /path/to/venv/bin/python bench/bench_decode.py --batches 1 --rounds 1   # smoke test
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_sft import REPO, machine

VARIANTS = ("dynamic", "static", "static+compile")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct", help="tunelab model name or alias")
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--batches", default="1,16")
    parser.add_argument("--prompt-tokens", type=int, default=64)
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "decode_2026-12-04")
    return parser.parse_args(argv)


def timed_steps(step: Callable[[Any], Any], first: Any, steps: int) -> list[float]:
    """Seconds of each of `steps` greedy decode steps, each fed the previous step's argmax."""
    times, tokens = [], first
    for _ in range(steps):
        started = time.perf_counter()
        logits = step(tokens)
        tokens = logits[:, -1, :].argmax(-1, keepdim=True)
        times.append(time.perf_counter() - started)
    return times


def dynamic_run(model: Any, prompt: Any, steps: int) -> list[float]:
    """tunelab's current decoding: a DynamicCache that grows by one column per step, eager forward."""
    import torch
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    with torch.inference_mode():
        out = model(input_ids=prompt, past_key_values=cache, use_cache=True, logits_to_keep=1)
        position = [prompt.shape[1]]

        def step(tokens: Any) -> Any:
            ids = torch.full((prompt.shape[0], 1), position[0], dtype=torch.long)
            position[0] += 1
            return model(input_ids=tokens, position_ids=ids, past_key_values=cache, use_cache=True,
                         logits_to_keep=1).logits

        return timed_steps(step, out.logits[:, -1, :].argmax(-1, keepdim=True), steps)


def static_run(model: Any, forward: Callable[..., Any], prompt: Any, steps: int) -> list[float]:
    """A StaticCache preallocated for prompt + steps tokens; `forward` is the model's (compiled or not)."""
    import torch
    from transformers import StaticCache

    cache = StaticCache(config=model.config, max_cache_len=prompt.shape[1] + steps + 1)
    with torch.inference_mode():
        out = model(input_ids=prompt, past_key_values=cache, use_cache=True, logits_to_keep=1,
                    cache_position=torch.arange(prompt.shape[1]))
        position = [prompt.shape[1]]

        def step(tokens: Any) -> Any:
            where = torch.tensor([position[0]])
            position[0] += 1
            return forward(input_ids=tokens, position_ids=where.expand(prompt.shape[0], 1), past_key_values=cache,
                           use_cache=True, cache_position=where, logits_to_keep=1).logits

        return timed_steps(step, out.logits[:, -1, :].argmax(-1, keepdim=True), steps)


def measure(model: Any, compiled: Any, variant: str, prompt: Any, steps: int) -> list[float]:
    """Step times of one variant."""
    if variant == "dynamic":
        return dynamic_run(model, prompt, steps)
    return static_run(model, compiled if variant == "static+compile" else model, prompt, steps)


def main(argv: list[str] | None = None) -> int:
    """Every dtype and batch size, the variants alternating within each round; results to --out .json/.md."""
    import torch

    from tunelab.model.load import load_bundle

    args = parse_args(argv)
    variants = args.variants.split(",")
    results: list[dict[str, Any]] = []
    for dtype in args.dtypes.split(","):
        model = load_bundle(args.model, getattr(torch, dtype)).model.eval()
        compiled = torch.compile(model.forward, dynamic=False) if "static+compile" in variants else None
        for batch in (int(b) for b in args.batches.split(",")):
            prompt = torch.randint(100, model.config.vocab_size - 100, (batch, args.prompt_tokens),
                                   generator=torch.Generator().manual_seed(0))
            times: dict[str, list[float]] = {v: [] for v in variants}
            compile_s = None
            if compiled is not None:  # the first steps compile: timed apart, never counted as decoding
                started = time.perf_counter()
                static_run(model, compiled, prompt, 3)
                compile_s = time.perf_counter() - started
            for _ in range(args.rounds):
                for variant in variants:
                    times[variant] += measure(model, compiled, variant, prompt, args.steps)[2:]  # warm steps only
            for variant in variants:
                step = statistics.median(times[variant])
                results.append({"dtype": dtype, "batch": batch, "variant": variant, "median_step_ms": step * 1e3,
                                "tokens_per_s": batch / step, "steps_timed": len(times[variant]),
                                "compile_s": compile_s if variant == "static+compile" else None})
                print(json.dumps(results[-1]), flush=True)
        del model, compiled
        torch._dynamo.reset()
    write(args, results)
    return 0


def write(args: argparse.Namespace, results: list[dict[str, Any]]) -> None:
    """The figures as JSON and a Markdown table, with each variant's speed relative to dynamic."""
    info = machine()
    base = {(r["dtype"], r["batch"]): r["tokens_per_s"] for r in results if r["variant"] == "dynamic"}
    for r in results:
        r["vs_dynamic"] = round(r["tokens_per_s"] / base[(r["dtype"], r["batch"])], 2) if base else None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"machine": info, "args": {k: str(v) for k, v in
                                                                                   vars(args).items()},
                                                         "results": results}, indent=2))
    lines = ["# Decode step: dynamic KV cache (tunelab today) vs static cache, eager and torch.compile", "",
             f"{args.model}, prompts of {args.prompt_tokens} tokens, {args.steps} steps x {args.rounds} rounds, "
             f"{info['cpu_model']}, {info['logical_cpus']} CPUs, torch {info['torch']}", "",
             "| dtype | batch | variant | median step ms | tokens/s | vs dynamic | compile s |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        compile_s = f"{r['compile_s']:.0f}" if r["compile_s"] is not None else ""
        lines.append(f"| {r['dtype']} | {r['batch']} | {r['variant']} | {r['median_step_ms']:.1f} | "
                     f"{r['tokens_per_s']:.1f} | {r['vs_dynamic']} | {compile_s} |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    sys.exit(main())
