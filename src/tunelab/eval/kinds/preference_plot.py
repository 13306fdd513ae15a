"""The preference task's figure: each model's per-pair margins (log p chosen - log p rejected) as histograms, and,
under --compare, every other model's margin against the first model's, pair by pair (points above y = x moved
towards the chosen answer; points in the upper-left quadrant turned from wrong to right)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tunelab.config.eval_tasks import EvalTaskSpec
from tunelab.eval.results import TaskScore

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def margins(score: TaskScore) -> list[float]:
    """The per-pair margins of one model's rows."""
    return [float(row["margin"]) for row in score.rows]


def draw_margins(task: EvalTaskSpec, scores: dict[str, TaskScore], out: Path) -> list[Path]:
    """<task>_margins.png: histograms of the margins per model, and the pair-by-pair scatter against the first."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = {model: margins(score) for model, score in scores.items() if score.rows}
    if not series:
        return []
    compared = len(series) > 1
    fig, axes = plt.subplots(1, 2 if compared else 1, figsize=(11 if compared else 6, 4.5), squeeze=False)
    histogram(axes[0][0], series)
    if compared:
        scatter(axes[0][1], series)
    fig.suptitle(f"{task.name}: per-pair margin, log p(chosen) - log p(rejected)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    path = out / f"{task.name}_margins.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [path]


def histogram(ax: Axes, series: dict[str, list[float]]) -> None:
    """Overlaid step histograms on shared bins, the zero line marking where the preference flips."""
    values = [v for margins_of in series.values() for v in margins_of]
    low, high = min(values + [0.0]), max(values + [0.0])
    bins = [low + (high - low) * i / 30 for i in range(31)] if high > low else 10
    for index, (model, margins_of) in enumerate(series.items()):
        right = sum(m > 0 for m in margins_of)
        ax.hist(margins_of, bins=bins, histtype="step", linewidth=1.6, color=f"C{index}",
                label=f"{model} ({right}/{len(margins_of)} > 0)")
    ax.axvline(0, color="black", linestyle="--", linewidth=1)
    ax.set_xlabel("margin (nats)", fontsize=9)
    ax.set_ylabel("pairs", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)


def scatter(ax: Axes, series: dict[str, list[float]]) -> None:
    """Each later model's margin against the first model's, pair by pair, with y = x."""
    first, *others = series
    xs = series[first]
    values = [v for margins_of in series.values() for v in margins_of]
    low, high = min(values + [0.0]), max(values + [0.0])
    ax.plot([low, high], [low, high], color="black", linestyle="--", linewidth=1, label="y = x (unchanged)")
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.axvline(0, color="grey", linewidth=0.8)
    for index, model in enumerate(others, start=1):
        ys = series[model][:len(xs)]
        ax.scatter(xs[:len(ys)], ys, s=16, alpha=0.6, color=f"C{index}", label=model)
    ax.set_xlabel(f"{first} margin (nats)", fontsize=9)
    ax.set_ylabel("margin (nats)", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
