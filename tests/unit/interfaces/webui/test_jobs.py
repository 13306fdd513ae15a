"""Web UI jobs with a tiny fake command: start, one at a time, re-attach from a fresh UI, abort, exit states."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tunelab.interfaces.webui.jobs import (ABORT_GRACE_S, Job, JobError, Jobs, alive, error_text, log_tail, read_job,
                                           state)

# like a tunelab command (its CLI entry calls allow_interrupt first), so that abort's SIGINT reaches it even where
# pytest itself runs with SIGINT ignored (started in the background by a script)
STARTED = ("import sys, time\nfrom tunelab.runtime.processes import allow_interrupt\nallow_interrupt()\n"
           "print('step 1', flush=True)\n")
SLEEPER = [sys.executable, "-c", STARTED + "time.sleep(60)"]


def wait_for(check: Callable[[], bool], seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_start_attach_from_a_fresh_ui_and_abort(tmp_path: Path) -> None:
    jobs = Jobs(tmp_path)
    job = jobs.start(tmp_path / "saves" / "a", SLEEPER)
    try:
        assert alive(job) and state(job) == "running"
        wait_for(lambda: "step 1" in log_tail(job))
        with pytest.raises(JobError, match="already active: .*saves/a"):
            jobs.start(tmp_path / "saves" / "b", SLEEPER)
        restarted = Jobs(tmp_path)  # a UI started again in the same working folder
        found = restarted.active()
        assert found is not None and found.pid == job.pid and found.folder == str(tmp_path / "saves" / "a")
        restarted.abort(found)
        wait_for(lambda: not alive(found))
        assert state(read_job(tmp_path / "saves" / "a")) == "aborted"
        assert jobs.active() is None
    finally:
        if alive(job):
            import os
            import signal
            os.killpg(job.pid, signal.SIGKILL)


# a tunelab command as the UI starts it: its CLI entry calls allow_interrupt first
INTERRUPTIBLE_SLEEPER = [sys.executable, "-c", STARTED + "try:\n    time.sleep(60)\n"
                         "except KeyboardInterrupt:\n    print('stopped cleanly', flush=True)\n    sys.exit(130)"]


def test_abort_stops_a_run_cleanly_when_the_ui_was_started_with_sigint_ignored(tmp_path: Path) -> None:
    import os
    import signal

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as `tunelab webui &` in a script, or nohup
    try:
        jobs = Jobs(tmp_path)
        job = jobs.start(tmp_path / "a", INTERRUPTIBLE_SLEEPER)
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        wait_for(lambda: "step 1" in log_tail(job))
        jobs.abort(job)
        wait_for(lambda: not alive(jobs.reap(job)), seconds=ABORT_GRACE_S / 2)  # the SIGINT, not the kill
        assert "stopped cleanly" in log_tail(job) and jobs.find(tmp_path / "a").returncode == 130
    finally:
        if alive(job):
            os.killpg(job.pid, signal.SIGKILL)


def test_a_failed_run_shows_its_error_text_and_a_finished_one_its_state(tmp_path: Path) -> None:
    jobs = Jobs(tmp_path)
    failing = [sys.executable, "-c", "import sys\nprint('loading')\nprint('tunelab: error: dataset x: row 3 is bad',"
               " file=sys.stderr)\nsys.exit(1)"]
    job = jobs.start(tmp_path / "f", failing)
    wait_for(lambda: state(jobs.find(tmp_path / "f")) != "running")
    found = jobs.find(tmp_path / "f")
    assert found.returncode == 1 and state(found) == "failed"
    assert error_text(found) == "tunelab: error: dataset x: row 3 is bad"
    ok = jobs.start(tmp_path / "g", [sys.executable, "-c", "print('done')"])
    wait_for(lambda: state(jobs.find(tmp_path / "g")) != "running")
    assert state(jobs.find(tmp_path / "g")) == "finished" and ok.pid != job.pid
    assert [Path(j.folder).name for j in jobs.all()] == ["g", "f"]


def test_a_reused_pid_is_not_taken_for_the_job(tmp_path: Path) -> None:
    import os

    me = Job(folder=str(tmp_path), command=["x"], pid=os.getpid(), started=1.0)  # this process, other start time
    assert not alive(me)
    assert state(me) == "failed"  # ended without a summary or exit code: the log is what is left to read
