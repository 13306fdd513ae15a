"""Run orchestration pieces that need no training: the output folder and the gradient-checkpointing rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tunelab.config.load import build
from tunelab.train.run import RunError, prepare_output_dir, use_gradient_checkpointing


def test_a_new_folder_is_created(tmp_path: Path) -> None:
    out = tmp_path / "saves" / "run"
    prepare_output_dir(out, overwrite=False)
    assert out.is_dir()


def test_a_folder_without_a_run_is_used_as_is(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    prepare_output_dir(tmp_path, overwrite=False)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_an_existing_run_is_refused_without_overwrite(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("x")
    (tmp_path / "run.jsonl").write_text("{}")
    (tmp_path / "checkpoint-2").mkdir()
    with pytest.raises(RunError) as excinfo:
        prepare_output_dir(tmp_path, overwrite=False)
    assert str(excinfo.value) == (f"output_dir: {tmp_path} already holds a run (config.yaml, run.jsonl, "
                                  "checkpoint-2); set overwrite_output_dir: true to replace it, or choose another "
                                  "output_dir")
    assert (tmp_path / "config.yaml").exists()


def test_overwrite_clears_the_old_run_and_keeps_other_files(tmp_path: Path) -> None:
    for name in ("config.yaml", "run.jsonl", "adapter_model.safetensors", "training_loss.png"):
        (tmp_path / name).write_text("old")
    (tmp_path / "checkpoint-4").mkdir()
    (tmp_path / "checkpoint-4" / "adapter_config.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("mine")
    prepare_output_dir(tmp_path, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def config(**flat: Any) -> Any:
    return build({"model_name_or_path": "tiny", "dataset": "demo", "output_dir": "out", **flat})


@pytest.mark.parametrize(("flat", "parameters", "expected"), [
    ({}, 135_000_000, False),
    ({}, 1_000_000_000, True),
    ({"gradient_checkpointing": True}, 1000, True),
    ({"gradient_checkpointing": False}, 7_000_000_000, False),
    ({"disable_gradient_checkpointing": True}, 7_000_000_000, False),
])
def test_use_gradient_checkpointing(flat: dict[str, Any], parameters: int, expected: bool) -> None:
    assert use_gradient_checkpointing(config(**flat), parameters) is expected


def test_an_output_dir_that_is_a_file_is_a_run_error(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("x")
    with pytest.raises(RunError, match="output_dir"):
        prepare_output_dir(path, overwrite=False)
