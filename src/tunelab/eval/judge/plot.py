"""The judge's figures: a histogram of the scores (a bar per model at each score) and, pairwise, each model's
win/tie/loss against the baseline as one stacked bar."""

from __future__ import annotations

from pathlib import Path

from tunelab.config.eval_tasks import EvalTaskSpec
from tunelab.eval.results import TaskScore


def histogram(task: EvalTaskSpec, scores: dict[str, TaskScore], path: Path) -> None:
    """Counts per score, one colour per model, the mean and standard deviation in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from matplotlib.ticker import MaxNLocator

    scale = str(next(iter(scores.values())).details.get("scale", ""))
    low, _, high = scale.partition("-")
    whole = range(int(low), int(high) + 1) if low.isdigit() and high.isdigit() and int(high) - int(low) <= 20 else []
    values = sorted({float(v) for v in whole} | {float(v) for s in scores.values()
                                                 for v in dict(s.details.get("distribution", {}))})
    fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * len(values) * len(scores) + 3), 3.8))
    width = 0.8 / max(1, len(scores))
    for index, (model, score) in enumerate(scores.items()):
        counts = dict(score.details.get("distribution", {}))  # type: ignore[call-overload]
        heights = [counts.get(f"{v:g}", 0) for v in values]
        label = (f"{model}: mean {score.metrics.get('judge-mean', 0):.2f}, std {score.metrics.get('judge-std', 0):.2f}"
                 f" ({score.details.get('judged', 0)} judged, {len(score.unextracted)} unparsed)")
        positions = [i + (index - (len(scores) - 1) / 2) * width for i in range(len(values))]
        bars = ax.bar(positions, heights, width, label=label, color=f"C{index}")
        ax.bar_label(bars, labels=[str(h) if h else "" for h in heights], fontsize=7)
    ax.set_xticks(range(len(values)), [f"{v:g}" for v in values])
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(f"score ({scale})")
    ax.set_ylabel("rows")
    ax.set_title(f"{task.name}: judge scores", fontsize=9)
    ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.08), ncol=1, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def outcomes(task: EvalTaskSpec, scores: dict[str, TaskScore], path: Path) -> None:
    """Win (green), tie (grey) and loss (red) in percent, one bar per model compared with the baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    compared = {m: s for m, s in scores.items() if not s.details.get("baseline")}
    base = next((m for m, s in scores.items() if s.details.get("baseline")), "baseline")
    fig, ax = plt.subplots(figsize=(7.0, 1.4 + 0.5 * len(compared)))
    names = list(compared)
    left = [0.0] * len(names)
    for metric, colour in (("win", "tab:green"), ("tie", "tab:gray"), ("loss", "tab:red")):
        widths = [compared[m].metrics.get(metric, 0.0) for m in names]
        bars = ax.barh(names, widths, left=left, color=colour, label=metric)
        ax.bar_label(bars, labels=[f"{w:.0f}%" if w else "" for w in widths], label_type="center", fontsize=7)
        left = [a + b for a, b in zip(left, widths)]
    ax.set_xlim(0, 100)
    ax.set_xlabel(f"percent of rows, against {base} (a win needs both orders)")
    ax.set_title(f"{task.name}: pairwise", fontsize=9)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def judge_plot(task: EvalTaskSpec, scores: dict[str, TaskScore], out: Path) -> list[Path]:
    """<output_dir>/<task>_judge.png: the histogram (single) or the win/tie/loss bars (pairwise)."""
    path = out / f"{task.name}_judge.png"
    if any(s.details.get("baseline") for s in scores.values()):
        if len(scores) < 2:
            return []
        outcomes(task, scores, path)
    else:
        histogram(task, scores, path)
    return [path]
