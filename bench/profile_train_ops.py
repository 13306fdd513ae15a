#!/usr/bin/env python
"""Where a tunelab training step spends its CPU time: torch profiler over a few steps of bench_train's workload.

Runs `tunelab train bench/train_<mode>.yaml` in this process (the real trainer, data and speed-ups), skips
--warmup steps, profiles the next --steps steps and prints the ops by self CPU time (share, calls, total).

Usage: /path/to/venv/bin/python bench/profile_train_ops.py [--mode lora] [--steps 3] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch
from transformers import TrainerCallback

REPO = Path(__file__).resolve().parents[1]


class StepProfiler(TrainerCallback):
    """Starts the torch profiler at the beginning of step warmup + 1 and stops it after `steps` steps."""

    def __init__(self, warmup: int, steps: int) -> None:
        self.warmup, self.steps, self.profile = warmup, steps, None

    def on_step_begin(self, args: object, state: object, control: object, **kwargs: object) -> None:
        if state.global_step == self.warmup:
            self.profile = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
            self.profile.__enter__()

    def on_step_end(self, args: object, state: object, control: object, **kwargs: object) -> None:
        if self.profile is not None and state.global_step == self.warmup + self.steps:
            self.profile.__exit__(None, None, None)
            control.should_training_stop = True


def op_table(profile: torch.profiler.profile, rows: int) -> list[dict[str, object]]:
    """The ops by self CPU time: name, share of the total, calls, seconds."""
    events = profile.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    ranked = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:rows]
    return [{"op": e.key, "share": e.self_cpu_time_total / total, "calls": e.count,
             "self_s": e.self_cpu_time_total / 1e6} for e in ranked] + [{"op": "TOTAL", "self_s": total / 1e6}]


def main() -> None:
    """Profile the steps and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", default="lora", choices=("lora", "full"))
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--rows", type=int, default=30)
    ap.add_argument("--data", default="/tmp/bench/data")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    from tunelab.config.load import load_config
    from tunelab.train import run

    profiler = StepProfiler(args.warmup, args.steps)
    original = run.callbacks
    run.callbacks = lambda config, step_log: original(config, step_log) + [profiler]
    with tempfile.TemporaryDirectory() as out:
        config = load_config(REPO / "bench" / f"train_{args.mode}.yaml",
                             [f"dataset_dir={args.data}", f"output_dir={out}",
                              f"max_steps={args.warmup + args.steps}"], purpose="train")
        run.train(config)
    table = op_table(profiler.profile, args.rows)
    for row in table:
        share = f"{row['share']:6.1%}" if "share" in row else "      "
        print(f"{share} {row.get('calls', ''):>7} {row['self_s']:8.3f}s  {row['op']}")
    if args.out:
        args.out.write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    sys.exit(main())
