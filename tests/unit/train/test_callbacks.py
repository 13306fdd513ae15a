"""StepLog writes run.jsonl lines; ProgressLine formats the live line."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from transformers import TrainerControl, TrainerState, TrainingArguments

from tests.conftest import Clock, patched_clock
from tunelab.train import callbacks
from tunelab.train.callbacks import ProgressLine, StepLog


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return patched_clock(monkeypatch, callbacks)


@pytest.fixture
def args(tmp_path: Path) -> TrainingArguments:
    return TrainingArguments(output_dir=str(tmp_path / "out"), use_cpu=True, report_to="none")


def state(step: int, max_steps: int = 10, tokens: int = 0, epoch: float = 0.0) -> TrainerState:
    result = TrainerState()
    result.global_step, result.max_steps, result.num_input_tokens_seen, result.epoch = step, max_steps, tokens, epoch
    return result


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_step_log_writes_one_line_per_logged_step(tmp_path: Path, clock: Clock, args: TrainingArguments) -> None:
    log = StepLog(tmp_path / "out" / "run.jsonl")
    log.on_train_begin(args, state(0, tokens=100), TrainerControl())
    clock.now += 4.0
    log.on_log(args, state(2, tokens=300, epoch=0.123456), TrainerControl(),
               logs={"loss": 2.5, "learning_rate": 1e-4, "grad_norm": 0.75})
    clock.now += 6.0
    log.on_log(args, state(4, tokens=500, epoch=0.25), TrainerControl(), logs={"eval_loss": 2.25, "eval_runtime": 1.0})
    first, second = lines(tmp_path / "out" / "run.jsonl")
    assert first == {"step": 2, "max_steps": 10, "epoch": 0.1235, "loss": 2.5, "lr": 1e-4, "grad_norm": 0.75,
                     "tokens_seen": 300, "tokens_per_s": 50.0, "elapsed_s": 4.0, "remaining_s": 16.0}
    assert second == {"step": 4, "max_steps": 10, "epoch": 0.25, "eval_loss": 2.25, "tokens_seen": 500,
                      "tokens_per_s": 40.0, "elapsed_s": 10.0, "remaining_s": 15.0}
    assert log.last == second


def test_step_log_skips_the_end_of_training_summary(tmp_path: Path, clock: Clock, args: TrainingArguments) -> None:
    path = tmp_path / "run.jsonl"
    log = StepLog(path)
    log.on_train_begin(args, state(0), TrainerControl())
    log.on_log(args, state(10), TrainerControl(), logs={"train_runtime": 3.0, "train_loss": 2.0})
    log.on_log(args, state(10), TrainerControl(), logs={})
    assert not path.exists() or path.read_text() == ""


def test_step_log_only_on_the_main_process(tmp_path: Path, clock: Clock, args: TrainingArguments) -> None:
    path = tmp_path / "run.jsonl"
    log = StepLog(path)
    log.on_train_begin(args, state(0), TrainerControl())
    other = state(1)
    other.is_world_process_zero = False
    log.on_log(args, other, TrainerControl(), logs={"loss": 1.0})
    assert not path.exists()


def test_progress_line(tmp_path: Path, clock: Clock, args: TrainingArguments) -> None:
    log = StepLog(tmp_path / "run.jsonl")
    log.on_train_begin(args, state(0), TrainerControl())
    progress = ProgressLine(log, stream=io.StringIO())
    clock.now += 30.0
    progress.on_log(args, state(3, max_steps=12, tokens=900, epoch=0.5), TrainerControl(),
                    logs={"loss": 1.23456, "learning_rate": 2e-5})
    assert progress.line(state(3, max_steps=12, tokens=900, epoch=0.5)) == (
        "step  3/12  epoch 0.50  loss 1.2346  lr 2.00e-05  30 tok/s  elapsed 0:30  ETA 1:30")
    progress.on_log(args, state(3, max_steps=12, tokens=900, epoch=0.5), TrainerControl(),
                    logs={"loss": 1.23456, "learning_rate": 2e-5, "grad_norm": 0.41237})
    assert progress.line(state(3, max_steps=12, tokens=900, epoch=0.5)) == (
        "step  3/12  epoch 0.50  loss 1.2346  lr 2.00e-05  grad 0.412  30 tok/s  elapsed 0:30  ETA 1:30")


def test_progress_line_prints_at_logging_steps_off_a_terminal(tmp_path: Path, clock: Clock,
                                                              args: TrainingArguments) -> None:
    """Written to a file or pipe: one plain line per logged step and per evaluation, nothing between them."""
    log = StepLog(tmp_path / "run.jsonl")
    log.on_train_begin(args, state(0), TrainerControl())
    stream = io.StringIO()
    progress = ProgressLine(log, stream=stream)
    clock.now += 30.0
    progress.on_step_end(args, state(3, max_steps=12, tokens=900, epoch=0.5), TrainerControl())
    assert stream.getvalue() == ""
    progress.on_log(args, state(3, max_steps=12, tokens=900, epoch=0.5), TrainerControl(),
                    logs={"loss": 1.23456, "learning_rate": 2e-5})
    progress.on_log(args, state(3, max_steps=12), TrainerControl(), logs={"eval_loss": 2.5, "eval_runtime": 1.0})
    progress.on_train_end(args, state(12, max_steps=12), TrainerControl())
    assert stream.getvalue() == ("step  3/12  epoch 0.50  loss 1.2346  lr 2.00e-05  30 tok/s  elapsed 0:30  ETA 1:30\n"
                                 "step 3: eval_loss 2.5000\n")
