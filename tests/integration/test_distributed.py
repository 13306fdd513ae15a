"""Data-parallel training on the CPU (torchrun + gloo) through the real CLI: two processes with 2 examples each
must train exactly like one process with 4 (same global batch, same order, float32, fixed seed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_dataset

from .clirun import train_two_and_one

STEPS = 4
ROWS = [{"instruction": f"Question {i}: what is {i} plus {i}?",
         "output": f"Answer {i}: it is {2 * i}." + " more" * (i % 5)} for i in range(32)]
# measured on 2 CPU cores (torch 2.13, gloo): per-step losses within 2e-7 relative (the final ones equal), adapter
# weights within 6e-7 absolute (weights up to 0.18), i.e. float32 rounding; the tolerances leave 20-50x margin
LOSS_RTOL = 1e-5
WEIGHT_ATOL = 1e-5


def write_config(folder: Path, model_dir: Path, data_dir: Path) -> Path:
    path = folder / "dp.yaml"
    path.write_text(f"""\
model_name_or_path: {model_dir}
dataset: qa
dataset_dir: {data_dir}
stage: sft
finetuning_type: lora
lora_rank: 4
learning_rate: 1.0e-3
max_steps: {STEPS}
logging_steps: 1
save_strategy: "no"
disable_shuffling: true
seed: 7
report_to: none
""", encoding="utf-8")
    return path


def losses(output_dir: Path) -> list[float]:
    records = [json.loads(line) for line in (output_dir / "run.jsonl").read_text(encoding="utf-8").splitlines()]
    return [record["loss"] for record in records if "loss" in record]


def adapter(output_dir: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(output_dir / "adapter_model.safetensors"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> dict[str, Any]:
    """One two-process run (2 examples per process) and one single-process run (4 examples), side by side."""
    folder = tmp_path_factory.mktemp("dp")
    write_dataset(folder / "data", ROWS, name="qa", file_name="qa.json")
    config = str(write_config(folder, tiny_model_dir, folder / "data"))
    two, one = folder / "two", folder / "one"
    two_run, one_run = train_two_and_one(config, two, one)
    results = {"two": two_run, "one": one_run}
    return {"two_dir": two, "one_dir": one, **results}


def test_two_processes_train_and_only_rank_zero_reports(runs: dict[str, Any]) -> None:
    result = runs["two"]
    assert result.returncode == 0, result.stderr[-4000:]
    assert "tunelab: launching 2 training processes with torchrun at 127.0.0.1:" in result.stderr
    assert result.stderr.count("tunelab: training for 4 steps") == 1  # rank 1 prints no status lines
    assert len(losses(runs["two_dir"])) == STEPS  # run.jsonl written once, by rank 0
    assert {"adapter_model.safetensors", "train_results.json", "config.yaml"} <= {
        p.name for p in runs["two_dir"].iterdir()}


def test_two_processes_match_one_process_with_the_same_global_batch(runs: dict[str, Any]) -> None:
    import torch

    assert runs["one"].returncode == 0, runs["one"].stderr[-4000:]
    assert runs["two"].returncode == 0, runs["two"].stderr[-4000:]
    one, two = losses(runs["one_dir"]), losses(runs["two_dir"])
    assert two == pytest.approx(one, rel=LOSS_RTOL)
    results = [json.loads((runs[f"{name}_dir"] / "train_results.json").read_text(encoding="utf-8"))
               for name in ("one", "two")]
    assert results[1]["final_loss"] == pytest.approx(results[0]["final_loss"], rel=LOSS_RTOL)
    assert results[1]["num_input_tokens_seen"] == results[0]["num_input_tokens_seen"]
    weights_one, weights_two = adapter(runs["one_dir"]), adapter(runs["two_dir"])
    assert weights_one.keys() == weights_two.keys()
    for name, tensor in weights_one.items():
        torch.testing.assert_close(weights_two[name], tensor, rtol=0, atol=WEIGHT_ATOL, msg=name)
