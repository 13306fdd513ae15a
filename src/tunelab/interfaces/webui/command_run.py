"""A `tunelab` command as a subprocess (an argument list, never a shell string), its output read as it comes."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tunelab.runtime.processes import PYTHON_FLAGS

TAIL_LINES = 200


def shown_command(argv: list[str]) -> str:
    """The command as a user would type it (`tunelab eval ...`), arguments with spaces quoted; `argv` as
    runtime.processes.tunelab_argv builds it."""
    import shlex

    after = 1 + len(PYTHON_FLAGS)
    words = ["tunelab", *argv[after:]] if tuple(argv[1:after]) == PYTHON_FLAGS else argv
    return shlex.join(words)


@dataclass
class CommandLog:
    """What a running command has printed so far (the last TAIL_LINES lines) and, once done, its exit code."""

    argv: list[str]
    lines: list[str] = field(default_factory=list)
    code: int | None = None

    def add(self, line: str) -> None:
        """One more output line (progress lines rewritten with \\r keep only their last state)."""
        self.lines.append(line.rstrip("\n").split("\r")[-1])
        del self.lines[:-TAIL_LINES]

    def text(self) -> str:
        """The command line, then its output."""
        return "\n".join(["$ " + shown_command(self.argv)] + self.lines)


def run_streamed(argv: list[str], cwd: Path | None = None) -> Iterator[CommandLog]:
    """Start the command and yield its log after each output line and once it has ended (code set). The process
    is left running if the consumer stops early (a closed browser tab does not stop an export)."""
    log = CommandLog(argv)
    process = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               encoding="utf-8", errors="replace", stdin=subprocess.DEVNULL)
    assert process.stdout is not None
    for line in process.stdout:
        log.add(line)
        yield log
    log.code = process.wait()
    yield log
