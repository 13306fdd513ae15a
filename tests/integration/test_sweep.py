"""`tunelab sweep` on the real SmolLM2 (a few steps per trial): a 2 x 2 grid killed during its third trial and started
again ends with exactly four trials, each trained once (the third resumed from its checkpoint), and the table; two
sweep processes on one SQLite study never run a trial twice; `tunelab runs` lists and compares the trials."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .clirun import REPO, tunelab

NAMES = {"lr1e-4_r2", "lr1e-4_r4", "lr1e-3_r2", "lr1e-3_r4"}


def sweep_config(tmp_path: Path, out: Path, max_steps: int) -> Path:
    """The quickstart at its smallest: 12 identity rows, batch 1, a checkpoint every step, 2 eval rows."""
    path = tmp_path / f"{out.name}.yaml"
    path.write_text("\n".join([
        "model_name_or_path: smollm2-135m-instruct", "template: smollm2", "dataset: identity",
        "dataset_dir: examples/data", "max_samples: 12", "cutoff_len: 96", f"output_dir: {out}",
        "lora_rank: 8", "per_device_train_batch_size: 1", f"max_steps: {max_steps}", "save_steps: 1",
        "logging_steps: 1", "val_size: 2", "eval_strategy: steps", "eval_steps: 2", "report_to: none",
        "sweep:", "  grid:", "    learning_rate: [1e-4, 1e-3]", "    lora_rank: [2, 4]", ""]), encoding="utf-8")
    return path


def start_sweep(config: Path, log: Path) -> subprocess.Popen:
    """`tunelab sweep CONFIG` in its own process group (so a kill reaches its trial's process too)."""
    env = {**os.environ, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "tunelab", "sweep", str(config)], cwd=REPO, env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def train_commands(trial: Path) -> int:
    """How many times the sweep started `tunelab train` in a trial folder."""
    return sum(" train " in line for line in (trial / "trial.log").read_text().splitlines() if line.startswith("$"))


def test_a_killed_grid_resumes_to_exactly_four_trials(tmp_path: Path) -> None:
    out = tmp_path / "grid"
    config = sweep_config(tmp_path, out, max_steps=2)
    process = start_sweep(config, tmp_path / "first.log")
    order = []
    deadline = time.monotonic() + 900
    while True:  # kill the whole sweep once the third trial has written its first checkpoint
        assert process.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
        order = [line.split()[2].rstrip(":") for line in (tmp_path / "first.log").read_text().splitlines()
                 if line.startswith("tunelab: trial") and line.endswith("started")]
        if len(order) == 3 and (out / order[2] / "checkpoint-1" / "trainer_state.json").is_file():
            break
        assert time.monotonic() < deadline, "the third trial never wrote a checkpoint"
        time.sleep(0.5)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (out / "sweep_results.json").is_file() or len(json.loads(
        (out / "sweep_results.json").read_text())["trials"]) == 2

    result = tunelab("sweep", str(config), timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"trial {order[2]}: resuming (attempt 2)" in result.stderr
    summary = json.loads((out / "sweep_results.json").read_text())
    assert {row["trial"] for row in summary["trials"]} == NAMES
    assert all(row["status"] == "done" and row["steps"] == 2 for row in summary["trials"])
    assert {p.name for p in out.iterdir() if p.is_dir()} == NAMES
    assert [train_commands(out / name) for name in order] == [1, 1, 2]  # only the killed one started again
    resumed = json.loads((out / order[2] / "run_summary.json").read_text())
    assert resumed["resumed_from"].endswith("checkpoint-1")
    best = [row for row in summary["trials"] if row["best"]]
    assert len(best) == 1 and best[0]["objective"] == min(row["objective"] for row in summary["trials"])
    table = (out / "sweep_results.md").read_text()
    assert all(name in table for name in NAMES) and "(best)" in table
    assert (out / "sweep_losses.png").is_file() and (out / "sweep_objective.png").is_file()

    again = tunelab("sweep", str(config), timeout=300)  # finished trials never run again
    assert again.returncode == 0 and "started" not in again.stderr
    listing = tunelab("runs", str(out), "--json")
    assert listing.returncode == 0, listing.stderr[-2000:]
    assert {run["name"] for run in json.loads(listing.stdout)} == NAMES
    compared = tunelab("runs", "compare", *(str(out / name) for name in sorted(NAMES)), "--out",
                       str(tmp_path / "compare.png"), "--json")
    rows = json.loads(compared.stdout)
    assert [row["run"] for row in rows] == sorted(NAMES) and {"learning_rate", "lora_rank"} <= set(rows[0])


def test_two_sweep_processes_on_one_study_never_run_a_trial_twice(tmp_path: Path) -> None:
    out = tmp_path / "shared"
    config = sweep_config(tmp_path, out, max_steps=2)
    processes = [start_sweep(config, tmp_path / f"worker{i}.log") for i in range(2)]
    for process in processes:
        assert process.wait(timeout=900) == 0
    logs = [(tmp_path / f"worker{i}.log").read_text() for i in range(2)]
    started = [line.split()[2].rstrip(":") for text in logs for line in text.splitlines()
               if line.startswith("tunelab: trial") and line.endswith("started")]
    assert sorted(started) == sorted(NAMES)  # every trial started once, by one of the two
    assert all(train_commands(out / name) == 1 for name in NAMES)
    summary = json.loads((out / "sweep_results.json").read_text())
    assert len(summary["trials"]) == 4 and all(row["status"] == "done" for row in summary["trials"])
