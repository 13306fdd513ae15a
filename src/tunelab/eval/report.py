"""The eval report: one table (models x tasks) on the console and as Markdown, JSON and a PNG, plus per-row
comparisons so a user sees which rows changed between models."""

from __future__ import annotations

import json
from pathlib import Path

from tunelab.config.eval_tasks import EvalTaskSpec
from tunelab.eval.results import Row, TaskScore

RESULTS = "eval_results"
SCALES = {"perplexity": "lower is better", "ndcg": "0-1", "dcg": "unnormalised", "hit": "rate 0-1",
          "hits": "count per row", "mrr": "0-1"}


def kind_scales() -> dict[str, str]:
    """The scales the task kinds declare for their own metrics (judge scores, length deviations, ...)."""
    from tunelab.eval.kinds import KINDS

    return {metric: note for kind in KINDS.values() for metric, note in kind.scales.items()}


def scale_note(metric: str) -> str:
    """How to read a metric's number."""
    head = metric.split("@")[0]
    return kind_scales().get(metric) or SCALES.get(head, "percent")


def format_value(metric: str, value: float) -> str:
    """Four decimals for 0-1 figures and counts, two for everything else (percentages, perplexity, scores)."""
    return f"{value:.4f}" if scale_note(metric) in ("0-1", "rate 0-1", "count per row", "unnormalised") \
        else f"{value:.2f}"


def table_rows(results: dict[str, dict[str, TaskScore]], tasks: list[str]) -> list[list[str]]:
    """Header, metric row and one row per model, the way competition teams lay out their tables."""
    first = next(iter(results.values()))
    header = [""] + tasks
    metric_row = ["metric"] + [" / ".join(first[t].metrics) for t in tasks]
    rows = [header, metric_row]
    for model, scores in results.items():
        rows.append([model] + [" / ".join(format_value(m, v) for m, v in scores[t].metrics.items()) for t in tasks])
    return rows


def markdown(results: dict[str, dict[str, TaskScore]], tasks: list[str]) -> str:
    """The results table and the row counts behind every figure, as Markdown."""
    rows = table_rows(results, tasks)
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    lines += ["", "Rows scored (answers that could not be extracted count as wrong):", ""]
    for model, scores in results.items():
        parts = [f"{t}: {scores[t].scored} scored, {len(scores[t].unextracted)} unextracted" for t in tasks]
        lines.append(f"- {model}: " + "; ".join(parts))
    first = next(iter(results.values()))
    metrics = sorted({m for t in tasks for m in first[t].metrics})
    lines += ["", "Scales: " + ", ".join(f"{m} ({scale_note(m)})" for m in metrics), ""]
    lines += decoding_lines(first, tasks)
    return "\n".join(lines)


def decoding_lines(scores: dict[str, TaskScore], tasks: list[str]) -> list[str]:
    """How each generating task's answers were decoded (the same settings for every model)."""
    settings = {t: scores[t].details["decoding"] for t in tasks if isinstance(scores[t].details.get("decoding"), dict)}
    if not settings:
        return []
    return ["Decoding:", ""] + [f"- {t}: " + ", ".join(f"{k} {v}" for k, v in d.items()) for t, d in settings.items()] \
        + [""]


def print_table(results: dict[str, dict[str, TaskScore]], tasks: list[str]) -> None:
    """The results table on the console."""
    from rich.table import Table

    from tunelab.runtime.logging import console

    rows = table_rows(results, tasks)
    table = Table(*rows[0], title="tunelab eval")
    for row in rows[1:]:
        table.add_row(*row)
    console.print(table)


def plot(results: dict[str, dict[str, TaskScore]], tasks: list[str], path: Path) -> None:
    """One small bar chart per task metric, a bar per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = next(iter(results.values()))
    panels = [(t, m) for t in tasks for m in first[t].metrics]
    columns = min(4, len(panels))
    rows = (len(panels) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.8 * rows), squeeze=False)
    models = list(results)
    for ax, (task, metric) in zip(axes.flat, panels):
        values = [results[m][task].metrics[metric] for m in models]
        bars = ax.bar(range(len(models)), values, color=[f"C{i}" for i in range(len(models))])
        ax.bar_label(bars, labels=[format_value(metric, v) for v in values], fontsize=7)
        ax.set_xticks(range(len(models)), models, fontsize=7, rotation=20)
        ax.set_title(f"{task}: {metric}", fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def outcome(row: Row, metrics: list[str]) -> object:
    """What decides whether a row changed between models: correctness, else the first metric."""
    if "correct" in row:
        return row["correct"]
    return next((row[m] for m in metrics if m in row), None)


def write_row_comparisons(out: Path, results: dict[str, dict[str, TaskScore]], tasks: list[str]) -> None:
    """rows/<task>.jsonl: each row with every model's answer and outcome, and whether they differ."""
    folder = out / "rows"
    folder.mkdir(parents=True, exist_ok=True)
    for task in tasks:
        per_model = {model: scores[task] for model, scores in results.items()}
        first = next(iter(per_model.values()))
        with (folder / f"{task}.jsonl").open("w", encoding="utf-8") as handle:
            for index, row in enumerate(first.rows):
                entry: Row = {"id": row.get("id"), "label": row.get("label", row.get("answer"))}
                models = {}
                for model, score in per_model.items():
                    theirs = score.rows[index] if index < len(score.rows) else {}
                    models[model] = {k: v for k, v in theirs.items() if k not in ("id", "label")}
                outcomes = {json.dumps(outcome(m, list(first.metrics)), default=str) for m in models.values()}
                entry.update({"changed": len(outcomes) > 1, "models": models})
                handle.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")


def write_kind_plots(out: Path, results: dict[str, dict[str, TaskScore]], specs: list[EvalTaskSpec]) -> list[Path]:
    """The figures a task's kind draws beyond the bar chart, one call per task with every model's score."""
    from tunelab.eval.kinds import kind_of

    written: list[Path] = []
    for spec in specs:
        kind = kind_of(spec)
        if kind.plot is not None:
            written += kind.plot(spec, {model: scores[spec.name] for model, scores in results.items()}, out)
    return written


def write_report(out: Path, results: dict[str, dict[str, TaskScore]], specs: list[EvalTaskSpec]) -> None:
    """eval_results.json/.md/.png, rows/<task>.jsonl, and the table on the console."""
    tasks = [spec.name for spec in specs]
    out.mkdir(parents=True, exist_ok=True)
    summary = {
        "models": list(results),
        "tasks": [spec.model_dump(exclude_none=True) for spec in specs],
        "results": {model: {t: s.to_dict() for t, s in scores.items()} for model, scores in results.items()},
    }
    (out / f"{RESULTS}.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False, default=str),
                                         encoding="utf-8")
    (out / f"{RESULTS}.md").write_text(markdown(results, tasks), encoding="utf-8")
    plot(results, tasks, out / f"{RESULTS}.png")
    write_kind_plots(out, results, specs)
    write_row_comparisons(out, results, tasks)
    print_table(results, tasks)
