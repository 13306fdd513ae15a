"""Training runs started by the web UI: `tunelab train` processes that outlive the browser and the UI itself.

A job is a process in its own session (a Ctrl-C of the UI does not reach it), its output going to a log file in
the run folder, and a small JSON file there saying what was started, when, and how it ended. A ledger in the
working folder lists the run folders the UI started, so a restarted UI finds the running and finished runs again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from tunelab.interfaces.webui.command_run import start_detached
from tunelab.runtime import paths

JOB_FILE = "webui_job.json"
LOG_FILE = "webui_train.log"
YAML_FILE = "webui_train.yaml"
LEDGER = Path(".tunelab-webui") / "jobs.json"
ABORT_GRACE_S = 20.0  # after SIGINT, how long a run may take to stop before it is killed
LEDGER_SIZE = 200


class JobError(Exception):
    """A job that cannot start (another one is running) or cannot be found."""


@dataclass
class Job:
    """One started process: where it runs, what it runs, and what is known about how it ended."""

    folder: str
    command: list[str]
    pid: int
    started: float  # the process's creation time, so a reused pid is not taken for this job
    aborted: bool = False
    returncode: int | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def log(self) -> Path:
        """The process's output (stdout and stderr)."""
        return Path(self.folder) / LOG_FILE


def read_job(folder: Path) -> Job | None:
    """The job file of a run folder, None when there is none (or it is unreadable)."""
    try:
        return Job(**json.loads((Path(folder) / JOB_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def write_job(job: Job) -> None:
    """Write the job file atomically (a poll never reads half of it)."""
    path = Path(job.folder) / JOB_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(job), indent=2), encoding="utf-8")
    tmp.replace(path)


def alive(job: Job) -> bool:
    """Whether the job's process still runs (the same process: its creation time matches)."""
    try:
        process = psutil.Process(job.pid)
        return abs(process.create_time() - job.started) < 1.0 and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def state(job: Job) -> str:
    """running, finished, aborted or failed (a run that ended without run_summary.json or with a bad exit code)."""
    if alive(job):
        return "running"
    if job.aborted:
        return "aborted"
    if job.returncode not in (None, 0):
        return "failed"
    return "finished" if (Path(job.folder) / paths.SUMMARY).is_file() or job.returncode == 0 else "failed"


def log_tail(job: Job, lines: int = 200) -> str:
    """The last lines of the job's output; progress bars' carriage returns keep only their last state."""
    try:
        text = job.log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    shown = [line.rsplit("\r", 1)[-1] for line in text.splitlines()]
    return "\n".join(shown[-lines:])


def error_text(job: Job) -> str:
    """What a failed run said last: from its last `tunelab:` or Traceback line to the end of the log."""
    tail = log_tail(job, 60).splitlines()
    for index in range(len(tail) - 1, -1, -1):
        if tail[index].startswith(("tunelab:", "Traceback")):
            return "\n".join(tail[index:])
    return "\n".join(tail[-15:])


class Jobs:
    """The UI's runs: start one at a time, find them again after a restart, abort."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir).resolve()
        self.children: dict[int, subprocess.Popen[bytes]] = {}
        self.lock = threading.Lock()

    def ledger(self) -> list[str]:
        """The run folders this working folder's UI started, oldest first."""
        try:
            folders = json.loads((self.workdir / LEDGER).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        return [str(f) for f in folders] if isinstance(folders, list) else []

    def remember(self, folder: Path) -> None:
        """Add a run folder to the ledger (kept to its last LEDGER_SIZE entries)."""
        folders = [f for f in self.ledger() if f != str(folder)] + [str(folder)]
        path = self.workdir / LEDGER
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(folders[-LEDGER_SIZE:], indent=1), encoding="utf-8")

    def reap(self, job: Job) -> Job:
        """Record the exit code of a job this UI started once its process ended."""
        child = self.children.get(job.pid)
        if child is not None and child.poll() is not None:
            self.children.pop(job.pid, None)
            job.returncode = child.returncode
            write_job(job)
        return job

    def find(self, folder: Path) -> Job | None:
        """The job of a run folder, its exit code recorded when it just ended."""
        job = read_job(folder)
        return self.reap(job) if job else None

    def all(self) -> list[Job]:
        """Every job of the ledger whose folder still holds it, newest first."""
        jobs = [self.find(Path(folder)) for folder in reversed(self.ledger())]
        return [job for job in jobs if job is not None]

    def active(self) -> Job | None:
        """The job still running, if any."""
        return next((job for job in self.all() if alive(job)), None)

    def check_idle(self) -> None:
        """Raise JobError naming the active run, if one is running."""
        running = self.active()
        if running is not None:
            raise JobError(f"a run is already active: {running.folder} (pid {running.pid}); abort it or wait for it "
                           "to finish")

    def start(self, folder: Path, argv: list[str], extra: dict[str, str] | None = None) -> Job:
        """Start argv in its own session, output to folder's log; refused while another job runs."""
        with self.lock:
            self.check_idle()
            folder = Path(folder)
            folder.mkdir(parents=True, exist_ok=True)
            child = start_detached(argv, folder / LOG_FILE, self.workdir)
            self.children[child.pid] = child
            job = Job(folder=str(folder), command=list(argv), pid=child.pid,
                      started=psutil.Process(child.pid).create_time(), extra=dict(extra or {}))
            write_job(job)
            self.remember(folder)
            return job

    def abort(self, job: Job) -> None:
        """Ask the run to stop (SIGINT to its process group, as Ctrl-C would); kill it if it has not in time."""
        if not alive(job):
            return
        job.aborted = True
        write_job(job)
        os.killpg(job.pid, signal.SIGINT)
        threading.Thread(target=self.kill_later, args=(job,), daemon=True).start()

    def kill_later(self, job: Job) -> None:
        """Kill the job's process group if it is still running ABORT_GRACE_S after the SIGINT."""
        deadline = time.monotonic() + ABORT_GRACE_S
        while time.monotonic() < deadline:
            if not alive(self.reap(job)):
                return
            time.sleep(0.2)
        if alive(job):
            os.killpg(job.pid, signal.SIGKILL)
