"""Stages dpo and kto through the real CLI: the shipped examples on SmolLM2 (a few steps, plots written), full
fine-tuning with a frozen-copy reference, a killed dpo run resuming exactly, and two processes (gloo) against one.
The last three run on the tiny in-process Llama, which takes seconds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_dataset

from .clirun import train_two_and_one, tunelab
from .test_resume import KILLER, train

PAIRS = [{"instruction": f"Question {i}: what is {i} plus {i}?", "chosen": f"It is {2 * i}." + " Sure." * (i % 3),
          "rejected": f"It is {2 * i + 1}, I think" + " maybe" * (i % 4)} for i in range(24)]
RANKING = {"ranking": True, "columns": {"prompt": "instruction", "chosen": "chosen", "rejected": "rejected"}}


def records(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "run.jsonl").read_text(encoding="utf-8").splitlines()]


def losses(out: Path) -> list[float]:
    return [r["loss"] for r in records(out) if "loss" in r]


def test_the_dpo_example_trains_and_draws_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "dpo"
    result = tunelab("train", "examples/dpo_lora.yaml", f"output_dir={out}", "max_steps=2", "eval_steps=2",
                     "per_device_train_batch_size=2", "gradient_accumulation_steps=1", "val_size=2",
                     timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "reference model: the same weights with the LoRA adapter disabled" in result.stderr
    logged = [r for r in records(out) if "loss" in r]
    assert len(logged) == 2 and logged[0]["loss"] == pytest.approx(0.6931, abs=1e-3)  # policy == reference
    assert abs(logged[0]["rewards/margins"]) < 1e-3 and "trained_tokens" in logged[0]
    assert any("eval_rewards/accuracies" in r for r in records(out))
    for name in ("rewards_chosen", "rewards_rejected", "rewards_accuracies", "rewards_margins", "logps_chosen",
                 "logps_rejected"):
        assert (out / f"training_{name}.png").is_file(), name
    assert (out / "adapter_model.safetensors").is_file()


def test_the_kto_example_trains(tmp_path: Path) -> None:
    out = tmp_path / "kto"
    result = tunelab("train", "examples/kto_lora.yaml", f"output_dir={out}", "max_steps=2", "eval_strategy=no",
                     "per_device_train_batch_size=4", "gradient_accumulation_steps=1", "val_size=0",
                     timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    logged = [r for r in records(out) if "loss" in r]
    assert len(logged) == 2 and all("kl" in r and "rewards/margins" in r for r in logged)
    assert (out / "training_kl.png").is_file()


def tiny_config(folder: Path, model_dir: Path, out: Path, *extra: str) -> Path:
    data = folder / "data"
    write_dataset(data, PAIRS, name="pairs", file_name="pairs.json", entry=RANKING)
    path = folder / f"{out.name}.yaml"
    lines = [f"model_name_or_path: {model_dir}", f"dataset_dir: {data}", "dataset: pairs", "stage: dpo",
             f"output_dir: {out}", "lora_rank: 4", "per_device_train_batch_size: 2", "gradient_accumulation_steps: 2",
             "learning_rate: 1.0e-2", "logging_steps: 1", "seed: 7", "report_to: none", *extra]
    keys = {line.split(":")[0]: line for line in lines}  # a key in extra replaces the default (YAML refuses twice)
    path.write_text("\n".join(keys.values()) + "\n", encoding="utf-8")
    return path


def test_full_fine_tuning_with_a_frozen_copy_reference(tmp_path: Path, tiny_model_dir: Path) -> None:
    out = tmp_path / "full"
    config = tiny_config(tmp_path, tiny_model_dir, out, "finetuning_type: full", "max_steps: 3",
                         "pref_loss: hinge", "pref_ftx: 0.5", "bf16: true")
    result = tunelab("train", str(config))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "reference model: a frozen copy of the model as it starts training" in result.stderr
    assert "float32 masters in the optimizer" in result.stderr  # bf16 working weights, as sft trains them
    assert len(losses(out)) == 3 and (out / "model.safetensors").is_file()


def test_a_killed_dpo_run_resumes_to_the_same_losses(tmp_path: Path, tiny_model_dir: Path) -> None:
    common = ("max_steps: 8", "save_steps: 4", "val_size: 4", "eval_strategy: steps", "eval_steps: 3",
              "pref_bco_weight: 0.3", "ld_alpha: 0.5")
    reference = tmp_path / "straight"
    assert train(tiny_config(tmp_path, tiny_model_dir, reference, *common)).returncode == 0
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(KILLER)
    out = tmp_path / "killed"
    config = tiny_config(tmp_path, tiny_model_dir, out, *common)
    assert train(config, kill="step:6", hook_dir=hooks).returncode == -9
    resumed = train(config)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {out / 'checkpoint-4'}" in resumed.stderr
    ours, theirs = records(out), records(reference)
    assert [r["step"] for r in ours] == [r["step"] for r in theirs]
    for record, ref in zip(ours, theirs):
        for key in ("loss", "eval_loss", "rewards/margins", "eval_rewards/margins", "trained_tokens"):
            if key in ref:
                assert record[key] == pytest.approx(ref[key], rel=1e-5, abs=1e-6), (record["step"], key)


def test_two_processes_match_one(tmp_path: Path, tiny_model_dir: Path) -> None:
    config = str(tiny_config(tmp_path, tiny_model_dir, tmp_path / "dp", "max_steps: 4", "disable_shuffling: true",
                             "save_strategy: \"no\"", "gradient_accumulation_steps: 1", "pref_loss: ipo",
                             "pref_bco_weight: 0.2"))
    two, one = tmp_path / "two", tmp_path / "one"
    results = train_two_and_one(config, two, one)
    assert all(r.returncode == 0 for r in results), results[0].stderr[-3000:] + results[1].stderr[-3000:]
    assert losses(two) == pytest.approx(losses(one), rel=1e-4)
    margins = [[r["rewards/margins"] for r in records(path) if "loss" in r] for path in (two, one)]
    assert margins[0] == pytest.approx(margins[1], rel=1e-4, abs=1e-6)
