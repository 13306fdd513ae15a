#!/usr/bin/env python
"""Memory of a tunelab training run step by step: where a run's peak RSS comes from, and what changes it.

Runs `tunelab train bench/train_<mode>.yaml` (the benchmark workload, the real trainer) once per variant, each in its
own process, the variants alternating over --rounds. After every step it records the step's seconds, the process's
peak RSS (ru_maxrss), and glibc malloc's view (mallinfo2): the heap's size, the bytes in use and the free bytes
inside it. Live tensors stay the same from step to step, so bytes in use that grow are C-level caches (oneDNN's
primitives), and free bytes that grow are memory malloc holds but cannot hand out again.

A variant is NAME:ENV=VALUE[;ENV=VALUE], environment variables of its process (`base:` for none), e.g.
`cap1024:ONEDNN_PRIMITIVE_CACHE_CAPACITY=1024` against `base:`. No profiler runs: the torch profiler's own
records grow the memory by about 14 MiB a step.

Usage: /path/to/venv/bin/python bench/memory_steps.py [--mode lora] [--steps 30] [--rounds 1]
           [--variants base:,cap1024:ONEDNN_PRIMITIVE_CACHE_CAPACITY=1024] [--out results/memory_X]
Never run as a test: each run is a real training run (about 2.5 minutes for 30 LoRA steps on 2 cores).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


class MallInfo(ctypes.Structure):
    """glibc's struct mallinfo2 (2.33 and later)."""

    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def malloc_view() -> dict[str, int]:
    """Heap size, bytes in use and free bytes in it, and bytes in blocks of their own mmap, in MiB (zeros where the C
    library has no mallinfo2)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = MallInfo
        info = libc.mallinfo2()
    except (OSError, AttributeError):
        return {"heap_mib": 0, "used_mib": 0, "free_mib": 0, "mmap_mib": 0}
    return {"heap_mib": info.arena >> 20, "used_mib": info.uordblks >> 20, "free_mib": info.fordblks >> 20,
            "mmap_mib": info.hblkhd >> 20}


def live_mib() -> float:
    """The bytes malloc has handed out (heap and mmap), in MiB: sampled over a step (profile_shapes.PeakSampler),
    its live peak, which peak RSS exceeds by what fragmentation keeps resident."""
    view = malloc_view()
    return view["used_mib"] + view["mmap_mib"]


def take_peak(sampler: Any) -> int:
    """The sampler's peak since the last take, in MiB."""
    top = sampler.peak()
    sampler.reset()
    return int(top)


def child(mode: str, steps: int, data: Path, live_peak: bool, model: Path | None) -> None:
    """One training run in this process; one JSON line per step on stdout."""
    from transformers import TrainerCallback

    from tunelab.config.load import load_config
    from tunelab.train import run

    class StepMemory(TrainerCallback):
        """Prints the step's seconds, peak RSS and malloc's view after each optimizer step."""

        def on_step_begin(self, args: object, state: object, control: object, **kwargs: object) -> None:
            self.start = time.perf_counter()

        def on_step_end(self, args: object, state: Any, control: object, **kwargs: object) -> None:
            record = {"step": state.global_step, "seconds": round(time.perf_counter() - self.start, 3),
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10,
                      "live_peak_mib": take_peak(live) if live else 0, **malloc_view()}
            print("STEP " + json.dumps(record), flush=True)

    from profile_shapes import PeakSampler

    live = PeakSampler(live_mib) if live_peak else None
    original = run.callbacks
    run.callbacks = lambda config, step_log: original(config, step_log) + [StepMemory()]
    with tempfile.TemporaryDirectory() as out:
        config = load_config(REPO / "bench" / f"train_{mode}.yaml",
                             [f"dataset_dir={data}", f"output_dir={out}", f"max_steps={steps}",
                              *([f"model_name_or_path={model}"] if model else [])], purpose="train")
        run.train(config)
    # the run's whole peak: after the last step come the final save and the report
    print("END " + json.dumps({"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10}), flush=True)


def one_run(variant: str, env: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    """Run the child with the variant's environment; its per-step records."""
    command = [sys.executable, __file__, "--child", "--mode", args.mode, "--steps", str(args.steps),
               "--data", str(args.data), *(["--live-peak"] if args.live_peak else []),
               *(["--model", str(args.model)] if args.model else [])]
    done = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, check=False)
    steps = [json.loads(line[5:]) for line in done.stdout.splitlines() if line.startswith("STEP ")]
    if done.returncode != 0 or len(steps) != args.steps:
        sys.exit(f"memory_steps: variant {variant!r} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    end = [json.loads(line[4:]) for line in done.stdout.splitlines() if line.startswith("END ")]
    return {"variant": variant, "env": env, "steps": steps,
            "seconds": round(sum(s["seconds"] for s in steps), 2),
            "peak_rss_mib": max(s["peak_rss_mib"] for s in steps),
            "run_peak_rss_mib": end[0]["peak_rss_mib"] if end else None}


def page(runs: list[dict[str, Any]], args: argparse.Namespace) -> str:
    """The results page: per run the totals, then every fifth step."""
    from bench_sft import machine  # the benchmarks' one description of the machine

    m = machine()
    lines = [f"# Training memory step by step ({args.mode}, {args.steps} steps)", "",
             f"Machine: {m['cpu_model']}, {m['logical_cpus']} logical CPUs, avx512_bf16={m['avx512_bf16']}, "
             f"amx={m['amx_bf16']}; torch {m['torch']}; tunelab at {m['tunelab_git']} (a variant's PYTHONPATH "
             "names other code). "
             f"`bench/memory_steps.py --mode {args.mode} --steps {args.steps} --rounds {args.rounds}"
             f"{f' --model {args.model}' if args.model else ''}`.", "",
             "| run | variant | env | seconds | peak RSS MiB over the steps | over the run (with the final save) |",
             "| ---: | --- | --- | ---: | ---: | ---: |"]
    for number, run in enumerate(runs, 1):
        env = "; ".join(f"{k}={v}" for k, v in run["env"].items()) or "(none)"
        lines.append(f"| {number} | {run['variant']} | {env} | {run['seconds']} | {run['peak_rss_mib']:,} | "
                     f"{run.get('run_peak_rss_mib') or 0:,} |")
    lines += ["", "| run | step | seconds | peak RSS MiB | live peak MiB | heap MiB | malloc in use MiB | "
              "malloc free MiB | mmap MiB |", "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for number, run in enumerate(runs, 1):
        for s in run["steps"]:
            if s["step"] == 1 or s["step"] % 5 == 0:
                lines.append(f"| {number} | {s['step']} | {s['seconds']} | {s['peak_rss_mib']:,} | "
                             f"{s.get('live_peak_mib', 0):,} | {s['heap_mib']:,} | {s['used_mib']:,} | "
                             f"{s['free_mib']:,} | {s.get('mmap_mib', 0):,} |")
    return "\n".join(lines) + "\n"


def parse_variants(text: str) -> dict[str, dict[str, str]]:
    """NAME:ENV=VALUE[;ENV=VALUE], comma-separated, into {name: env}."""
    variants = {}
    for item in (v for v in text.split(",") if v.strip()):
        name, _, settings = item.partition(":")
        variants[name.strip()] = dict(s.split("=", 1) for s in settings.split(";") if s.strip())
    return variants


def main() -> int:
    """Alternate the variants' runs and write the page."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", default="lora", choices=("lora", "full"))
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--variants", default="base:")
    ap.add_argument("--data", type=Path, default=Path("/tmp/bench/data"))
    ap.add_argument("--model", type=Path, help="another model folder (bench/make_shape_model.py's larger shapes)")
    ap.add_argument("--out", type=Path, help="write OUT.json and OUT.md")
    ap.add_argument("--live-peak", action="store_true",
                    help="also sample malloc's bytes in use every 5 ms (the live peak; slows glibc's runs: its "
                         "mallinfo2 walks the heap, so compare seconds only without it)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.mode, args.steps, args.data, args.live_peak, args.model)
        return 0
    try:
        variants = parse_variants(args.variants)
    except ValueError:
        ap.error("--variants: NAME:ENV=VALUE[;ENV=VALUE], comma-separated")
    runs = []
    for _ in range(args.rounds):
        for name, env in variants.items():
            runs.append(one_run(name, env, args))
            print(f"{name}: {runs[-1]['seconds']} s, peak RSS {runs[-1]['peak_rss_mib']:,} MiB", flush=True)
    text = page(runs, args)
    print(text)
    if args.out:
        args.out.with_suffix(".json").write_text(json.dumps(runs, indent=1))
        args.out.with_suffix(".md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
