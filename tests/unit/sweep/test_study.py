"""The sweep's study in SQLite, with each trial's processes replaced by a function of its values: every grid trial
runs once, a trial left by a killed sweep is resumed and nothing else reruns, failures are recorded and the sweep
goes on, a search stops when it only draws trials already run, and the median pruner stops bad trials."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tunelab.config.errors import ConfigError
from tunelab.sweep import study as study_module
from tunelab.sweep.ledger import Ledger
from tunelab.sweep.plan import load_plan
from tunelab.sweep.spec import SweepPlan
from tunelab.sweep.study import Sweep, run_sweep
from tunelab.sweep.trial import Interrupted, Outcome, TrialRun


class Crash(BaseException):
    """The sweep process dying in the middle of a trial (nothing below catches it)."""


def make_plan(tmp_path: Path, flags: dict[str, object]) -> SweepPlan:
    path = tmp_path / "sweep.yaml"
    path.write_text(f"model_name_or_path: tiny\ndataset: demo\noutput_dir: {tmp_path / 'sw'}\nval_size: 0.1\n")
    return load_plan(path, [], flags)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[[TrialRun], Outcome]], list[str]]:
    """Replace the trial's processes by a function; returns the list of trial folders it was called for."""
    def install(fake: Callable[[TrialRun], Outcome]) -> list[str]:
        called: list[str] = []

        def run(self: TrialRun) -> Outcome:
            called.append(self.folder.name)
            return fake(self)

        monkeypatch.setattr(TrialRun, "run", run)
        return called

    return install


def loss(run: TrialRun) -> Outcome:
    """A made-up objective: lower for a higher rate and rank."""
    return Outcome("complete", value=1.0 / (float(run.flat["learning_rate"]) * 1e4 * int(run.flat["lora_rank"])),
                   seconds=1.0)


GRID = {"grid": {"learning_rate": "1e-4,1e-3", "lora_rank": "2,4"}}
NAMES = ["lr1e-4_r2", "lr1e-4_r4", "lr1e-3_r2", "lr1e-3_r4"]


def test_a_grid_runs_every_trial_once_and_writes_the_table(tmp_path: Path, calls) -> None:
    called = calls(loss)
    summary = run_sweep(make_plan(tmp_path, GRID))
    assert called == NAMES
    rows = summary["trials"]
    assert [row["trial"] for row in rows] == NAMES and all(row["status"] == "done" for row in rows)
    assert [row["best"] for row in rows] == [False, False, False, True] and summary["best"] == "lr1e-3_r4"
    folder = tmp_path / "sw"
    table = (folder / "sweep_results.md").read_text()
    assert "| **lr1e-3_r4** (best) | 1e-3 | 4 | done | 0.025 |" in table
    assert (folder / "sweep_results.csv").read_text().splitlines()[0].startswith(
        "trial,learning_rate,lora_rank,status,objective,steps,duration_s")
    assert (folder / "sweep_objective.png").is_file()
    assert run_sweep(make_plan(tmp_path, GRID))["best"] == "lr1e-3_r4" and called == NAMES  # nothing reruns
    assert json.loads((folder / "sweep_results.json").read_text())["trials"] == rows


def test_a_killed_sweep_resumes_only_the_trial_it_left(tmp_path: Path, calls) -> None:
    def crash_on_third(run: TrialRun) -> Outcome:
        if run.folder.name == NAMES[2] and called.count(NAMES[2]) == 1:
            raise Crash()
        return loss(run)

    called = calls(crash_on_third)
    plan = make_plan(tmp_path, GRID)
    sweep = Sweep(plan)
    with pytest.raises(Crash):
        sweep.work(None)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    sweep.ledger.update(NAMES[2], pid=int(gone.stdout))  # the process that held it is gone
    summary = run_sweep(make_plan(tmp_path, GRID))
    assert called == NAMES[:3] + [NAMES[2], NAMES[3]]
    assert [row["trial"] for row in summary["trials"]] == NAMES
    assert [row["attempts"] for row in summary["trials"]] == [1, 1, 2, 1]
    assert all(row["status"] == "done" for row in summary["trials"])
    trials = optuna.load_study(study_name="sweep", storage=make_plan(tmp_path, GRID).storage_url()).trials
    assert [t.state for t in trials if t.user_attrs["name"] == NAMES[2]] == [TrialState.FAIL, TrialState.COMPLETE]
    assert not [t for t in trials if t.state == TrialState.RUNNING]  # no ghost of the killed attempt


def test_a_failed_trial_is_recorded_and_the_sweep_goes_on(tmp_path: Path, calls) -> None:
    def fail_rank_2(run: TrialRun) -> Outcome:
        if run.flat["lora_rank"] == 2 and run.flat["learning_rate"] == 1e-3:
            return Outcome("failed", error="out of memory\nmore lines")
        if run.flat["lora_rank"] == 4 and run.flat["learning_rate"] == 1e-4:
            raise RuntimeError("broken")
        return loss(run)

    calls(fail_rank_2)
    rows = run_sweep(make_plan(tmp_path, GRID))["trials"]
    assert [row["status"] for row in rows] == ["done", "failed", "failed", "done"]
    assert rows[2]["error"] == "out of memory" and rows[1]["error"] == "RuntimeError: broken"
    assert Ledger(make_plan(tmp_path, GRID).storage_url(), "sweep").get(NAMES[2]).error == "out of memory\nmore lines"


def test_an_interrupted_trial_is_resumed_next_time(tmp_path: Path, calls) -> None:
    def interrupt_first(run: TrialRun) -> Outcome:
        if len(called) == 1:
            raise Interrupted()
        return loss(run)

    called = calls(interrupt_first)
    rows = run_sweep(make_plan(tmp_path, GRID))["trials"]
    assert [row["status"] for row in rows] == ["interrupted"] and called == NAMES[:1]  # the sweep stopped
    rows = run_sweep(make_plan(tmp_path, GRID))["trials"]
    assert called == [NAMES[0]] + NAMES and all(row["status"] == "done" for row in rows)
    assert rows[0]["attempts"] == 2


def test_a_search_stops_when_it_only_draws_trials_already_run(tmp_path: Path, calls) -> None:
    called = calls(loss)
    summary = run_sweep(make_plan(tmp_path, {"search": "optuna", "sampler": "random", "trials": 6, "params": {
        "learning_rate": "cat:1e-4,1e-3", "lora_rank": "cat:2"}}))
    assert sorted(called) == ["lr1e-3_r2", "lr1e-4_r2"] and len(summary["trials"]) == 2
    assert (tmp_path / "sw" / "sweep_history.png").is_file()


def test_a_search_runs_its_trials(tmp_path: Path, calls) -> None:
    called = calls(loss)
    summary = run_sweep(make_plan(tmp_path, {"search": "optuna", "trials": 4, "seed": 1, "params": {
        "learning_rate": "log:1e-5:1e-3", "lora_rank": "int:2:64"}}))
    assert len(called) == len(set(called)) == 4 and len(summary["trials"]) == 4
    assert all(1e-5 <= row["learning_rate"] <= 1e-3 and 2 <= row["lora_rank"] <= 64 for row in summary["trials"])


def test_the_median_pruner_stops_a_trial_worse_than_the_earlier_ones(tmp_path: Path, calls) -> None:
    def report(run: TrialRun) -> Outcome:
        bad = run.flat["learning_rate"] == 1e-3
        for step in (2, 4, 6):
            if run.reporter(step, 5.0 if bad else 1.0):
                return Outcome("pruned")
        return Outcome("complete", value=5.0 if bad else 1.0)

    calls(report)
    rows = run_sweep(make_plan(tmp_path, {**GRID, "pruner": "median"}))["trials"]
    assert [row["status"] for row in rows] == ["done", "done", "pruned", "pruned"]


def test_parallel_workers_share_the_trials(tmp_path: Path, calls) -> None:
    threads: set[str] = set()

    def slow(run: TrialRun) -> Outcome:
        threads.add(threading.current_thread().name)
        time.sleep(0.2)
        return loss(run)

    called = calls(slow)
    rows = run_sweep(make_plan(tmp_path, {**GRID, "parallel": 2}))["trials"]
    assert sorted(called) == sorted(NAMES) and len(rows) == 4 and threads == {"sweep-0", "sweep-1"}


def test_each_worker_gets_its_own_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(study_module.env, "cuda_devices", lambda: ["0", "1", "2"])
    assert study_module.trial_devices(3) == ["0", "1", "2"]
    assert study_module.trial_devices(1) == [None]
    monkeypatch.setattr(study_module.env, "cuda_devices", lambda: [])
    assert study_module.trial_devices(2) == [None, None]


def test_a_study_keeps_its_objective(tmp_path: Path, calls) -> None:
    calls(loss)
    run_sweep(make_plan(tmp_path, GRID))
    with pytest.raises(ConfigError) as caught:
        run_sweep(make_plan(tmp_path, {**GRID, "direction": "maximize"}))
    assert [str(p) for p in caught.value.problems] == [
        f"sweep.direction: the study 'sweep' in sqlite:///{tmp_path / 'sw' / 'sweep.db'} was started to minimize; "
        "give a new study_name (or --study-name) for the new objective, or set the old one back"]
    assert run_sweep(make_plan(tmp_path, {**GRID, "direction": "maximize", "study_name": "up"}))["best"] == "lr1e-4_r2"


OPEN_STUDY = """
import sys, time
from pathlib import Path
from tunelab.sweep.plan import load_plan
from tunelab.sweep.study import Sweep
plan = load_plan(sys.argv[1], [], {"grid": {"lora_rank": "2,4"}})
while time.time() < float(sys.argv[2]):  # start together: the race to create the tables is the point
    time.sleep(0.01)
Sweep(plan).ledger.dispose()
"""


def test_workers_starting_together_on_a_new_database_all_open_it(tmp_path: Path) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(f"model_name_or_path: tiny\ndataset: demo\noutput_dir: {tmp_path / 'sw'}\nval_size: 0.1\n")
    script = tmp_path / "open.py"
    script.write_text(OPEN_STUDY)
    at = str(time.time() + 15)
    workers = [subprocess.Popen([sys.executable, str(script), str(path), at], stderr=subprocess.PIPE, text=True)
               for _ in range(4)]
    results = [(worker.wait(timeout=120), worker.stderr.read()) for worker in workers]
    assert all(code == 0 for code, _ in results), [err[-1500:] for _, err in results]
