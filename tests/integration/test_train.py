"""`tunelab train` end to end on SmolLM2: files written, losses, config, data report, errors."""

from __future__ import annotations

import json
import math
import shutil

import yaml
from safetensors.torch import load_file

from .clirun import QUICKSTART, REPO, tunelab


def test_train_writes_the_run_files(trained_run):
    out, _ = trained_run
    for name in ("adapter_model.safetensors", "adapter_config.json", "tokenizer.json", "tokenizer_config.json",
                 "config.yaml", "run.jsonl", "train_results.json", "data_report.json", "training_loss.png",
                 "training_eval_loss.png"):
        assert (out / name).is_file(), name
    weights = load_file(out / "adapter_model.safetensors")
    assert any("lora_A" in key for key in weights) and any("lora_B" in key for key in weights)
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert adapter["r"] == 8 and adapter["lora_alpha"] == 16
    assert set(adapter["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                              "down_proj"}


def test_saved_tokenizer_carries_the_training_template(trained_run):
    out, _ = trained_run
    template = (out / "chat_template.jinja").read_text() if (out / "chat_template.jinja").exists() else \
        json.loads((out / "tokenizer_config.json").read_text())["chat_template"]
    assert "trained by Hugging Face." in template  # the smollm2 template named in the quickstart


def test_step_log_and_metrics(trained_run):
    out, result = trained_run
    records = [json.loads(line) for line in (out / "run.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert len(losses) == 8
    assert all(math.isfinite(x) and 0 < x < 10 for x in losses)
    assert [r["step"] for r in records if "loss" in r] == list(range(1, 9))
    assert sum(losses[-3:]) < sum(losses[:3])  # it learns the identity data
    assert any("eval_loss" in r for r in records)
    for key in ("lr", "epoch", "tokens_seen", "tokens_per_s", "elapsed_s", "remaining_s"):
        assert key in records[0], key
    metrics = json.loads((out / "train_results.json").read_text())
    for key in ("train_runtime", "train_samples_per_second", "train_tokens_per_second", "peak_rss_mb",
                "final_loss", "eval_loss", "global_step"):
        assert metrics[key] is not None, key
    assert metrics["global_step"] == 8
    assert metrics["final_loss"] == losses[-1]
    assert "step 8/8" in result.stderr and "tok/s" in result.stderr and "ETA" in result.stderr


def test_resolved_config_saved_with_overrides_and_defaults(trained_run):
    out, _ = trained_run
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["learning_rate"] == 1e-3 and saved["max_steps"] == 8
    assert saved["lora_rank"] == 8 and saved["lora_dropout"] == 0.0  # defaults are written too
    assert saved["dataset"] == "identity"


def test_data_report_counts(trained_run):
    out, _ = trained_run
    report = json.loads((out / "data_report.json").read_text())
    rows = len(json.loads((REPO / "examples/data/identity.json").read_text()))
    assert report["totals"]["rows_read"] == rows
    assert report["totals"]["rows_skipped"] == 0
    assert report["train_examples"] + report["eval_examples"] == rows
    assert 0 < report["totals"]["tokens_trained"] < report["totals"]["tokens"]


def test_existing_output_dir_is_protected(trained_run, tmp_path):
    out, _ = trained_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    result = tunelab("train", QUICKSTART, f"output_dir={copy}", "overwrite_output_dir=false", "max_steps=1")
    assert result.returncode == 1
    assert f"output_dir: {copy} holds a different run (" in result.stderr and "max_steps: 8 -> 1" in result.stderr
    assert "overwrite_output_dir: true to replace it" in result.stderr
    same = tunelab("train", QUICKSTART, f"output_dir={copy}", "overwrite_output_dir=false", "max_steps=8",
                   "logging_steps=1", "eval_steps=4", "learning_rate=1e-3", "per_device_train_batch_size=4",
                   "gradient_accumulation_steps=1")
    assert same.returncode == 1 and "holds a finished run of this config" in same.stderr
    assert (copy / "adapter_model.safetensors").is_file()  # nothing deleted


def test_config_errors_exit_2_listing_every_problem(tmp_path):
    result = tunelab("train", QUICKSTART, "learning_rat=1e-4", "lora_rank=abc", f"output_dir={tmp_path}")
    assert result.returncode == 2
    assert "2 problems" in result.stderr
    assert "learning_rat: unknown key; did you mean learning_rate?" in result.stderr
    assert "lora_rank" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_dataset_entry_suggests(tmp_path):
    result = tunelab("train", QUICKSTART, "dataset=identiti", f"output_dir={tmp_path / 'o'}")
    assert result.returncode == 2  # a config problem, found before anything loads
    assert "dataset: 'identiti' is not an entry of" in result.stderr and "did you mean identity?" in result.stderr
    assert "Traceback" not in result.stderr


def test_malformed_row_names_file_row_and_field(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rows = [{"instruction": "hi", "output": "hello"}, {"instruction": "who?", "output": ""}]
    (data / "bad.json").write_text(json.dumps(rows))
    (data / "dataset_info.json").write_text(json.dumps({"bad": {"file_name": "bad.json"}}))
    result = tunelab("train", QUICKSTART, "dataset=bad", f"dataset_dir={data}", f"output_dir={tmp_path / 'o'}",
                     "val_size=0", "eval_strategy=no")
    assert result.returncode == 1
    assert "dataset 'bad'" in result.stderr and "bad.json" in result.stderr
    assert "row 2" in result.stderr and "field output" in result.stderr and "on_bad_row: skip" in result.stderr
    assert not (tmp_path / "o" / "adapter_model.safetensors").exists()


def test_tokens_seen_counts_every_real_token(tmp_path):
    out = tmp_path / "one-epoch"
    result = tunelab("train", QUICKSTART, f"output_dir={out}", "val_size=0", "eval_strategy=no", "max_steps=1",
                     "per_device_train_batch_size=64", "gradient_accumulation_steps=1", "logging_steps=1",
                     "disable_shuffling=true", "plot_loss=false")
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads((out / "run.jsonl").read_text().splitlines()[0])
    report = json.loads((out / "data_report.json").read_text())
    assert record["tokens_seen"] == report["totals"]["tokens"]  # the whole dataset in one batch, eos included
