"""Run folders read back: one RunInfo per folder (any `tunelab train` output_dir, made by a sweep or not), the index
of every run under a folder, newest first, and the comparison of a few. Pure reading, no tunelab process needed:
the web UI's Runs tab calls these too."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from tunelab.runtime import paths
from tunelab.train.outdir import SAME_RUN_IGNORES
from tunelab.train.plots import eval_losses

EVAL_REPORTS = ("eval/eval_results.json", "eval_results.json")  # a sweep trial's eval folder, or `tunelab eval`
RUNNING_S = 120.0  # an unfinished run whose log moved this recently is reported as running


@dataclass
class RunInfo:
    """What a run folder says about its run."""

    folder: str
    name: str
    method: str  # stage + finetuning type, e.g. sft lora
    data: str
    steps: int | None
    max_steps: int | None
    final_train_loss: float | None
    final_eval_loss: float | None
    eval_metrics: dict[str, float] = field(default_factory=dict)  # TASK:METRIC from the eval report
    duration_s: float | None = None
    status: str = "unknown"  # finished, stopped early, running, unfinished
    modified: float = 0.0
    config: dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready (the config left out: it is in the folder)."""
        return {k: v for k, v in asdict(self).items() if k != "config"}


def read_json(path: Path) -> dict[str, object]:
    """A JSON object file, {} when missing or unreadable (a run still being written)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_records(path: Path) -> list[dict[str, object]]:
    """run.jsonl's records; a line cut short (the run is writing, or was killed) is left out."""
    records = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def is_run(folder: Path) -> bool:
    """Whether a folder holds a training run (its resolved config plus a log or a summary)."""
    return (folder / paths.CONFIG).is_file() and any(
        (folder / name).is_file() for name in (paths.LOG, paths.SUMMARY, paths.METRICS))


def eval_metrics(folder: Path) -> dict[str, float]:
    """TASK:METRIC of the run's eval report (MODEL/TASK:METRIC when it compared several models)."""
    for name in EVAL_REPORTS:
        results = read_json(folder / name).get("results")
        if isinstance(results, dict) and results:
            single = len(results) == 1
            return {(f"{task}:{metric}" if single else f"{model}/{task}:{metric}"): float(value)
                    for model, tasks in results.items() for task, score in tasks.items()
                    for metric, value in (score.get("metrics") or {}).items() if isinstance(value, (int, float))}
    return {}


def status_of(summary: dict[str, object], records: list[dict[str, object]], modified: float) -> str:
    """finished / stopped early (a summary was written), running (the log moved lately) or unfinished."""
    if summary:
        return "stopped early" if summary.get("stopped_early") else "finished"
    if records and time.time() - modified < RUNNING_S:
        return "running"
    return "unfinished"


def read_run(folder: Path) -> RunInfo:
    """One run folder's figures: from run_summary.json when the run finished, else from its config and log."""
    folder = Path(folder)
    summary = read_json(folder / paths.SUMMARY)
    try:
        config = yaml.safe_load((folder / paths.CONFIG).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        config = {}
    records = read_records(folder / paths.LOG)
    losses = [float(r["loss"]) for r in records if isinstance(r.get("loss"), (int, float))]
    evals = [loss for r in records for loss in eval_losses(r).values()][-1:]
    final_eval = summary.get("final_eval") or {}
    stamps = [p.stat().st_mtime for p in (folder / paths.LOG, folder / paths.SUMMARY, folder / paths.CONFIG)
              if p.is_file()]
    modified = max(stamps, default=0.0)
    steps = summary.get("steps", max((int(r.get("step", 0)) for r in records), default=None))
    return RunInfo(
        folder=str(folder), name=folder.name,
        method=f"{config.get('stage', summary.get('stage', '?'))} "
               f"{config.get('finetuning_type', summary.get('finetuning_type', '?'))}",
        data=str(config.get("dataset") or "-"), steps=steps,
        max_steps=summary.get("max_steps", next((int(r["max_steps"]) for r in reversed(records)
                                                if "max_steps" in r), None)),
        final_train_loss=summary.get("final_train_loss", losses[-1] if losses else None),
        final_eval_loss=final_eval.get("eval_loss", evals[-1] if evals else None),
        eval_metrics=eval_metrics(folder),
        duration_s=summary.get("wall_time_s", next((float(r["elapsed_s"]) for r in reversed(records)
                                                   if "elapsed_s" in r), None)),
        status=status_of(summary, records, modified), modified=modified, config=config)


def find_runs(root: Path) -> list[RunInfo]:
    """Every run folder under root (root itself included), newest first; checkpoint folders are not runs."""
    root = Path(root)
    folders = [root] if is_run(root) else []
    folders += sorted(p.parent for p in root.rglob(paths.CONFIG) if p.parent != root and is_run(p.parent)
                      and not any(part.startswith("checkpoint-") for part in p.parent.relative_to(root).parts))
    runs = [read_run(folder) for folder in folders]
    return sorted(runs, key=lambda run: run.modified, reverse=True)


def differing_keys(runs: list[RunInfo]) -> list[str]:
    """The config keys whose values differ between the runs (where they are, how they are watched: left out)."""
    keys = sorted({k for run in runs for k in run.config} - SAME_RUN_IGNORES)
    return [k for k in keys if len({json.dumps(run.config.get(k), default=str) for run in runs}) > 1]


def loss_curves(folder: Path) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """(train loss, eval loss) points of a run, by step."""
    records = read_records(Path(folder) / paths.LOG)
    train = [(int(r["step"]), float(r["loss"])) for r in records if isinstance(r.get("loss"), (int, float))]
    evals = [(int(r["step"]), float(r["eval_loss"])) for r in records if isinstance(r.get("eval_loss"), (int, float))]
    return train, evals


def index_row(run: RunInfo) -> dict[str, object]:
    """The one-line summary of a run in `tunelab runs FOLDER`."""
    return {"run": run.name, "method": run.method, "data": run.data,
            "steps": f"{run.steps}/{run.max_steps}" if run.max_steps else run.steps,
            "train_loss": run.final_train_loss, "eval_loss": run.final_eval_loss,
            "eval": ", ".join(f"{k} {v:.4g}" for k, v in run.eval_metrics.items()) or None,
            "duration": duration_text(run.duration_s), "status": run.status,
            "modified": time.strftime("%Y-%m-%d %H:%M", time.localtime(run.modified)) if run.modified else None}


def compare_rows(runs: list[RunInfo]) -> list[dict[str, object]]:
    """One row per run: the config keys that differ, then steps, losses, every eval metric, duration, status."""
    keys = differing_keys(runs)
    rows = []
    for run in runs:
        row: dict[str, object] = {"run": run.name, "method": run.method, "data": run.data}
        row.update({key: run.config.get(key) for key in keys if key not in ("stage", "finetuning_type", "dataset")})
        row.update({"steps": run.steps, "train_loss": run.final_train_loss, "eval_loss": run.final_eval_loss})
        row.update(run.eval_metrics)
        row.update({"duration": duration_text(run.duration_s), "status": run.status})
        rows.append(row)
    return rows


def duration_text(seconds: float | None) -> str | None:
    """1h02m, 3m05s, 42s."""
    if seconds is None:
        return None
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
