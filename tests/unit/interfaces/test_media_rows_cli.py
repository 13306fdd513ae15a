"""Rows with images on a text-only model, as a user meets them: `data validate` and `tunelab train` refuse them with
the dataset and the count, and `drop_media: true` trains on the text alone, counting what it dropped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tunelab.interfaces.cli import main
from tunelab.model.fit import model_media

ROWS = [{"conversations": [{"from": "human", "value": "<image>What animal is this?"},
                           {"from": "gpt", "value": "A cat."}], "images": ["cat.png"]},
        {"conversations": [{"from": "human", "value": "Say hello."}, {"from": "gpt", "value": "Hello."}]}]


@pytest.fixture()
def config(tmp_path: Path, tiny_model_dir: Path, make_dataset: Any, data_dir: Path) -> Path:
    make_dataset(ROWS, name="pics", file_name="pics.json",
                 entry={"formatting": "sharegpt", "columns": {"messages": "conversations", "images": "images"}})
    (data_dir / "cat.png").write_bytes(b"x")
    path = tmp_path / "run.yaml"
    path.write_text(f"model_name_or_path: {tiny_model_dir}\ndataset: pics\ndataset_dir: {data_dir}\ncutoff_len: 64\n"
                    f"output_dir: {tmp_path / 'out'}\nmax_steps: 1\nreport_to: none\n", encoding="utf-8")
    return path


def test_train_refuses_images_on_a_model_without_a_vision_tower(config: Path, tiny_model_dir: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", str(config)]) == 1
    err = capsys.readouterr().err
    assert (f"dataset 'pics' ({config.parent / 'data' / 'pics.json'}), field drop_media: 1 of 2 rows carry media "
            f"(1 image), but the model {tiny_model_dir} has no vision tower") in err
    assert "set drop_media: true" in err and "Traceback" not in err
    assert not (config.parent / "out" / "adapter_model.safetensors").exists()


def test_validate_flags_rows_with_media(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "validate", str(config)]) == 2
    out = capsys.readouterr().out
    assert "pics: 1 of 2 rows carry media (1 image), but tunelab trains on text only" in out
    assert "valid" not in out and "0 rows have problems" not in out
    assert main(["data", "validate", str(config), "drop_media=true"]) == 0


def test_drop_media_trains_on_the_text_and_counts_the_media(config: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "preview", str(config), "drop_media=true", "--plain", "--rows", "2"]) == 0
    shown = capsys.readouterr().out
    assert "What animal is this?" in shown and "<image>" not in shown
    assert "pics: 1 media files dropped with their placeholders (drop_media)" in shown
    assert main(["train", str(config), "drop_media=true"]) == 0
    report = json.loads((tmp_path / "out" / "data_report.json").read_text())
    assert report["datasets"][0]["media_dropped"] == 1 and report["train_examples"] == 2


def test_a_vision_config_means_a_vision_tower(tmp_path: Path, tiny_model_dir: Path) -> None:
    assert model_media(tiny_model_dir, "tiny").towers == frozenset()
    config = json.loads((tiny_model_dir / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "vision_config": {"hidden_size": 8}}))
    assert model_media(tmp_path, "vl").towers == {"images", "videos"}
