"""Training callbacks: the live progress line and the run.jsonl step log."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TextIO

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from tunelab.runtime.progress import LiveLine, TrainingFields
from tunelab.train.plots import eval_losses, eval_metrics, stage_figures


class StepLog(TrainerCallback):
    """Writes one JSON line per logged step (and per evaluation) to run.jsonl; keeps the speed figures."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.start = 0.0
        self.train_start = 0.0
        self.tokens_at_start = 0
        self.last: dict[str, float | int] = {}

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       **kwargs: object) -> None:
        self.train_start = time.time()
        self.tokens_at_start = state.num_input_tokens_seen
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def speed(self, state: TrainerState) -> tuple[float, float, float]:
        """(elapsed s, tokens/s, remaining s) for the run so far."""
        elapsed = time.time() - self.train_start
        tokens = state.num_input_tokens_seen - self.tokens_at_start
        done = max(state.global_step, 1)
        remaining = elapsed / done * max(state.max_steps - state.global_step, 0)
        return elapsed, tokens / elapsed if elapsed > 0 else 0.0, remaining

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               logs: dict[str, float] | None = None, **kwargs: object) -> None:
        if not logs or not state.is_world_process_zero:
            return
        elapsed, tokens_per_s, remaining = self.speed(state)
        record = {"step": state.global_step, "max_steps": state.max_steps, "epoch": round(state.epoch or 0.0, 4)}
        for key in ("loss", "learning_rate", "grad_norm"):
            if key in logs:
                record["lr" if key == "learning_rate" else key] = float(logs[key])
        record.update(eval_metrics(logs))
        record.update(stage_figures(logs))
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
    """The live training line (runtime/progress.py): redrawn each step on a terminal, printed at each logging step
    otherwise; evaluation figures are printed as lines of their own."""

    def __init__(self, step_log: StepLog, stream: TextIO | None = None) -> None:
        self.step_log = step_log
        self.output = LiveLine(stream)
        self.loss: float | None = None
        self.lr: float | None = None
        self.grad_norm: float | None = None

    def fields(self, state: TrainerState) -> TrainingFields:
        """The figures of the line at this state."""
        elapsed, tokens_per_s, remaining = self.step_log.speed(state)
        return TrainingFields(step=state.global_step, total=state.max_steps, epoch=state.epoch or 0.0, loss=self.loss,
                              lr=self.lr, grad_norm=self.grad_norm, tokens_per_s=tokens_per_s, elapsed=elapsed,
                              remaining=remaining)

    def line(self, state: TrainerState) -> str:
        """'step  3/12  epoch 0.50  loss 1.2346  lr 2.00e-05  30 tok/s  elapsed 0:30  ETA 1:30'."""
        return self.fields(state).text()

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    **kwargs: object) -> None:
        if self.output.live and state.is_world_process_zero:
            self.output.show(self.line(state))

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               logs: dict[str, float] | None = None, **kwargs: object) -> None:
        if not logs or not state.is_world_process_zero:
            return
        if "loss" in logs:
            self.loss, self.lr = float(logs["loss"]), float(logs.get("learning_rate", self.lr or 0.0))
            self.grad_norm = float(logs["grad_norm"]) if logs.get("grad_norm") is not None else None
            if not self.output.live:
                self.output.print(self.line(state))
        figures = eval_metrics(logs)
        if eval_losses(figures):
            self.output.print(f"step {state.global_step}: " + ", ".join(f"{k} {v:.4f}" for k, v in figures.items()))

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                     **kwargs: object) -> None:
        if state.is_world_process_zero:
            self.output.close()
