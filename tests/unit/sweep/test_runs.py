"""Run folders read back (made by a sweep or not): the index newest first, the comparison table, the overlaid loss
curves, and the table layout."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from tunelab.interfaces.cli import main
from tunelab.sweep.runs import compare_rows, duration_text, find_runs, index_row, read_run
from tunelab.sweep.table import csv_text, markdown


def make_run(folder: Path, config: dict[str, object], losses: list[float], summary: bool = True,
             evals: dict[str, dict[str, float]] | None = None, stamp: float = 1_700_000_000.0) -> Path:
    """A run folder as `tunelab train` (and `tunelab eval`) leave it."""
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump({"stage": "sft", "finetuning_type": "lora",
                                                        "dataset": "identity", "output_dir": str(folder),
                                                        **config}))
    records = [{"step": i + 1, "max_steps": len(losses), "loss": loss, "elapsed_s": 10.0 * (i + 1)}
               for i, loss in enumerate(losses)] + [{"step": len(losses), "eval_loss": losses[-1] + 0.5}]
    (folder / "run.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records) + '{"step": 9, "lo')
    if summary:
        (folder / "run_summary.json").write_text(json.dumps({
            "steps": len(losses), "max_steps": len(losses), "final_train_loss": losses[-1], "stopped_early": False,
            "final_eval": {"eval_loss": losses[-1] + 0.5}, "wall_time_s": 125.0}))
    if evals:
        (folder / "eval").mkdir()
        (folder / "eval" / "eval_results.json").write_text(json.dumps({"results": {"model": {
            task: {"metrics": metrics} for task, metrics in evals.items()}}}))
    for path in folder.iterdir():
        os.utime(path, (stamp, stamp))
    return folder


def test_a_finished_run(tmp_path: Path) -> None:
    run = read_run(make_run(tmp_path / "a", {"learning_rate": 1e-4}, [2.0, 1.5], evals={"length": {"mae": 3.5}}))
    assert (run.method, run.data, run.steps, run.max_steps) == ("sft lora", "identity", 2, 2)
    assert (run.final_train_loss, run.final_eval_loss, run.duration_s, run.status) == (1.5, 2.0, 125.0, "finished")
    assert run.eval_metrics == {"length:mae": 3.5}
    assert index_row(run)["duration"] == "2m05s" and index_row(run)["steps"] == "2/2"


def test_an_unfinished_run_is_read_from_its_log(tmp_path: Path) -> None:
    run = read_run(make_run(tmp_path / "b", {}, [2.0, 1.8, 1.7], summary=False))
    assert (run.steps, run.max_steps, run.final_train_loss, run.final_eval_loss) == (3, 3, 1.7, 2.2)
    assert run.status == "unfinished" and run.duration_s == 30.0  # the half-written last line is left out


def test_every_run_under_a_folder_newest_first(tmp_path: Path) -> None:
    make_run(tmp_path / "old", {}, [1.0], stamp=1_600_000_000.0)
    make_run(tmp_path / "sweep" / "lr1e-4", {}, [1.0], stamp=1_700_000_000.0)
    (tmp_path / "sweep" / "lr1e-4" / "checkpoint-1").mkdir()
    (tmp_path / "sweep" / "lr1e-4" / "checkpoint-1" / "config.yaml").write_text("a: 1\n")
    (tmp_path / "notes").mkdir()
    assert [run.name for run in find_runs(tmp_path)] == ["lr1e-4", "old"]
    assert [run.name for run in find_runs(tmp_path / "old")] == ["old"]


def test_compare_shows_the_keys_that_differ(tmp_path: Path) -> None:
    runs = [read_run(make_run(tmp_path / name, {"learning_rate": lr, "lora_rank": 8, "logging_steps": steps},
                              [2.0, loss], evals={"length": {"mae": loss * 2}}))
            for name, lr, loss, steps in (("a", 1e-4, 1.5, 5), ("b", 3e-4, 1.2, 10))]
    rows = compare_rows(runs)
    assert list(rows[0]) == ["run", "method", "data", "learning_rate", "steps", "train_loss", "eval_loss",
                             "length:mae", "duration", "status"]  # logging_steps: not what a run learns
    assert [row["learning_rate"] for row in rows] == [1e-4, 3e-4] and rows[1]["length:mae"] == 2.4
    table = markdown(rows, list(rows[0]))
    assert table.splitlines()[2] == "| a | sft lora | identity | 1e-4 | 2 | 1.5 | 2 | 3 | 2m05s | finished |"
    assert csv_text(rows, ["run", "learning_rate"]) == "run,learning_rate\na,0.0001\nb,0.0003\n"


def test_the_runs_commands(tmp_path: Path, capsys) -> None:
    a = make_run(tmp_path / "a", {"learning_rate": 1e-4}, [2.0, 1.5])
    b = make_run(tmp_path / "b", {"learning_rate": 3e-4}, [2.0, 1.2])
    assert main(["runs", str(tmp_path), "--json"]) == 0
    assert {run["name"] for run in json.loads(capsys.readouterr().out)} == {"a", "b"}
    png = tmp_path / "cmp.png"
    assert main(["runs", "compare", str(a), str(b), "--out", str(png), "--markdown", str(tmp_path / "t.md")]) == 0
    table = (tmp_path / "t.md").read_text().splitlines()
    assert png.is_file() and table[0] == "|  | a | b |" and "| learning_rate | 1e-4 | 3e-4 |" in table
    assert main(["runs", "compare", str(a), str(tmp_path / "nothing")]) == 2
    assert f"{tmp_path / 'nothing'}: not a run folder" in capsys.readouterr().err
    assert main(["runs", str(tmp_path / "missing")]) == 2


def test_runs_compare_is_a_form_of_runs_not_a_command_of_its_own(capsys) -> None:
    from tunelab.interfaces.cli import build_parser

    top = build_parser().format_help()
    assert "runs-compare" not in top and "tunelab runs compare A B" in top
    with pytest.raises(SystemExit) as done:
        main(["runs", "compare", "--help"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("usage: tunelab runs compare [-h]")


def test_the_sweep_command_reports_bad_flags_by_name(tmp_path: Path, capsys) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(f"model_name_or_path: tiny\ndataset: demo\noutput_dir: {tmp_path / 'sw'}\nval_size: 2\n")
    assert main(["sweep", str(config), "--grid", "learning_rate", "--param", "lora_rank=int:4"]) == 2
    err = capsys.readouterr().err
    assert "--grid: --grid 'learning_rate': write KEY=VALUES" in err and "Traceback" not in err
    assert main(["sweep", str(config), "--search", "optuna", "--param", "lora_rank=int:4"]) == 2
    assert "sweep.params.lora_rank: 'int:4': int ranges need LOW:HIGH" in capsys.readouterr().err


def test_durations() -> None:
    assert [duration_text(s) for s in (42, 185, 3725, None)] == ["42s", "3m05s", "1h02m", None]
