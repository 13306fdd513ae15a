"""A run killed with SIGKILL (in a training step, or half-way through writing a checkpoint) and started again with
the same command resumes from the last complete checkpoint and ends with the same weights and loss log as a run
never interrupted. The kill is real: a sitecustomize module in the child process sends SIGKILL to itself at the
chosen point (the moment is exact, so the test never races the run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_dataset

from .clirun import REPO

KILLER = '''
import os, signal
where, step = os.environ["TUNELAB_TEST_KILL"].split(":")
step = int(step)
from transformers import Trainer

def killing(name):
    original = getattr(Trainer, name)
    def wrapped(self, *args, **kwargs):
        if self.state.global_step == step:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, *args, **kwargs)
    setattr(Trainer, name, wrapped)

# in a training step, or after a checkpoint's weights and optimizer are written but before its trainer_state.json
killing({"step": "training_step", "save": "_save_rng_state"}[where])
'''

ROWS = [{"instruction": f"Question number {i}: what is {i} plus {i}?", "output": f"It is {2 * i}, of course."}
        for i in range(40)]


def config_file(tmp_path: Path, model_dir: Path, out: Path) -> Path:
    data = tmp_path / "data"
    write_dataset(data, ROWS, name="qa", file_name="qa.json")
    path = tmp_path / f"{out.name}.yaml"
    path.write_text("\n".join([
        f"model_name_or_path: {model_dir}", f"dataset_dir: {data}", "dataset: qa", f"output_dir: {out}",
        "lora_rank: 4", "lora_dropout: 0.1", "per_device_train_batch_size: 2", "gradient_accumulation_steps: 2",
        "learning_rate: 1.0e-3", "max_steps: 12", "save_steps: 4", "logging_steps: 1", "warmup_steps: 2",
        "val_size: 4", "eval_strategy: steps", "eval_steps: 3", "report_to: none", ""]), encoding="utf-8")
    return path


def train(config: Path, kill: str | None = None, hook_dir: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}
    if kill:
        env["TUNELAB_TEST_KILL"] = kill
        env["PYTHONPATH"] = os.pathsep.join([str(hook_dir), str(REPO), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "tunelab", "train", str(config)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def outcome(out: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from safetensors.torch import load_file

    weights = load_file(out / "adapter_model.safetensors")
    log = [json.loads(line) for line in (out / "run.jsonl").read_text().splitlines()]
    return weights, log


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> tuple[dict, list]:
    tmp = tmp_path_factory.mktemp("reference")
    result = train(config_file(tmp, tiny_model_dir, tmp / "ref"))
    assert result.returncode == 0, result.stderr[-3000:]
    return outcome(tmp / "ref")


def test_a_killed_run_resumes_to_the_same_result(tmp_path: Path, tiny_model_dir: Path, reference: Any) -> None:
    """Killed half-way through writing checkpoint-8, started again (resumes from checkpoint-4), killed again in
    step 10, started again (resumes from checkpoint-8): the same weights and log as the uninterrupted run."""
    import torch

    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(KILLER)
    out = tmp_path / "run"
    config = config_file(tmp_path, tiny_model_dir, out)
    killed = train(config, kill="save:8", hook_dir=hooks)
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert (out / "checkpoint-8" / "optimizer.pt").exists()  # half-written: no trainer_state.json
    assert not (out / "checkpoint-8" / "trainer_state.json").exists()
    killed = train(config, kill="step:10", hook_dir=hooks)
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert f"resuming from {out / 'checkpoint-4'}" in killed.stderr
    assert "removed checkpoint-8: no trainer_state.json (cut short while being written)" in killed.stderr
    resumed = train(config)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {out / 'checkpoint-8'}" in resumed.stderr
    weights, log = outcome(out)
    ref_weights, ref_log = reference
    assert weights.keys() == ref_weights.keys()
    for name, value in weights.items():
        torch.testing.assert_close(value, ref_weights[name], rtol=1e-5, atol=1e-6)
    assert [r["step"] for r in log] == [r["step"] for r in ref_log]
    for record, ref in zip(log, ref_log):
        for key in ("loss", "eval_loss", "grad_norm", "lr", "tokens_seen", "trained_tokens"):
            if key in ref:
                assert record[key] == pytest.approx(ref[key], rel=1e-5, abs=1e-7), (record["step"], key)
    summary = json.loads((out / "run_summary.json").read_text())
    assert summary["resumed_from"] == str(out / "checkpoint-8") and summary["steps"] == 12
