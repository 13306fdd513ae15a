"""A `tunelab` command as a subprocess (an argument list, never a shell string), its output read as it comes.

The command is detached from the UI: it runs in its own session (a Ctrl-C of the UI does not reach it) and writes
into a log file, which the UI reads. A closed browser tab (Gradio then closes the handler's generator) or a stopped
UI ends the reading, never the command: a pipe would have lost its reader and broken the command's next print.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tunelab.runtime import env
from tunelab.runtime.processes import PYTHON_FLAGS, interruptible_env

TAIL_LINES = 200
POLL_S = 0.2  # how often the log file is read while the command runs


def shown_command(argv: list[str]) -> str:
    """The command as a user would type it (`tunelab eval ...`), arguments with spaces quoted; `argv` as
    runtime.processes.tunelab_argv builds it."""
    import shlex

    after = 1 + len(PYTHON_FLAGS)
    words = ["tunelab", *argv[after:]] if tuple(argv[1:after]) == PYTHON_FLAGS else argv
    return shlex.join(words)


@dataclass
class CommandLog:
    """What a running command has printed so far (the last TAIL_LINES lines, and the line it is still writing, such
    as a progress bar) and, once done, its exit code."""

    argv: list[str]
    lines: list[str] = field(default_factory=list)
    current: str = ""
    code: int | None = None

    def add(self, line: str) -> None:
        """One more output line (progress lines rewritten with \\r keep only their last state)."""
        self.lines.append(line.rstrip("\r\n").split("\r")[-1])
        del self.lines[:-TAIL_LINES]

    def text(self) -> str:
        """The command line, then its output."""
        return "\n".join(["$ " + shown_command(self.argv)] + self.lines + ([self.current] if self.current else []))


def start_detached(argv: list[str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    """Start argv in its own session, in cwd, its output (stdout and stderr, unbuffered, no colours) to the log
    file; it runs on whatever happens to the UI, and a `tunelab` command stops on SIGINT even where the UI was
    started with SIGINT ignored (runtime.processes.allow_interrupt)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        return subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True,
                                env={**env.variables(), **interruptible_env(), "PYTHONUNBUFFERED": "1",
                                     "NO_COLOR": "1"})


def run_streamed(argv: list[str], log: Path, cwd: Path) -> Iterator[CommandLog]:
    """Start the command detached (start_detached, output to `log`) and yield its log each time it has printed
    more lines, and once it has ended (code set). A consumer that stops early stops the reading only: the command
    runs on and its whole output stays in the log file."""
    shown = CommandLog(argv)
    process = start_detached(argv, log, cwd)
    pending = b""
    with log.open("rb") as reader:
        while True:
            ended = process.poll() is not None  # before the read, so that the last read gets everything
            chunk = reader.read()
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                shown.add(line.decode("utf-8", errors="replace"))
            current = pending.decode("utf-8", errors="replace").split("\r")[-1]
            if lines or current != shown.current:
                shown.current = current
                yield shown
            if ended:
                break
            if not chunk:
                time.sleep(POLL_S)
    if pending:
        shown.add(pending.decode("utf-8", errors="replace"))
    shown.current = ""
    shown.code = process.returncode
    yield shown
