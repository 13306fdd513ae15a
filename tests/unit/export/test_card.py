"""The model card names the base, the adapters in order, the datasets and template, the dtype, and the final
metrics the run wrote; the CLI prints a summary and reports bad input without a traceback."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tunelab.config.load import build
from tunelab.export.card import CardFacts, model_card
from tunelab.export.run import CARD, export
from tunelab.interfaces.cli import main
from tunelab.runtime import paths


def fake_run(folder: Path) -> None:
    """What tunelab's training leaves next to an adapter: the resolved config, the metrics and the summary."""
    (folder / paths.CONFIG).write_text("### data\ndataset: identity,alpaca_demo\ntemplate: smollm2\n")
    (folder / paths.METRICS).write_text(json.dumps({"train_loss": 0.8123, "epoch": 3.0, "eval_loss": 0.5}))
    (folder / paths.SUMMARY).write_text(json.dumps({"final_train_loss": 0.4321, "final_eval": {"eval_loss": 0.5}}))


def test_card_of_an_export(tiny_model_dir: Path, make_adapter: Callable[..., Path], tmp_path: Path) -> None:
    first, second = make_adapter("a", seed=1), make_adapter("b", seed=2)
    fake_run(second)
    out = tmp_path / "out"
    export(build({"model_name_or_path": str(tiny_model_dir), "adapter_name_or_path": f"{first},{second}",
                  "export_dir": str(out), "export_dtype": "bfloat16"}, "export"))
    card = (out / CARD).read_text()
    assert card.startswith(f"---\nbase_model: {tiny_model_dir}\nlibrary_name: transformers\n")
    assert f"- Adapters merged, in order:\n1. `{first}`\n2. `{second}`\n" in card
    assert "- Datasets: identity, alpaca_demo\n" in card
    assert "- Weights: bfloat16, format hf\n" in card
    assert f"Run `{second}`:" in card and f"Run `{first}`" not in card
    assert "| final_train_loss | 0.4321 |" in card and "| train_loss | 0.8123 |" in card
    assert "| eval_loss | 0.5 |" in card
    assert "- merged model: greedy answers equal on " in card


def test_card_without_runs_or_checks() -> None:
    card = model_card(CardFacts(base="HuggingFaceTB/SmolLM2-135M-Instruct", adapters=[], runs=[], template=None,
                                datasets=[], dtype="float32", export_format="gguf"))
    assert "- Adapters merged, in order: none (the run's own weights)" in card
    assert "- Datasets: not recorded" in card and "No training metrics were found" in card
    assert "Not verified at export time (export_verify: false)." in card
    assert "llama-cli -m FILE.gguf" in card and "AutoModelForCausalLM" not in card


def test_cli_export_prints_a_summary(tiny_model_dir: Path, make_adapter: Callable[..., Path], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = main(["export", str(write_yaml(tmp_path, tiny_model_dir, make_adapter())), f"export_dir={out}"])
    printed = capsys.readouterr().out
    assert code == 0
    assert printed.startswith(f"exported hf (float32) to {out} in ")
    assert "  model.safetensors  " in printed and "  README.md  " in printed
    assert "check merged model: greedy answers equal on 5/5 prompts, max |logit difference| " in printed
    assert "prompts rendered alike: yes" in printed


def write_yaml(folder: Path, base: Path, adapter: Path) -> Path:
    path = folder / "export.yaml"
    path.write_text(f"model_name_or_path: {base}\nadapter_name_or_path: {adapter}\n", encoding="utf-8")
    return path


def test_cli_bad_input_is_one_line_without_traceback(tiny_model_dir: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    config = write_yaml(tmp_path, tiny_model_dir, tmp_path / "missing")
    assert main(["export", str(config), f"export_dir={tmp_path / 'out'}"]) == 1
    err = capsys.readouterr().err
    assert err == (f"tunelab: error: adapter_name_or_path: {tmp_path / 'missing'} does not exist; give the "
                   "output_dir of a LoRA run\n")
    assert main(["export", str(config)]) == 2
    assert "export_dir: required" in capsys.readouterr().err
    assert main(["config", str(config), "export_dir=x", "--purpose", "export"]) == 0
