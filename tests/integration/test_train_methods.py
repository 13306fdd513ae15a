"""The training methods on the real SmolLM2, a few steps each: the two-step workflow (a pt adapter trained further
by sft), and full fine-tuning whose output folder chat then uses as the model."""

from __future__ import annotations

import json
from pathlib import Path

from .clirun import tunelab


def test_two_step_pt_adapter_then_sft_on_top(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    pt, sft = tmp_path / "pt", tmp_path / "sft"
    first = tunelab("train", "examples/pt_lora.yaml", f"output_dir={pt}", "max_steps=2", "cutoff_len=64",
                    "eval_steps=2", "logging_steps=1", "plot_loss=false")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "eval_perplexity" in json.loads((pt / "train_results.json").read_text())
    second = tunelab("train", "examples/sft_on_pt_adapter.yaml", f"adapter_name_or_path={pt}",
                     f"output_dir={sft}", "max_steps=2", "eval_steps=2", "logging_steps=1", "plot_loss=false")
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"lora: continuing adapter {pt} (r=8, alpha=16" in second.stderr
    before, after = load_file(pt / "adapter_model.safetensors"), load_file(sft / "adapter_model.safetensors")
    assert before.keys() == after.keys()
    assert any(not (before[name] == after[name]).all() for name in before)  # trained further, same adapter
    results = json.loads((sft / "train_results.json").read_text())
    assert 0 <= results["eval_accuracy"] <= 1


def test_full_fine_tuning_output_is_a_model_chat_uses(tmp_path: Path) -> None:
    out = tmp_path / "full"
    trained = tunelab("train", "examples/sft_full.yaml", f"output_dir={out}", "max_steps=2", "eval_steps=1",
                      "save_steps=1", "logging_steps=1", "cutoff_len=256", "plot_loss=false")
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "full: every weight; 134,515,008 trainable of 134,515,008 parameters (100.00%)" in trained.stderr
    assert (out / "model.safetensors").exists() and (out / "tokenizer_config.json").exists()
    summary = json.loads((out / "run_summary.json").read_text())
    assert summary["finetuning_type"] == "full" and summary["best"]["metric"] == "eval_loss"
    chat = tunelab("chat", "examples/sft_full.yaml", f"output_dir={out}", "max_new_tokens=8", "do_sample=false",
                   "--prompt", "Who are you?")
    assert chat.returncode == 0, chat.stderr[-3000:]
    assert f"using the model trained in {out} (full fine-tuning)" in chat.stderr and chat.stdout.strip()
