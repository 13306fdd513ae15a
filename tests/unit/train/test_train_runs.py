"""Whole training runs on the tiny model (seconds): pre-training text, streaming, and evaluation on eval_dataset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tunelab.config.load import build
from tunelab.train.run import train

TEXTS = [{"text": f"Document {i}: tunelab trains small models on plain text, line after line."} for i in range(12)]
QA = [{"instruction": f"Question {i}?", "output": f"Answer {i}."} for i in range(10)]


def run(tmp_path: Path, tiny_model_dir: Path, data_dir: Path, **flat: Any) -> tuple[dict[str, Any], Path]:
    out = tmp_path / "out"
    config = build({"model_name_or_path": str(tiny_model_dir), "dataset_dir": str(data_dir), "output_dir": str(out),
                    "max_steps": 3, "per_device_train_batch_size": 2, "learning_rate": 1e-3, "logging_steps": 1,
                    "lora_rank": 4, "report_to": "none", "plot_loss": True, **flat})
    return train(config), out


def test_pretraining_packs_text_and_trains(tmp_path: Path, tiny_model_dir: Path, make_dataset: Any,
                                          data_dir: Path) -> None:
    make_dataset(TEXTS, name="corpus", file_name="corpus.json", entry={"columns": {"prompt": "text"}})
    metrics, out = run(tmp_path, tiny_model_dir, data_dir, stage="pt", dataset="corpus", cutoff_len=32)
    report = json.loads((out / "data_report.json").read_text())
    assert report["packed_rows"] > 0 and report["totals"]["tokens_trained"] > 0
    assert metrics["global_step"] == 3 and metrics["final_loss"] > 0
    assert (out / "adapter_model.safetensors").exists() and (out / "training_loss.png").exists()


def test_streaming_sft_with_a_held_out_count(tmp_path: Path, tiny_model_dir: Path, make_dataset: Any,
                                            data_dir: Path) -> None:
    make_dataset(QA, name="qa", file_name="qa.json")
    metrics, out = run(tmp_path, tiny_model_dir, data_dir, dataset="qa", streaming=True, buffer_size=4, val_size=2,
                       eval_strategy="steps", eval_steps=2)
    report = json.loads((out / "data_report.json").read_text())
    assert metrics["global_step"] == 3 and "eval_loss" in metrics
    assert report["datasets"][0]["rows_read"] == 10 and report["eval_examples"] == 2  # rewritten after training


def test_each_eval_dataset_gets_its_own_loss(tmp_path: Path, tiny_model_dir: Path, make_dataset: Any,
                                            data_dir: Path) -> None:
    make_dataset(QA, name="qa", file_name="qa.json")
    make_dataset(QA[:3], name="one", file_name="one.json")
    make_dataset(QA[3:6], name="two", file_name="two.json")
    metrics, out = run(tmp_path, tiny_model_dir, data_dir, dataset="qa", eval_dataset="one,two",
                       eval_on_each_dataset=True, eval_strategy="steps", eval_steps=3)
    assert {"eval_one_loss", "eval_two_loss"} <= set(metrics)
    log = [json.loads(line) for line in (out / "run.jsonl").read_text().splitlines()]
    assert any("eval_one_loss" in record for record in log)
    assert (out / "training_eval_loss.png").exists()
