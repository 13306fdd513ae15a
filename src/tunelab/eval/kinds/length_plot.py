"""The length task's figures: actual vs target length with the y = x line, and the deviation by length band;
each compared model is its own series, in the same colour in both."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

Series = tuple[Sequence[int], Sequence[int]]  # targets, actual lengths (aligned)
BandFigures = dict[str, tuple[float, float]]  # a model's bands: band label -> (mean absolute, mean deviation)


def per_target_means(targets: Sequence[int], actual: Sequence[int]) -> tuple[list[int], list[float]]:
    """The mean actual length of each target (several scenarios ask each length), targets ascending."""
    grouped: dict[int, list[int]] = defaultdict(list)
    for target, length in zip(targets, actual):
        grouped[target].append(length)
    xs = sorted(grouped)
    return xs, [sum(grouped[x]) / len(grouped[x]) for x in xs]


def draw_actual_vs_target(path: Path, title: str, unit: str, series: dict[str, Series]) -> Path:
    """Each model's lengths against the targets (points, and a line through each target's mean), with y = x."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5.5))
    top = max([max(t, default=0) for t, _ in series.values()] + [1])
    ax.plot([0, top], [0, top], color="black", linestyle="--", linewidth=1, label="y = x (exact length)")
    for index, (model, (targets, actual)) in enumerate(series.items()):
        colour = f"C{index}"
        ax.scatter(targets, actual, s=12, alpha=0.45, color=colour)
        xs, ys = per_target_means(targets, actual)
        ax.plot(xs, ys, color=colour, linewidth=1.5, label=model)
    ax.set_xlabel(f"target length ({unit})")
    ax.set_ylabel(f"actual length ({unit})")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def draw_bands(path: Path, title: str, unit: str, tables: dict[str, BandFigures]) -> Path:
    """Mean absolute and mean signed deviation per target-length band, a bar per model in each band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bands = list(dict.fromkeys(band for table in tables.values() for band in table))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    width = min(0.8 / max(len(tables), 1), 0.35)
    for ax, which, label in ((axes[0], 0, "mean absolute deviation"), (axes[1], 1, "mean deviation")):
        for index, (model, table) in enumerate(tables.items()):
            xs = [bands.index(band) + (index - (len(tables) - 1) / 2) * width for band in table]
            bars = ax.bar(xs, [pair[which] for pair in table.values()], width=width, color=f"C{index}", label=model)
            ax.bar_label(bars, fmt="%.1f", fontsize=7)
        ax.set_xticks(range(len(bands)), bands, fontsize=8)
        ax.set_xlabel(f"target length band ({unit})", fontsize=9)
        ax.set_ylabel(label, fontsize=9)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
