"""Reward-model prediction: pair scores in input order under LLaMA-Factory's field names, the summary, a resumed
file, and `tunelab predict` / `tunelab train` with do_predict on a stage rm config."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from tunelab.config.load import build
from tunelab.infer.reward import is_reward_model, load_scorer
from tunelab.infer.score_predict import pair_rows, predict_scores
from tunelab.interfaces.cli import main

PAIRS = [{"instruction": f"Who are you? ({i})", "input": "", "chosen": f"I am tunelab {i}.",
          "rejected": f"Hello there, how are you {i}?"} for i in range(7)]
PAIR_ENTRY = {"ranking": True, "columns": {"prompt": "instruction", "query": "input", "chosen": "chosen",
                                           "rejected": "rejected"}}


@pytest.fixture
def rm_config(tmp_path: Path, tiny_model_dir: Path, lora_rm_dir: tuple[Path, Any], make_dataset: Any,
              data_dir: Path) -> dict[str, Any]:
    """A stage rm config whose output_dir holds a trained LoRA reward model, over 7 pairs."""
    make_dataset(PAIRS, name="pairs", file_name="pairs.json", entry=PAIR_ENTRY)
    out = tmp_path / "out"
    shutil.copytree(lora_rm_dir[0], out)
    return {"model_name_or_path": str(tiny_model_dir), "stage": "rm", "dataset_dir": str(data_dir),
            "eval_dataset": "pairs", "output_dir": str(out), "per_device_eval_batch_size": 3}


def lines(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "generated_predictions.jsonl").read_text().splitlines()]


def test_every_pair_is_scored_in_input_order(rm_config: dict[str, Any]) -> None:
    config = build(rm_config, "predict")
    assert is_reward_model(config)
    scorer = load_scorer(config)
    report = predict_scores(config, scorer)
    out = Path(config.train.output_dir)
    found = lines(out)
    assert [line["id"] for line in found] == [f"pairs:{i}" for i in range(1, 8)]
    assert set(found[0]) == {"id", "dataset", "chosen", "rejected"} and report.written == 7
    rows, truncated = pair_rows(config, scorer)
    for row, line in zip(rows, found):
        for side in ("chosen", "rejected"):
            ids = getattr(row, f"{side}_input_ids")
            expected = float(scorer.score_ids(torch.tensor([ids]), torch.ones(1, len(ids)))[0])
            assert line[side] == pytest.approx(expected, abs=1e-5)
    margins = [line["chosen"] - line["rejected"] for line in found]
    results = json.loads((out / "predict_results.json").read_text())
    assert results["predict_accuracy"] == pytest.approx(sum(m > 0 for m in margins) / 7, abs=1e-6)
    assert results["predict_margin_mean"] == pytest.approx(sum(margins) / 7, abs=1e-5)
    assert results["predict_loss"] > 0 and results["predict_pairs"] == 7 and truncated == 0
    assert json.loads((out / "predict_report.json").read_text())["written"] == 7


def test_an_interrupted_prediction_continues_after_the_written_pairs(rm_config: dict[str, Any]) -> None:
    config = build(rm_config, "predict")
    scorer = load_scorer(config)
    predict_scores(config, scorer)
    out = Path(config.train.output_dir)
    whole = lines(out)
    text = (out / "generated_predictions.jsonl").read_text().splitlines(keepends=True)
    (out / "generated_predictions.jsonl").write_text("".join(text[:2]) + text[2][:15])  # killed while writing
    report = predict_scores(config, scorer)
    assert report.resumed == 2 and report.written == 5
    assert lines(out) == whole


def test_tunelab_predict_on_an_rm_config(rm_config: dict[str, Any], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "rm.yaml"
    path.write_text("\n".join(f"{key}: {value}" for key, value in rm_config.items()), encoding="utf-8")
    assert main(["predict", str(path)]) == 0
    err = capsys.readouterr().err
    assert "7 pairs scored, 0 already there (0 cut to cutoff_len); accuracy" in err
    assert len(lines(Path(rm_config["output_dir"]))) == 7


def test_do_predict_under_train_scores_the_pairs(rm_config: dict[str, Any], tmp_path: Path,
                                                 lora_rm_dir: tuple[Path, Any],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "rm.yaml"
    flat = {**rm_config, "do_predict": True, "adapter_name_or_path": str(lora_rm_dir[0]),
            "output_dir": str(tmp_path / "predicted")}
    path.write_text("\n".join(f"{key}: {value}" for key, value in flat.items()), encoding="utf-8")
    assert main(["train", str(path)]) == 0
    assert "predict: accuracy" in capsys.readouterr().err
    results = json.loads((tmp_path / "predicted" / "predict_results.json").read_text())
    assert results["predict_pairs"] == 7


def test_an_sft_adapter_is_refused_as_a_reward_model(rm_config: dict[str, Any], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    (Path(rm_config["output_dir"]) / "value_head.safetensors").unlink()
    path = tmp_path / "rm.yaml"
    path.write_text("\n".join(f"{key}: {value}" for key, value in rm_config.items()), encoding="utf-8")
    assert main(["predict", str(path)]) == 1
    err = capsys.readouterr().err
    assert "is not a reward model" in err and "Traceback" not in err


def test_a_folder_with_a_value_head_is_served_as_a_reward_model(tiny_model_dir: Path,
                                                                 full_rm_dir: tuple[Path, Any],
                                                                 lora_rm_dir: tuple[Path, Any]) -> None:
    assert is_reward_model(build({"model_name_or_path": str(full_rm_dir[0])}, "infer"))
    assert is_reward_model(build({"model_name_or_path": str(tiny_model_dir),
                                  "adapter_name_or_path": str(lora_rm_dir[0])}, "infer"))
    assert not is_reward_model(build({"model_name_or_path": str(tiny_model_dir)}, "infer"))
    assert is_reward_model(build({"model_name_or_path": str(tiny_model_dir), "stage": "rm"}, "infer"))
