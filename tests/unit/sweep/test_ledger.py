"""The ledger: one holder per trial name, across threads and processes; a trial left by a dead worker is taken
over by exactly one; a finished trial never again."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from tunelab.sweep import ledger as ledger_module
from tunelab.sweep.ledger import Ledger


def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'sweep.db'}"


def test_a_name_is_taken_once_among_many_threads(tmp_path: Path) -> None:
    Ledger(url(tmp_path), "s")  # create the table once, before the race
    won: list[str] = []

    def take(name: str) -> None:
        if Ledger(url(tmp_path), "s").take(name, {"lora_rank": 4}) is not None:
            won.append(name)

    threads = [threading.Thread(target=take, args=(f"t{i % 3}",)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(won) == ["t0", "t1", "t2"]


def test_studies_do_not_share_names(tmp_path: Path) -> None:
    assert Ledger(url(tmp_path), "a").take("t", {}) is not None
    assert Ledger(url(tmp_path), "b").take("t", {}) is not None


def test_a_dead_workers_trial_is_resumed_by_exactly_one(tmp_path: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    ledger = Ledger(url(tmp_path), "s")
    assert ledger.take("t", {"learning_rate": 1e-4}) is not None
    assert ledger.take("t", {"learning_rate": 1e-4}) is None  # held by a live worker (this one)
    ledger.update("t", pid=int(gone.stdout))  # as if a process now ended had held it
    assert ledger.stale_names() == ["t"]
    takers = [Ledger(url(tmp_path), "s").take("t", {"learning_rate": 1e-4}) for _ in range(3)]
    assert sum(t is not None for t in takers) == 1
    assert ledger.get("t").attempts == 2 and ledger.get("t").values == {"learning_rate": 1e-4}
    assert ledger.stale_names() == []


def test_a_silent_worker_on_another_host_is_taken_over_after_the_grace(tmp_path: Path, monkeypatch) -> None:
    ledger = Ledger(url(tmp_path), "s")
    ledger.take("t", {})
    ledger.update("t", host="elsewhere", beat=1000.0)
    monkeypatch.setattr(ledger_module.time, "time", lambda: 1000.0 + ledger_module.GRACE_S - 1)
    assert ledger.stale_names() == []
    monkeypatch.setattr(ledger_module.time, "time", lambda: 1000.0 + ledger_module.GRACE_S + 1)
    assert ledger.stale_names() == ["t"]


def test_finished_trials_are_never_taken_again(tmp_path: Path) -> None:
    ledger = Ledger(url(tmp_path), "s")
    for name, state in (("a", "complete"), ("b", "failed"), ("c", "pruned"), ("d", "interrupted")):
        ledger.take(name, {})
        ledger.finish(name, state, value=1.0 if state == "complete" else None, error="x" if state == "failed" else None)
    assert [ledger.take(name, {}) is not None for name in "abcd"] == [False, False, False, True]
    entries = {e.name: e for e in ledger.entries()}
    assert entries["a"].value == 1.0 and entries["b"].error == "x" and entries["d"].state == "running"


def test_a_trial_process_left_by_a_killed_sweep_is_stopped_before_the_trial_resumes(tmp_path: Path) -> None:
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "tunelab", "train"])
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        ledger = Ledger(url(tmp_path), "s")
        ledger.take("t", {})
        ledger.update("t", child=other.pid)
        assert not ledger_module.end_orphan(ledger.get("t")) and other.poll() is None  # not a tunelab process
        ledger.update("t", child=orphan.pid)
        assert ledger_module.end_orphan(ledger.get("t"))
        assert orphan.wait(timeout=30) is not None
    finally:
        for process in (orphan, other):
            process.kill()
            process.wait()
