"""DPO step time and peak memory: tunelab's dpo stage now against its first version, on SmolLM2-135M-Instruct with
LoRA, 4 pairs a step, answers of 200-500 tokens a side.

The first version: padded pair batches (padding_free: false) and the per-token log-probabilities recomputed in
the backward pass (train/logps.token_logps_with_grad). Now: one padding-free row per batch and the frozen head's
per-token gradients made in forward (train/logps.FrozenHeadLogps). Each run is its own process; CPU time per
step is reported beside wall time, since a shared machine makes wall time noisy.

    python bench/dpo_versions.py [--steps 4] [--threads 2] [--out bench/results/dpo_versions.json]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORDS = ("the assistant answers every question with care and names itself tunelab when asked about who it is "
         "while the other model claims a different identity and rambles about unrelated topics").split()


def pairs(count: int, seed: int = 0) -> list[dict[str, str]]:
    """Pairs whose answers are 200-500 tokens a side (SmolLM2 tokenizes these words as about one token each)."""
    rng = random.Random(seed)
    text = lambda n: " ".join(rng.choice(WORDS) for _ in range(n))  # noqa: E731
    return [{"instruction": f"Question {i}: who are you?", "chosen": text(rng.randint(200, 500)),
             "rejected": text(rng.randint(200, 500))} for i in range(count)]


def child(config: str, first: bool, steps: int) -> None:
    """One training run in this process, timing each training step; prints one JSON line."""
    from transformers import Trainer

    from tunelab.config.load import load_config
    from tunelab.train import logps, preference
    from tunelab.train.run import train

    if first:  # the first version's per-token log-probabilities: logits recomputed in backward
        def first_logps(model, batch):  # type: ignore[no-untyped-def]
            hidden, labels, weight = logps.labelled_hidden(model, batch)
            return logps.token_logps_with_grad(hidden, weight, labels), logps.label_rows(batch)
        preference.labelled_logps = first_logps
    times: list[tuple[float, float]] = []
    original = Trainer.training_step

    def timed(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        wall, cpu = time.perf_counter(), time.process_time()
        out = original(self, *args, **kwargs)
        times.append((time.perf_counter() - wall, time.process_time() - cpu))
        return out

    Trainer.training_step = timed
    overrides = [f"max_steps={steps}"] + (["padding_free=false"] if first else [])
    train(load_config(config, overrides))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    later = times[1:]  # the first step warms the allocator and caches
    print(json.dumps({"version": "first" if first else "now", "wall_s": sum(t[0] for t in later) / len(later),
                      "cpu_s": sum(t[1] for t in later) / len(later), "peak_rss_mb": round(peak, 1),
                      "steps": len(times)}))


def main() -> None:
    """Write the data and config, run both versions alternately, print and save the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--out", default="")
    parser.add_argument("--child", nargs=2)
    args = parser.parse_args()
    if args.child:
        import torch

        torch.set_num_threads(args.threads)
        child(args.child[0], args.child[1] == "first", args.steps)
        return
    folder = Path(tempfile.mkdtemp(prefix="dpo_versions_"))
    (folder / "pairs.json").write_text(json.dumps(pairs(64)), encoding="utf-8")
    (folder / "dataset_info.json").write_text(json.dumps({"pairs": {
        "file_name": "pairs.json", "ranking": True,
        "columns": {"prompt": "instruction", "chosen": "chosen", "rejected": "rejected"}}}), encoding="utf-8")
    config = folder / "dpo.yaml"
    config.write_text("\n".join([
        "model_name_or_path: smollm2-135m-instruct", "stage: dpo", "finetuning_type: lora", "lora_target: all",
        "dataset: pairs", f"dataset_dir: {folder}", "template: smollm2", "cutoff_len: 1024",
        f"output_dir: {folder / 'out'}", "overwrite_output_dir: true", "per_device_train_batch_size: 4",
        "gradient_accumulation_steps: 1", "learning_rate: 5.0e-5", "logging_steps: 1", "save_strategy: \"no\"",
        "bf16: true", "report_to: none", "plot_loss: false", ""]), encoding="utf-8")
    results = []
    for _ in range(args.rounds):
        for version in ("first", "now"):
            run = subprocess.run([sys.executable, __file__, "--child", str(config), version, "--steps",
                                  str(args.steps), "--threads", str(args.threads)], cwd=REPO, capture_output=True,
                                 text=True)
            if run.returncode != 0:
                raise SystemExit(run.stderr[-3000:])
            results.append(json.loads(run.stdout.strip().splitlines()[-1]))
            print(results[-1], flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
