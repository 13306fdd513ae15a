"""Loss curves as PNG files, drawn from run.jsonl."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

LogRecord = dict[str, float | int]  # one run.jsonl line: step, loss, lr, eval figures, token counts, timings


def read_log(path: Path) -> list[LogRecord]:
    """The records of a run.jsonl file."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def smooth(values: list[float], weight: float | None = None) -> list[float]:
    """Exponential moving average with bias correction (TensorBoard's smoothing); by default the weight
    grows with the number of points (0.34 for 16 points, 0.9 from about 150), so short runs are not flattened."""
    if weight is None:
        weight = 1.8 * (1 / (1 + math.exp(-0.05 * len(values))) - 0.5)
    out, last = [], 0.0
    for index, value in enumerate(values, start=1):
        last = weight * last + (1 - weight) * value
        out.append(last / (1 - weight**index))
    return out


def eval_losses(logs: Mapping[str, float | int]) -> dict[str, float]:
    """eval_loss, or eval_NAME_loss per eval dataset (eval_on_each_dataset), from a log record."""
    return {key: float(value) for key, value in logs.items()
            if key == "eval_loss" or (key.startswith("eval_") and key.endswith("_loss"))}


def eval_metrics(logs: Mapping[str, float | int]) -> dict[str, float]:
    """Every evaluation figure of a log record: losses, token accuracy, perplexity (per eval dataset too)."""
    return {key: float(value) for key, value in logs.items()
            if key.startswith("eval_") and key.endswith(("_loss", "_accuracy", "_perplexity"))}


def plot_losses(log_path: Path, out_dir: Path) -> list[Path]:
    """training_loss.png (raw and smoothed) and, when evaluated, training_eval_loss.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_log(log_path)
    eval_keys = sorted({key for r in records for key in eval_losses(r)})
    written = []
    for keys, name, title in ((["loss"], "training_loss.png", "training loss"),
                              (eval_keys, "training_eval_loss.png", "evaluation loss")):
        series = {key: [(r["step"], r[key]) for r in records if key in r] for key in keys}
        series = {key: points for key, points in series.items() if points}
        if not series:
            continue
        fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
        for key, points in series.items():
            steps, values = zip(*points)
            one = len(series) == 1
            ax.plot(steps, values, color=("#9bb7d4" if len(points) > 1 else "#1f77b4") if one else None,
                    marker="o" if len(points) < 20 else None, label="original" if one else key)
            if len(points) > 2 and key == "loss":
                ax.plot(steps, smooth(list(values)), color="#1f77b4", label="smoothed")
        ax.set_xlabel("step")
        ax.set_ylabel(keys[0] if len(series) == 1 else "loss")
        ax.set_title(f"{title}: {out_dir.name}")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out_dir / name)
        plt.close(fig)
        written.append(out_dir / name)
    return written
