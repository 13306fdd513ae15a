"""Training callbacks: the live progress line and the run.jsonl step log."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from tunelab.runtime.logging import console
from tunelab.train.plots import eval_losses, eval_metrics


def format_seconds(seconds: float) -> str:
    """'1:02:03' or '2:03'."""
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class StepLog(TrainerCallback):
    """Writes one JSON line per logged step (and per evaluation) to run.jsonl; keeps the speed figures."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.start = 0.0
        self.train_start = 0.0
        self.tokens_at_start = 0
        self.last: dict[str, Any] = {}

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.train_start = time.time()
        self.tokens_at_start = state.num_input_tokens_seen
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def speed(self, state: Any) -> tuple[float, float, float]:
        """(elapsed s, tokens/s, remaining s) for the run so far."""
        elapsed = time.time() - self.train_start
        tokens = state.num_input_tokens_seen - self.tokens_at_start
        done = max(state.global_step, 1)
        remaining = elapsed / done * max(state.max_steps - state.global_step, 0)
        return elapsed, tokens / elapsed if elapsed > 0 else 0.0, remaining

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not logs or not state.is_world_process_zero:
            return
        elapsed, tokens_per_s, remaining = self.speed(state)
        record = {"step": state.global_step, "max_steps": state.max_steps, "epoch": round(state.epoch or 0.0, 4)}
        for key in ("loss", "learning_rate", "grad_norm"):
            if key in logs:
                record["lr" if key == "learning_rate" else key] = float(logs[key])
        record.update(eval_metrics(logs))
        if "trained_tokens" in logs:
            record["trained_tokens"] = int(logs["trained_tokens"])
        if "loss" not in record and not eval_losses(record):
            return  # the end-of-training summary; train_results.json holds it
        record.update({"tokens_seen": state.num_input_tokens_seen, "tokens_per_s": round(tokens_per_s, 1),
                       "elapsed_s": round(elapsed, 2), "remaining_s": round(remaining, 2)})
        self.last = record
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")


class ProgressLine(TrainerCallback):
    """A live line (step/total, loss, lr, tokens/s, elapsed, ETA): redrawn each step on a terminal,
    printed at each logging step otherwise."""

    def __init__(self, step_log: StepLog, stream: Any = None) -> None:
        self.step_log = step_log
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.loss: float | None = None
        self.lr: float | None = None
        self.grad_norm: float | None = None

    def line(self, state: Any) -> str:
        elapsed, tokens_per_s, remaining = self.step_log.speed(state)
        loss = f"{self.loss:.4f}" if self.loss is not None else "-"
        lr = f"{self.lr:.2e}" if self.lr is not None else "-"
        grad = f"  grad {self.grad_norm:.3f}" if self.grad_norm is not None else ""
        width = len(str(state.max_steps))
        return (f"step {state.global_step:>{width}}/{state.max_steps}  epoch {state.epoch or 0:.2f}  loss {loss}  "
                f"lr {lr}{grad}  {tokens_per_s:,.0f} tok/s  elapsed {format_seconds(elapsed)}  "
                f"ETA {format_seconds(remaining)}")

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.live and state.is_world_process_zero:
            self.stream.write("\r" + self.line(state) + "\033[K")
            self.stream.flush()

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not logs or not state.is_world_process_zero:
            return
        if "loss" in logs:
            self.loss, self.lr = float(logs["loss"]), float(logs.get("learning_rate", self.lr or 0.0))
            self.grad_norm = float(logs["grad_norm"]) if logs.get("grad_norm") is not None else None
            if not self.live:
                console.print(self.line(state))
        figures = eval_metrics(logs)
        if eval_losses(figures):
            self.end_line()
            console.print(f"step {state.global_step}: " + ", ".join(f"{k} {v:.4f}" for k, v in figures.items()))

    def end_line(self) -> None:
        """Finish the live line so that the next output starts on a fresh line."""
        if self.live:
            self.stream.write("\n")
            self.stream.flush()

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            self.end_line()
