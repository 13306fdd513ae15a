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


# Per-step figures each stage logs besides its loss (one PNG each, training_<key with / as _>.png). A stage's
# trainer logs them under exactly these names; run.jsonl and the plots read the same keys.
STAGE_PLOTS: dict[str, tuple[str, ...]] = {
    "rm": ("eval_accuracy",),
    "dpo": ("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen",
            "logps/rejected"),
    "kto": ("rewards/chosen", "rewards/rejected", "rewards/margins", "kl", "logps/chosen", "logps/rejected"),
    "ppo": ("reward", "kl", "loss/policy", "loss/value"),
    "grpo": ("reward", "reward_std", "kl", "completion_length"),
}
STAGE_KEYS = frozenset(key for keys in STAGE_PLOTS.values() for key in keys)  # what run.jsonl keeps of them

# figures a stage logs under names that depend on its config: grpo logs each reward as rewards/<name>
STAGE_PREFIXES: dict[str, tuple[str, ...]] = {"grpo": ("rewards/",)}


def stage_figures(logs: Mapping[str, float | int]) -> dict[str, float]:
    """The stages' figures of a log record (STAGE_PLOTS keys, their eval_ forms, and prefixed ones), for run.jsonl."""
    prefixes = tuple(p for group in STAGE_PREFIXES.values() for p in group)
    return {key: float(value) for key, value in logs.items()
            if key in STAGE_KEYS or (key.startswith("eval_") and key[5:] in STAGE_KEYS) or key.startswith(prefixes)}


def stage_plot_keys(stage: str, records: list[LogRecord]) -> tuple[str, ...]:
    """The figures drawn for a stage: its STAGE_PLOTS keys, then the logged keys under its prefixes."""
    prefixes = STAGE_PREFIXES.get(stage, ())
    extra = sorted({key for r in records for key in r if prefixes and key.startswith(prefixes)})
    return STAGE_PLOTS.get(stage, ()) + tuple(extra)


def plot_name(key: str) -> str:
    """The PNG file of one logged figure: training_rewards_accuracies.png for rewards/accuracies."""
    return "training_" + key.replace("/", "_") + ".png"


def plot_metrics(log_path: Path, out_dir: Path, keys: tuple[str, ...]) -> list[Path]:
    """One PNG per logged figure among keys (raw and smoothed against the step); keys never logged are skipped."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_log(log_path)
    written = []
    for key in keys:
        points = [(r["step"], float(r[key])) for r in records if key in r]
        if not points:
            continue
        steps, values = zip(*points)
        fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
        ax.plot(steps, values, color="#9bb7d4" if len(points) > 2 else "#1f77b4",
                marker="o" if len(points) < 20 else None, label="original")
        if len(points) > 2:
            ax.plot(steps, smooth(list(values)), color="#1f77b4", label="smoothed")
        ax.set_xlabel("step")
        ax.set_ylabel(key)
        ax.set_title(f"{key}: {out_dir.name}")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out_dir / plot_name(key))
        plt.close(fig)
        written.append(out_dir / plot_name(key))
    return written
