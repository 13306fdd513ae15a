"""Dataset names are checked where they are read: training reads dataset and eval_dataset, prediction only
eval_dataset (default dataset), chat and export none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunelab.config.errors import ConfigError
from tunelab.config.load import build


def registry(tmp_path: Path) -> str:
    (tmp_path / "dataset_info.json").write_text(json.dumps({"zh": {"file_name": "zh.json"}}), encoding="utf-8")
    return str(tmp_path)


def test_prediction_checks_only_the_datasets_it_answers(tmp_path: Path) -> None:
    flat = {"model_name_or_path": "tiny", "dataset": "identity", "eval_dataset": "zh", "output_dir": "out",
            "dataset_dir": registry(tmp_path)}
    assert build(flat, "predict").data.eval_dataset == "zh"
    with pytest.raises(ConfigError) as excinfo:
        build({**flat, "eval_dataset": "zhh"}, "predict")
    assert [p.key for p in excinfo.value.problems] == ["eval_dataset"]


def test_chat_does_not_read_datasets(tmp_path: Path) -> None:
    flat = {"model_name_or_path": "tiny", "dataset": "identity", "dataset_dir": registry(tmp_path)}
    assert build(flat, "infer").data.dataset == "identity"


def test_training_checks_both(tmp_path: Path) -> None:
    flat = {"model_name_or_path": "tiny", "dataset": "identity", "eval_dataset": "zh", "output_dir": "out",
            "dataset_dir": registry(tmp_path)}
    with pytest.raises(ConfigError) as excinfo:
        build(flat, "train")
    assert [p.key for p in excinfo.value.problems] == ["dataset"]
