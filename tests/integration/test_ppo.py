"""Stage ppo on SmolLM2 through the CLI: a reward model trained in the test for a couple of steps (stage rm), then
PPO against it with the example config: the figures logged and plotted, the policy saved with its value head, and
a run resumed from a checkpoint continuing with the same figures as the run that went on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .clirun import tunelab

PPO = "examples/ppo_lora.yaml"
SHORT = ["max_new_tokens=12", "per_device_train_batch_size=2", "ppo_epochs=2", "logging_steps=1",
         "learning_rate=1e-4", "warmup_ratio=0", "report_to=none"]


@pytest.fixture(scope="module")
def reward_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ppo") / "reward"
    result = tunelab("train", "examples/rm_lora.yaml", f"output_dir={out}", "max_steps=2", "val_size=0",
                     "eval_strategy=no", "cutoff_len=256", "report_to=none")
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def records(out: Path) -> list[dict[str, float]]:
    lines = (out / "run.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if "loss" in r]


def test_ppo_trains_against_the_reward_model_and_resumes(reward_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "ppo"
    result = tunelab("train", PPO, f"reward_model={reward_model}", f"output_dir={out}", "max_steps=2",
                     "save_steps=1", *SHORT)
    assert result.returncode == 0, result.stderr[-3000:]
    logged = records(out)
    assert [r["step"] for r in logged] == [1, 2]
    for key in ("reward", "kl", "loss/policy", "loss/value"):
        assert all(key in r for r in logged), key
        assert (out / f"training_{key.replace('/', '_')}.png").is_file()
    assert logged[0]["kl"] == pytest.approx(0.0, abs=1e-3)  # a new adapter starts as the reference
    assert (out / "adapter_model.safetensors").is_file() and (out / "value_head.safetensors").is_file()

    again = tmp_path / "resumed"
    result = tunelab("train", PPO, f"reward_model={reward_model}", f"output_dir={again}", "max_steps=2",
                     "save_steps=1", f"resume_from_checkpoint={out / 'checkpoint-1'}", *SHORT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming from" in result.stderr
    resumed = records(again)
    assert [r["step"] for r in resumed] == [2]
    for key in ("loss", "reward", "kl"):
        assert resumed[0][key] == pytest.approx(logged[1][key], rel=1e-3, abs=1e-4), key
