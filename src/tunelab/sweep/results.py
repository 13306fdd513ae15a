"""sweep_results.md/.json/.csv and the sweep's PNGs: one row per trial (the varied values, steps, duration, final
losses, every eval metric, status, objective), the best trial marked; read from the ledger and the trial folders."""

from __future__ import annotations

import json
import time

from tunelab.sweep.ledger import Entry
from tunelab.sweep.plots import HISTORY_PNG, LOSSES_PNG, OBJECTIVE_PNG, plot_history, plot_losses, plot_objective
from tunelab.sweep.runs import is_run, read_run
from tunelab.sweep.spec import SweepPlan
from tunelab.sweep.table import Row, columns, csv_text, markdown
from tunelab.sweep.trial import headline

RESULTS = "sweep_results"
STATUS = {"complete": "done", "pruned": "pruned", "failed": "failed", "running": "running",
          "interrupted": "interrupted"}


def trial_row(plan: SweepPlan, item: Entry) -> Row:
    """One trial's row."""
    folder = plan.folder / item.name
    run = read_run(folder) if is_run(folder) else None
    row: Row = {"trial": item.name, **{key: item.values.get(key) for key in plan.varied},
                "status": STATUS.get(item.state, item.state), "objective": item.value,
                "steps": run.steps if run else None, "duration_s": round(item.seconds, 1) if item.seconds else None,
                "train_loss": run.final_train_loss if run else None, "eval_loss": run.final_eval_loss if run else None}
    if run:
        row.update({key: round(value, 4) for key, value in run.eval_metrics.items()})
    row["attempts"] = item.attempts
    row["error"] = headline(item.error) if item.error else None
    return row


def mark_best(rows: list[Row], direction: str) -> Row | None:
    """Set best on the finished trial with the best objective; returns it."""
    done = [row for row in rows if row["status"] == "done" and isinstance(row["objective"], (int, float))]
    if not done:
        return None
    pick = min if direction == "minimize" else max
    best = pick(done, key=lambda row: float(row["objective"]))  # type: ignore[arg-type]
    for row in rows:
        row["best"] = row is best
    return best


def summary_lines(plan: SweepPlan, rows: list[Row], best: Row | None) -> list[str]:
    """The heading of sweep_results.md: objective, folder, what varies, trial counts, the best trial."""
    counts = {state: sum(row["status"] == state for row in rows) for state in dict.fromkeys(r["status"] for r in rows)}
    lines = [f"# Sweep {plan.study_name}: {plan.metric} ({plan.direction})", "",
             f"- folder: {plan.folder}", f"- varied: {', '.join(plan.varied)}; sampler {plan.sampler}"
             + (f", {plan.trials} trials" if plan.trials else "") + f"; pruner {plan.pruner}",
             "- trials: " + ", ".join(f"{n} {state}" for state, n in counts.items())]
    if best:
        lines.append(f"- best: **{best['trial']}** ({plan.metric} {best['objective']:.4g})")
    return lines + [""]


def write_results(plan: SweepPlan, entries: list[Entry], figures: bool = True) -> dict[str, object]:
    """Write the tables (and figures) of the sweep; returns what sweep_results.json holds."""
    rows = [trial_row(plan, item) for item in entries]
    best = mark_best(rows, plan.direction)
    names = columns(rows, ["trial", *plan.varied, "status", "objective", "steps", "duration_s", "train_loss",
                           "eval_loss"])
    names = [n for n in names if n not in ("best", "error", "attempts")] + ["attempts", "error"]
    shown = [{**row, "trial": f"**{row['trial']}** (best)" if row.get("best") else row["trial"]} for row in rows]
    out = plan.folder
    out.mkdir(parents=True, exist_ok=True)
    summary = {"study": plan.study_name, "metric": plan.metric, "direction": plan.direction, "varied": plan.varied,
               "sampler": plan.sampler, "storage": plan.storage_url(), "best": best["trial"] if best else None,
               "written": time.strftime("%Y-%m-%d %H:%M:%S"), "trials": rows}
    (out / f"{RESULTS}.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False, default=str),
                                         encoding="utf-8")
    (out / f"{RESULTS}.csv").write_text(csv_text(rows, names + ["best"]), encoding="utf-8")
    pngs = write_figures(plan, entries, rows) if figures else [
        name for name in (LOSSES_PNG, OBJECTIVE_PNG, HISTORY_PNG) if (out / name).is_file()]
    text = summary_lines(plan, rows, best) + [markdown(shown, names), ""]
    text += [f"![{name}]({name})" for name in pngs]
    (out / f"{RESULTS}.md").write_text("\n".join(text) + "\n", encoding="utf-8")
    return summary


def write_figures(plan: SweepPlan, entries: list[Entry], rows: list[Row]) -> list[str]:
    """The PNGs: losses overlaid, objective against each varied key, and (searches) the optimisation history."""
    out = plan.folder
    folders = {item.name: out / item.name for item in entries if (out / item.name).is_dir()}
    written = [plot_losses(folders, out / LOSSES_PNG, f"sweep {plan.study_name}: loss curves"),
               plot_objective(rows, plan.varied, plan.metric, out / OBJECTIVE_PNG)]
    if plan.sampler != "grid":
        finished = sorted((item for item in entries if item.state == "complete" and item.value is not None),
                          key=lambda item: item.finished or 0.0)
        written.append(plot_history([float(item.value) for item in finished], plan.direction, plan.metric,
                                    out / HISTORY_PNG))
    return [path.name for path in written if path is not None]
