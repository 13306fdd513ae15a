"""Whole training runs on the tiny model (seconds): pre-training text, streaming, and evaluation on eval_dataset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tunelab.config.load import build
from tunelab.train.plots import read_log
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
    assert any("eval_one_loss" in record for record in read_log(out / "run.jsonl"))
    assert (out / "training_eval_loss.png").exists()


def test_full_fine_tuning_saves_the_model_and_a_run_summary(tmp_path: Path, tiny_model_dir: Path,
                                                            make_dataset: Any, data_dir: Path) -> None:
    make_dataset(QA, name="qa", file_name="qa.json")
    metrics, out = run(tmp_path, tiny_model_dir, data_dir, dataset="qa", finetuning_type="full", max_steps=-1,
                       num_train_epochs=1, disable_shuffling=True, learning_rate=1e-4)
    assert (out / "model.safetensors").exists() and not (out / "adapter_model.safetensors").exists()
    summary = json.loads((out / "run_summary.json").read_text())
    report = json.loads((out / "data_report.json").read_text())
    assert summary["steps"] == 5 and summary["epochs"] == 1 and summary["finetuning_type"] == "full"
    assert summary["trainable_parameters"] == summary["total_parameters"]
    assert summary["trained_tokens"] == report["totals"]["tokens_trained"]  # one epoch: every trained token once
    assert summary["input_tokens"] == report["totals"]["tokens"]
    assert summary["final_train_loss"] == metrics["final_loss"] > 0
    assert summary["data"]["datasets"][0] == {"name": "qa", "role": "train", "rows_read": 10, "rows_kept": 10,
                                              "rows_skipped": 0, "skipped": {}, "truncated": 0,
                                              "dropped_for_length": 0}
    assert summary["peak_memory_mb"]["peak_rss_mb"] > 0 and summary["resumed_from"] is None


def test_freeze_tuning_trains_the_last_layer(tmp_path: Path, tiny_model_dir: Path, make_dataset: Any,
                                            data_dir: Path) -> None:
    from safetensors.torch import load_file

    make_dataset(QA, name="qa", file_name="qa.json")
    _, out = run(tmp_path, tiny_model_dir, data_dir, dataset="qa", finetuning_type="freeze",
                 freeze_trainable_layers=1)
    before, after = load_file(tiny_model_dir / "model.safetensors"), load_file(out / "model.safetensors")
    changed = {name for name in before if not (before[name] == after[name].to(before[name].dtype)).all()}
    assert changed and all(name.startswith("model.layers.1.") for name in changed)


def read_events(folder: Path) -> list[Any]:
    """The Event records of TensorBoard event files (TFRecord framing: length, crc, data, crc)."""
    import struct

    from tensorboardX.proto.event_pb2 import Event

    events = []
    for path in folder.rglob("events.out.tfevents.*"):
        data, at = path.read_bytes(), 0
        while at < len(data):
            (length,) = struct.unpack("<Q", data[at:at + 8])
            event = Event()
            event.ParseFromString(data[at + 12:at + 12 + length])
            events.append(event)
            at += 12 + length + 4
    return events


def test_evaluation_accuracy_early_stopping_best_model_and_tensorboard(tmp_path: Path, tiny_model_dir: Path,
                                                                      make_dataset: Any, data_dir: Path) -> None:
    make_dataset(QA, name="qa", file_name="qa.json")
    # a learning rate below float32's resolution leaves the weights as they are: the metric never improves
    metrics, out = run(tmp_path, tiny_model_dir, data_dir, dataset="qa", max_steps=10, learning_rate=1e-12,
                       val_size=3, eval_strategy="steps", eval_steps=1, save_steps=1, compute_accuracy=True,
                       early_stopping_steps=2, load_best_model_at_end=True, report_to="tensorboard")
    summary = json.loads((out / "run_summary.json").read_text())
    assert summary["steps"] == 3 and summary["stopped_early"]
    assert 0 <= metrics["eval_accuracy"] <= 1 and summary["final_eval"]["eval_accuracy"] == metrics["eval_accuracy"]
    assert summary["best"]["metric"] == "eval_loss" and summary["best"]["checkpoint"].endswith("checkpoint-1")
    assert [r["step"] for r in read_log(out / "run.jsonl") if "eval_loss" in r] == [1, 2, 3]
    tags = {value.tag for event in read_events(out / "runs") for value in event.summary.value}
    assert {"train/loss", "eval/loss", "eval/accuracy"} <= tags


def test_pretraining_reports_perplexity(tmp_path: Path, tiny_model_dir: Path, make_dataset: Any,
                                       data_dir: Path) -> None:
    import math

    make_dataset(TEXTS, name="corpus", file_name="corpus.json", entry={"columns": {"prompt": "text"}})
    metrics, _ = run(tmp_path, tiny_model_dir, data_dir, stage="pt", dataset="corpus", cutoff_len=32, val_size=2,
                     eval_strategy="steps", eval_steps=3)
    assert metrics["eval_perplexity"] == round(math.exp(metrics["eval_loss"]), 4)


def test_a_pissa_adapter_is_saved_for_the_original_weights(tmp_path: Path, tiny_model_dir: Path,
                                                          make_dataset: Any, data_dir: Path) -> None:
    """Trained from the principal components (which change the base weights), saved as a plain LoRA adapter of
    rank 2r that gives the trained model's outputs on the unmodified model."""
    import torch
    from peft import LoraConfig, PeftModel
    from transformers import AutoModelForCausalLM

    make_dataset(QA, name="qa", file_name="qa.json")
    _, out = run(tmp_path, tiny_model_dir, data_dir, dataset="qa", pissa_init=True, pissa_iter=-1, lora_rank=2,
                 save_steps=3)
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["r"] == 4 and config["init_lora_weights"] is True
    # the trained model as training saw it: residual weights W - B0 A0, plus the trained PiSSA adapter
    residual = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(out / "pissa_init"))
    with torch.no_grad():
        for name, param in residual.named_parameters():
            if "lora_B" in name:
                param.neg_()
    saved = LoraConfig.from_pretrained(str(out / "checkpoint-3"))
    saved.init_lora_weights = True  # load the trained weights as they are (no PiSSA start on W_res again)
    trained = PeftModel.from_pretrained(residual.merge_and_unload(), str(out / "checkpoint-3"), config=saved)
    converted = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(out))
    inputs = torch.tensor([[1, 5, 9, 2, 7]])
    with torch.no_grad():
        expected = trained(input_ids=inputs).logits
        torch.testing.assert_close(converted(input_ids=inputs).logits, expected, atol=1e-4, rtol=1e-4)
        base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)(input_ids=inputs).logits
        assert not torch.allclose(expected, base, atol=1e-4)  # it learned something


def test_a_resumed_pissa_run_ends_with_the_same_adapter(tmp_path: Path, tiny_model_dir: Path, make_dataset: Any,
                                                       data_dir: Path) -> None:
    """The PiSSA start is recomputed (seeded) on resume, so the checkpoint's adapter continues on the same residual
    weights and the converted adapter equals the uninterrupted run's."""
    import torch
    from safetensors.torch import load_file

    make_dataset(QA, name="qa", file_name="qa.json")
    common = {"dataset": "qa", "pissa_init": True, "pissa_iter": 2, "lora_rank": 2, "max_steps": 4, "save_steps": 2,
              "disable_shuffling": True}
    _, whole = run(tmp_path / "a", tiny_model_dir, data_dir, **common)
    _, resumed = run(tmp_path / "b", tiny_model_dir, data_dir, **common,
                     resume_from_checkpoint=str(whole / "checkpoint-2"))
    first, second = (load_file(str(out / "adapter_model.safetensors")) for out in (whole, resumed))
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def test_neftune_noise_reaches_the_training_forward_only(tmp_path: Path, tiny_model_dir: Path, make_dataset: Any,
                                                        data_dir: Path) -> None:
    make_dataset(QA, name="qa", file_name="qa.json")
    flat = {"dataset": "qa", "max_steps": 2, "disable_shuffling": True, "val_size": 2, "eval_strategy": "steps",
            "eval_steps": 1, "learning_rate": 1e-9}  # the weights barely move: eval losses compare the forward
    plain, _ = run(tmp_path / "plain", tiny_model_dir, data_dir, **flat)
    noisy, out = run(tmp_path / "noisy", tiny_model_dir, data_dir, neftune_noise_alpha=50.0, **flat)
    first_losses = [[r["loss"] for r in read_log(folder / "run.jsonl") if "loss" in r][0]
                    for folder in (out, tmp_path / "plain" / "out")]
    assert first_losses[0] != first_losses[1]  # noise on the training embeddings
    assert abs(noisy["eval_loss"] - plain["eval_loss"]) < 1e-4  # none at evaluation


def test_cheap_recomputation_trains_to_the_same_losses(tmp_path: Path, tiny_model_dir: Path, make_dataset: Any,
                                                       data_dir: Path) -> None:
    make_dataset(QA, name="qa", file_name="qa.json")
    losses = {}
    for setting in ("false", "cheap"):
        _, out = run(tmp_path / setting, tiny_model_dir, data_dir, dataset="qa", gradient_checkpointing=setting)
        losses[setting] = [record["loss"] for record in read_log(out / "run.jsonl") if "loss" in record]
    assert len(losses["cheap"]) == 3 and losses["cheap"] == losses["false"]
