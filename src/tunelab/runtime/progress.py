"""Progress on the console, through rich.progress: the one progress printer of training, eval and predict.

On a terminal a line is redrawn in place (rich.progress, refreshed when the figures change, no refresh thread);
where stderr is a file or a pipe (logs, CI, the web UI's subprocesses) plain lines are printed instead, so a log
holds one line per report and no control characters.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TextIO

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, ProgressColumn, TaskID, TextColumn

from tunelab.runtime.logging import console, info, is_main_process


def format_seconds(seconds: float) -> str:
    """'1:02:03' or '2:03'."""
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass(frozen=True)
class TrainingFields:
    """The figures of the training line at one step."""

    step: int
    total: int
    epoch: float
    loss: float | None
    lr: float | None
    grad_norm: float | None
    tokens_per_s: float
    elapsed: float
    remaining: float

    def text(self) -> str:
        """'step  3/12  epoch 0.50  loss 1.2346  lr 2.00e-05  grad 0.412  30 tok/s  elapsed 0:30  ETA 1:30'."""
        loss = f"{self.loss:.4f}" if self.loss is not None else "-"
        lr = f"{self.lr:.2e}" if self.lr is not None else "-"
        grad = f"  grad {self.grad_norm:.3f}" if self.grad_norm is not None else ""
        width = len(str(self.total))
        return (f"step {self.step:>{width}}/{self.total}  epoch {self.epoch:.2f}  loss {loss}  lr {lr}{grad}  "
                f"{self.tokens_per_s:,.0f} tok/s  elapsed {format_seconds(self.elapsed)}  "
                f"ETA {format_seconds(self.remaining)}")


class LiveLine:
    """A status line: redrawn in place on a terminal; elsewhere `show` is silent and `print` writes lines."""

    def __init__(self, stream: TextIO | None = None, columns: tuple[ProgressColumn, ...] = ()) -> None:
        self.console = console if stream is None else Console(file=stream, highlight=False, soft_wrap=True)
        self.live = self.console.is_terminal
        self.columns = columns or (TextColumn("{task.description}", markup=False),)
        self.progress: Progress | None = None
        self.task: TaskID | None = None

    def show(self, description: str, completed: float = 0, total: float | None = None) -> None:
        """Redraw the line (on a terminal; elsewhere nothing is shown between printed lines)."""
        if not self.live:
            return
        if self.progress is None or self.task is None:
            self.progress = Progress(*self.columns, console=self.console, auto_refresh=False)
            self.task = self.progress.add_task(description, total=total, completed=completed)
            self.progress.start()
        self.progress.update(self.task, description=description, completed=completed, total=total, refresh=True)

    def print(self, text: str) -> None:
        """A line of its own (above the live line, which stays at the bottom of a terminal)."""
        self.console.print(text)

    def close(self) -> None:
        """Stop redrawing; the last line stays on the screen and the next output starts on a fresh line."""
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
            self.task = None


class Counter:
    """A counted task (rows, questions, windows): a bar with done/total on a terminal; elsewhere an info line at
    most every `every` seconds, and at the end. Call it with (done, total) or (done, total, extra figures)."""

    def __init__(self, description: str, unit: str, every: float = 5.0, stream: TextIO | None = None) -> None:
        self.description, self.unit, self.every = description, unit, every
        self.started, self.last = time.time(), 0.0
        self.line = LiveLine(stream, (TextColumn("[bold cyan]tunelab[/]: {task.description}"), BarColumn()))

    def text(self, done: int, total: int, extra: str, elapsed: float) -> str:
        """'name: 3/10 rows, 12 tokens/s, elapsed 5s, ETA 12s'."""
        eta = elapsed / done * (total - done) if done else 0.0
        return (f"{self.description}: {done}/{total} {self.unit}" + (f", {extra}" if extra else "")
                + f", elapsed {elapsed:.0f}s, ETA {eta:.0f}s")

    def __call__(self, done: int, total: int, extra: str = "") -> None:
        if not is_main_process():
            return
        now = time.time()
        text = self.text(done, total, extra, now - self.started)
        if self.line.live:
            self.line.show(escape(text), completed=done, total=total)
            if done >= total:
                self.line.close()
            return
        if now - self.last < self.every and done < total:
            return
        self.last = now
        info(text)
