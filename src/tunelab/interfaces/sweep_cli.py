"""`tunelab sweep CONFIG`, `tunelab runs FOLDER` and `tunelab runs compare A B ...`: parsing only; the work is in
tunelab.sweep."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from tunelab.config.errors import ConfigError, Problem

AddConfigArgs = Callable[[argparse.ArgumentParser], None]


def route_runs(argv: list[str]) -> list[str]:
    """`runs compare ...` -> the hidden `runs-compare` command (so `runs FOLDER` keeps its plain form)."""
    if len(argv) >= 2 and argv[0] == "runs" and argv[1] == "compare":
        return ["runs-compare"] + argv[2:]
    return argv


def assignments(items: list[str] | None, flag: str) -> dict[str, str] | None:
    """--grid/--param KEY=VALUES items as a mapping; a malformed one is a config problem naming the flag."""
    from tunelab.sweep.params import ParamError, split_assignment

    if not items:
        return None
    found: dict[str, str] = {}
    problems = []
    for item in items:
        try:
            key, rest = split_assignment(item, flag)
            found[key] = rest
        except ParamError as exc:
            problems.append(Problem(flag, str(exc)))
    if problems:
        raise ConfigError(problems)
    return found


def sweep_flags(args: argparse.Namespace) -> dict[str, object]:
    """The flags given, as sweep-section keys (None: not given, the YAML's value stays)."""
    return {"grid": assignments(args.grid, "--grid"), "params": assignments(args.param, "--param"),
            "search": args.search, "trials": args.trials, "sampler": args.sampler, "metric": args.metric,
            "direction": args.direction, "pruner": args.pruner, "parallel": args.parallel, "storage": args.storage,
            "study_name": args.study_name}


def cmd_sweep(args: argparse.Namespace) -> int:
    """`tunelab sweep CONFIG`: run (or resume) the sweep and print its table."""
    from tunelab.runtime.logging import info
    from tunelab.sweep.plan import load_plan
    from tunelab.sweep.results import RESULTS
    from tunelab.sweep.study import run_sweep

    plan = load_plan(args.config, args.overrides, sweep_flags(args))
    size = f"{len(plan.combinations())} combinations" if plan.sampler == "grid" else f"{plan.trials} trials"
    info(f"sweep {plan.study_name} in {plan.folder}: {', '.join(plan.varied)} ({size}, sampler {plan.sampler}); "
         f"objective {plan.metric} ({plan.direction}); storage {plan.storage_url()}")
    summary = run_sweep(plan)
    print_trials(summary)
    info(f"results: {plan.folder / RESULTS}.md (also .json, .csv and the PNGs)")
    return 0


def print_trials(summary: dict[str, object]) -> None:
    """The sweep's table on the console."""
    from tunelab.sweep.table import columns, print_rows

    rows = [dict(row) for row in summary["trials"]]  # type: ignore[union-attr]
    names = [n for n in columns(rows) if n not in ("error", "attempts", "best")]
    for row in rows:
        row["trial"] = f"{row['trial']} *" if row.get("best") else row["trial"]
    print_rows(rows, names, f"sweep {summary['study']}: {summary['metric']} ({summary['direction']}; * best)")


def cmd_runs(args: argparse.Namespace) -> int:
    """`tunelab runs FOLDER`: every run under the folder, newest first, one line each."""
    from tunelab.sweep.runs import find_runs, index_row
    from tunelab.sweep.table import columns, print_rows

    folder = Path(args.folder)
    if not folder.is_dir():
        raise ConfigError([Problem(str(folder), "no such folder; give a folder that holds run folders")])
    runs = find_runs(folder)
    if args.json:
        print(json.dumps([run.to_dict() for run in runs], indent=2, ensure_ascii=False))
        return 0
    if not runs:
        print(f"no run folders under {folder} (a run folder holds config.yaml and run.jsonl)")
        return 0
    rows = [index_row(run) for run in runs]
    print_rows(rows, columns(rows), f"{len(runs)} runs under {folder}, newest first")
    return 0


def cmd_runs_compare(args: argparse.Namespace) -> int:
    """`tunelab runs compare A B ...`: one table and the loss curves overlaid."""
    from tunelab.runtime.logging import info
    from tunelab.sweep.plots import plot_losses
    from tunelab.sweep.runs import compare_rows, is_run, read_run
    from tunelab.sweep.table import columns, markdown, print_rows, transposed

    missing = [Problem(folder, "not a run folder (no config.yaml with run.jsonl or run_summary.json)")
               for folder in args.folders if not is_run(Path(folder))]
    if missing:
        raise ConfigError(missing)
    rows = compare_rows([read_run(Path(folder)) for folder in args.folders])
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False, default=str))
        return 0
    labels = unique_labels([Path(folder) for folder in args.folders])
    for row, label in zip(rows, labels):
        row["run"] = label
    table, names = transposed(rows, columns(rows), "run")
    print_rows(table, names, "runs compared")
    png = plot_losses(dict(zip(labels, (Path(f) for f in args.folders))), Path(args.out), "runs compared")
    if args.markdown:
        Path(args.markdown).write_text(markdown(table, names) + "\n", encoding="utf-8")
        info(f"table: {args.markdown}")
    info(f"loss curves: {png}" if png else "no run logged a loss yet: no figure")
    return 0


def unique_labels(folders: list[Path]) -> list[str]:
    """The folder names, or parent/name where two runs share a name."""
    names = [folder.name for folder in folders]
    return [f"{f.parent.name}/{f.name}" if names.count(f.name) > 1 else f.name for f in folders]


def add_sweep_parsers(commands: argparse._SubParsersAction, add_config_args: AddConfigArgs) -> None:
    """Register `sweep`, `runs` and (hidden behind `runs compare`) `runs-compare`."""
    sweep = commands.add_parser("sweep", help="run every trial of a grid or an Optuna search (the config's sweep: "
                                "section and/or flags), resumable, with one results table")
    add_config_args(sweep)
    sweep.add_argument("--grid", nargs="+", action="extend", metavar="KEY=V1,V2",
                       help="values to try for a config key; every combination is a trial")
    sweep.add_argument("--search", choices=["optuna"], help="search ranges (--param) instead of a full grid")
    sweep.add_argument("--param", nargs="+", action="extend", metavar="KEY=KIND:A:B",
                       help="a search range: log:1e-5:1e-3, float:0:0.1, int:4:64 or cat:lora,full")
    sweep.add_argument("--trials", type=int, help="trials a search runs (default 10)")
    sweep.add_argument("--sampler", choices=["grid", "random", "tpe"], help="default: grid for a grid, tpe for "
                       "a search")
    sweep.add_argument("--metric", help="objective: eval_loss (default) or TASK:METRIC of eval_tasks, e.g. "
                       "length:mae")
    sweep.add_argument("--direction", choices=["minimize", "maximize"], help="default: minimize for losses and "
                       "deviations, maximize otherwise")
    sweep.add_argument("--pruner", choices=["median", "none"], help="stop trials whose eval loss is worse than "
                       "the median (default for a search on eval_loss)")
    sweep.add_argument("--parallel", type=int, help="trials at once on this machine (one GPU each where several)")
    sweep.add_argument("--storage", help="Optuna storage URL shared by several machines (default: SQLite "
                       "sweep.db in the sweep folder)")
    sweep.add_argument("--study-name", help="the study's name in the storage (default sweep)")
    sweep.set_defaults(func=cmd_sweep)

    runs = commands.add_parser("runs", help="every run folder under FOLDER, newest first, one line each; "
                               "`tunelab runs compare A B ...` compares runs")
    runs.add_argument("folder", help="a folder holding run folders (e.g. saves/)")
    runs.add_argument("--json", action="store_true")
    runs.set_defaults(func=cmd_runs)

    # no help=: argparse lists only subcommands given one, so `tunelab --help` shows `runs` alone
    compare = commands.add_parser("runs-compare", prog="tunelab runs compare", description="One table and the loss "
                                  "curves of several run folders.")
    compare.add_argument("folders", nargs="+", help="run folders")
    compare.add_argument("--out", default="runs_compare.png", help="the loss-curve figure (default "
                         "runs_compare.png)")
    compare.add_argument("--markdown", help="also write the table as Markdown to this file")
    compare.add_argument("--json", action="store_true")
    compare.set_defaults(func=cmd_runs_compare)
