"""Whole ppo runs on the tiny Llama: LoRA policy, LoRA reward adapter, logged figures, plots, checkpoints, resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tunelab.config.load import build
from tunelab.train.plots import read_log
from tunelab.train.run import train

QA = [{"instruction": f"Question {i}?", "output": f"Answer {i}."} for i in range(8)]


def ppo_config(tmp_path: Path, tiny_model_dir: Path, data_dir: Path, reward: Path, **flat: Any) -> Any:
    return build({"stage": "ppo", "model_name_or_path": str(tiny_model_dir), "dataset_dir": str(data_dir),
                  "dataset": "qa", "output_dir": str(tmp_path / "out"), "max_steps": 3,
                  "per_device_train_batch_size": 2, "learning_rate": 1e-3, "logging_steps": 1, "lora_rank": 4,
                  "report_to": "none", "plot_loss": True, "reward_model": str(reward), "max_new_tokens": 6,
                  "ppo_epochs": 2, "save_steps": 2, **flat})


def test_ppo_lora_trains_logs_and_plots(tmp_path: Path, tiny_model_dir: Path, make_dataset: Any, data_dir: Path,
                                        reward_adapter_dir: Path) -> None:
    make_dataset(QA, name="qa", file_name="qa.json")
    metrics = train(ppo_config(tmp_path, tiny_model_dir, data_dir, reward_adapter_dir))
    out = tmp_path / "out"
    records = [r for r in read_log(out / "run.jsonl") if "loss" in r]
    assert metrics["global_step"] == 3 and len(records) == 3
    for key in ("reward", "kl", "loss/policy", "loss/value"):
        assert all(key in r for r in records), key
        assert (out / f"training_{key.replace('/', '_')}.png").exists()
    assert (out / "adapter_model.safetensors").exists() and (out / "value_head.safetensors").exists()
    assert not (out / "reward").exists()  # the reward adapter is never saved with the policy
    assert (out / "checkpoint-2" / "value_head.safetensors").exists()
    state = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())
    assert "PpoState" in state["stateful_callbacks"]
    assert metrics["trained_tokens"] > 0


def test_a_resumed_ppo_run_continues_exactly(tmp_path: Path, tiny_model_dir: Path, make_dataset: Any,
                                             data_dir: Path, reward_adapter_dir: Path) -> None:
    make_dataset(QA, name="qa", file_name="qa.json")
    whole = ppo_config(tmp_path / "a", tiny_model_dir, data_dir, reward_adapter_dir, max_steps=4, ppo_score_norm=True)
    train(whole)
    checkpoint = tmp_path / "a" / "out" / "checkpoint-2"
    resumed = ppo_config(tmp_path / "b", tiny_model_dir, data_dir, reward_adapter_dir, max_steps=4,
                         ppo_score_norm=True, resume_from_checkpoint=str(checkpoint))
    train(resumed)
    first = [r for r in read_log(tmp_path / "a" / "out" / "run.jsonl") if "loss" in r]
    second = [r for r in read_log(tmp_path / "b" / "out" / "run.jsonl") if "loss" in r]
    assert [r["step"] for r in second] == [3, 4]
    for a, b in zip(first[2:], second):
        for key in ("loss", "reward", "kl", "loss/policy", "loss/value"):
            assert abs(a[key] - b[key]) < 1e-5, (key, a, b)


def full_reward_model(model_dir: Path, folder: Path) -> Path:
    """A full reward model folder (weights, tokenizer, value head), as a full `stage: rm` run saves one."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunelab.model.value_head import ValueHeadModel, save_value_head

    torch.manual_seed(2)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(folder)
    save_value_head(ValueHeadModel(model, dropout=0.0), folder)
    return folder


def test_full_fine_tuning_with_a_separate_reward_model(tmp_path: Path, tiny_model_dir: Path, make_dataset: Any,
                                                       data_dir: Path) -> None:
    make_dataset(QA, name="qa", file_name="qa.json")
    reward = full_reward_model(tiny_model_dir, tmp_path / "rm")
    metrics = train(ppo_config(tmp_path, tiny_model_dir, data_dir, reward, reward_model_type="full",
                               finetuning_type="full", max_steps=2, save_steps=10, learning_rate=1e-4))
    out = tmp_path / "out"
    records = [r for r in read_log(out / "run.jsonl") if "loss" in r]
    assert metrics["global_step"] == 2 and records[0]["kl"] == 0.0  # the frozen copy is the policy at step 0
    assert records[1]["kl"] != 0.0  # the policy moved away from its frozen copy
    assert (out / "model.safetensors").exists() and (out / "value_head.safetensors").exists()


def test_rewards_from_a_score_route(tmp_path: Path, tiny_model_dir: Path, make_dataset: Any,
                                    data_dir: Path) -> None:
    from fault_server import fault_server

    make_dataset(QA, name="qa", file_name="qa.json")
    with fault_server(["500"]) as server:  # one failure, retried
        metrics = train(ppo_config(tmp_path, tiny_model_dir, data_dir, Path(server.base_url),
                                   reward_model=server.base_url, reward_model_type="api", max_steps=2))
    bodies = [body["messages"] for body in server.received]
    # step 1: refused with 500, then sent again with the same texts; step 2: one request; 2 rows each
    assert metrics["global_step"] == 2 and len(bodies) == 3 and bodies[0] == bodies[1]
    records = [r for r in read_log(tmp_path / "out" / "run.jsonl") if "loss" in r]
    for record, texts in zip(records, bodies[1:]):  # the server scores a text by its length
        assert record["reward"] == pytest.approx(sum(len(t) for t in texts) / 2)
    assert all(text.startswith("<|im_start|>user\nQuestion") for texts in bodies for text in texts)
