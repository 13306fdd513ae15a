"""One trial's pieces: the eval losses read from run.jsonl as training appends them, the commands run and stopped
(pruned, interrupted), the error a failed command printed, the objective read from the files, the eval config."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import pytest

from tunelab.sweep.trial import Interrupted, LogReader, eval_flat, headline, last_error, objective, run_command


def test_eval_losses_are_read_as_they_arrive(tmp_path: Path) -> None:
    log = tmp_path / "run.jsonl"
    reader = LogReader(log, "eval_loss")
    assert reader.new_losses() == []
    log.write_text('{"step": 1, "loss": 3.0}\n{"step": 2, "eval_loss": 2.5}\n{"step": 3, "eval_lo')
    assert reader.new_losses() == [(2, 2.5)]
    with log.open("a") as handle:
        handle.write('ss": 2.0}\nnot json\n{"step": 4, "eval_loss": 1.5}\n')
    assert reader.new_losses() == [(3, 2.0), (4, 1.5)]
    assert reader.new_losses() == []


def test_a_command_runs_and_its_output_goes_to_the_log(tmp_path: Path) -> None:
    log = tmp_path / "trial.log"
    pids: list[int] = []
    code = run_command([sys.executable, "-c", "print('hello'); raise SystemExit(3)"], log, None, threading.Event(),
                       started=pids.append)
    assert code == 3 and "hello" in log.read_text() and len(pids) == 1


def test_a_pruned_command_is_stopped(tmp_path: Path) -> None:
    started = time.monotonic()
    code = run_command([sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "log", None,
                       threading.Event(), watch=lambda: time.monotonic() - started > 1)
    assert code is None and time.monotonic() - started < 30


def test_a_stopping_sweep_interrupts_the_command(tmp_path: Path) -> None:
    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()
    with pytest.raises(Interrupted):
        run_command([sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "log", None, stop)
    with pytest.raises(Interrupted):  # Ctrl-C reached the child first: it ended with 130
        run_command([sys.executable, "-c", "raise SystemExit(130)"], tmp_path / "log", None, threading.Event())


def test_the_error_a_failed_command_printed(tmp_path: Path) -> None:
    log = tmp_path / "trial.log"
    log.write_text("$ python -m tunelab train x.yaml\ntunelab: float32\ntunelab: the config x.yaml has 2 problems\n"
                   "  lora_rank: input should be greater than 0 (got 0)\n  bf16: bad\n")
    assert last_error(log) == ("the config x.yaml has 2 problems\n  lora_rank: input should be greater than 0 (got 0)"
                               "\n  bf16: bad")
    assert headline(last_error(log)) == "the config x.yaml has 2 problems"
    log.write_text("Traceback (most recent call last):\n  File x\nRuntimeError: CUDA out of memory\n")
    assert last_error(log).endswith("RuntimeError: CUDA out of memory")


def test_the_objective_from_the_trials_files(tmp_path: Path) -> None:
    (tmp_path / "run_summary.json").write_text(json.dumps({"final_eval": {"eval_loss": 1.25}}))
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "eval_results.json").write_text(json.dumps(
        {"results": {"model": {"length": {"metrics": {"mae": 4.5, "within@5": 60.0}}}}}))
    assert objective(tmp_path, "eval_loss") == 1.25
    assert objective(tmp_path, "length:within@5") == 60.0
    with pytest.raises(ValueError, match="length:accuracy is not in .* the task's metrics are mae, within@5"):
        objective(tmp_path, "length:accuracy")
    with pytest.raises(ValueError, match="eval_other_loss is not in"):
        objective(tmp_path, "eval_other_loss")


def test_the_eval_config_of_a_trained_trial(tmp_path: Path) -> None:
    flat = {"model_name_or_path": "base", "finetuning_type": "lora", "output_dir": str(tmp_path)}
    assert eval_flat(flat, tmp_path) == {**flat, "adapter_name_or_path": str(tmp_path),
                                         "output_dir": str(tmp_path / "eval")}
    full = eval_flat({**flat, "finetuning_type": "full", "adapter_name_or_path": "x"}, tmp_path)
    assert full["model_name_or_path"] == str(tmp_path) and "adapter_name_or_path" not in full


def test_a_trial_runs_train_then_eval_as_unbuffered_tunelab_commands(tmp_path: Path, monkeypatch) -> None:
    from tunelab.sweep import trial

    commands: list[list[str]] = []

    def fake_run(argv: list[str], *args: object, **kwargs: object) -> int:
        commands.append(argv)
        if argv[-2] == "eval":
            (tmp_path / "eval").mkdir()
            (tmp_path / "eval" / "eval_results.json").write_text(json.dumps(
                {"results": {"model": {"length": {"metrics": {"mae": 4.5}}}}}))
        return 0

    monkeypatch.setattr(trial, "run_command", fake_run)
    flat = {"model_name_or_path": "base", "eval_tasks": [{"name": "length"}], "output_dir": str(tmp_path)}
    outcome = trial.TrialRun(tmp_path, flat, "length:mae", None, threading.Event()).run()
    assert outcome.state == "complete" and outcome.value == 4.5
    assert commands == [[sys.executable, "-u", "-m", "tunelab", "train", str(tmp_path / "trial.yaml")],
                        [sys.executable, "-u", "-m", "tunelab", "eval", str(tmp_path / "eval.yaml")]]
