"""What stage ppo refuses before it builds anything (beyond the config checks of config/pref_checks.py), each
with the key to change."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tunelab.config.load import build
from tunelab.data.bundle import DataBundle
from tunelab.data.report import DataReport
from tunelab.train.outdir import RunError
from tunelab.train.stages.ppo import check_supported


def config(**flat: Any) -> Any:
    return build({"stage": "ppo", "model_name_or_path": "m", "dataset": "d", "output_dir": "o", **flat})


def bundle(with_eval: bool = False) -> DataBundle:
    return DataBundle(train=[], eval=[] if with_eval else None, report=DataReport())


def test_lora_and_api_reward_models_are_accepted(reward_adapter_dir: Path) -> None:
    check_supported(config(reward_model=str(reward_adapter_dir)), bundle())
    check_supported(config(reward_model="http://127.0.0.1:8000", reward_model_type="api"), bundle())


def test_an_eval_set_is_refused(reward_adapter_dir: Path) -> None:
    with pytest.raises(RunError, match="does not evaluate .* remove val_size and eval_dataset"):
        check_supported(config(reward_model=str(reward_adapter_dir)), bundle(with_eval=True))


def test_a_lora_reward_model_without_an_adapter_is_refused(reward_adapter_dir: Path, tmp_path: Path) -> None:
    head_only = tmp_path / "rm"
    head_only.mkdir()
    shutil.copy(reward_adapter_dir / "value_head.safetensors", head_only)
    with pytest.raises(RunError, match="holds no LoRA adapter .* reward_model_type: full"):
        check_supported(config(reward_model=str(head_only)), bundle())
