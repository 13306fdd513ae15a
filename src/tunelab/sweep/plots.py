"""The figures of a sweep and of a run comparison: loss curves overlaid, the objective against each varied key,
and a search's optimisation history (matplotlib, Agg)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType

from matplotlib.ticker import MaxNLocator

from tunelab.sweep.runs import loss_curves
from tunelab.sweep.table import Row, cell_text

LOSSES_PNG = "sweep_losses.png"
OBJECTIVE_PNG = "sweep_objective.png"
HISTORY_PNG = "sweep_history.png"


def pyplot() -> ModuleType:
    """matplotlib.pyplot on the Agg backend (imported late: it is slow to import)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_losses(folders: Mapping[str, Path], path: Path, title: str) -> Path | None:
    """Train loss (left) and eval loss (right) of every run, one colour per run; None when no run logged a loss."""
    curves = {name: loss_curves(folder) for name, folder in folders.items()}
    if not any(train or evals for train, evals in curves.values()):
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), dpi=110)
    for index, (name, (train, evals)) in enumerate(curves.items()):
        colour = f"C{index % 10}"
        if train:
            axes[0].plot(*zip(*train), color=colour, label=name, linewidth=1.3)
        if evals:
            axes[1].plot(*zip(*evals), color=colour, label=name, marker="o", markersize=3, linewidth=1.3)
    for ax, label in zip(axes, ("training loss", "eval loss")):
        ax.set_xlabel("step")
        ax.set_title(label)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def numeric(values: Sequence[object]) -> bool:
    """Whether every value is a number (plotted on a number axis) rather than a category."""
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def plot_objective(rows: Sequence[Row], keys: Sequence[str], metric: str, path: Path) -> Path | None:
    """One panel per varied key: the objective of each finished trial against that key's value."""
    done = [row for row in rows if isinstance(row.get("objective"), (int, float))]
    if not done or not keys:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.8), dpi=110, squeeze=False)
    for ax, key in zip(axes[0], keys):
        values = [row.get(key) for row in done]
        objective = [float(row["objective"]) for row in done]  # type: ignore[arg-type]
        if numeric(values):
            ax.scatter(values, objective, color="C0")
            if all(isinstance(v, int) for v in values):
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            positive = all(float(v) > 0 for v in values)  # type: ignore[arg-type]
            if positive and max(values) / min(values) >= 10:  # type: ignore[operator]
                ax.set_xscale("log")
        else:
            labels = list(dict.fromkeys(cell_text(v) for v in values))
            ax.scatter([labels.index(cell_text(v)) for v in values], objective, color="C0")
            ax.set_xticks(range(len(labels)), labels, rotation=20, fontsize=8)
        best = [row for row in done if row.get("best")]
        if best:
            ax.scatter([best[0].get(key) if numeric(values) else labels.index(cell_text(best[0].get(key)))],
                       [best[0]["objective"]], color="C3", marker="*", s=160, label="best", zorder=3)
            ax.legend(fontsize=7)
        ax.set_xlabel(key)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{metric} against each varied key")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_history(values: Sequence[float], direction: str, metric: str, path: Path) -> Path | None:
    """The objective of each finished trial in the order they finished, and the best so far."""
    if not values:
        return None
    plt = pyplot()
    pick = min if direction == "minimize" else max
    best = [pick(values[: i + 1]) for i in range(len(values))]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    trials = range(1, len(values) + 1)
    ax.scatter(trials, values, color="C0", label="trial")
    ax.step(trials, best, where="post", color="C3", label=f"best so far ({direction})")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial (in the order finished)")
    ax.set_ylabel(metric)
    ax.set_title("optimisation history")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
