"""tokenized_path: saved once, reused while nothing changed, refused when the data or settings changed."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tunelab.config.schema import DataSection
from tunelab.data import pipeline, saved
from tunelab.data.errors import DataError
from tunelab.data.pipeline import build_data


def rows(count: int) -> list[dict[str, str]]:
    return [{"instruction": f"Question {i}?", "output": f"Answer {i}."} for i in range(count)]


def section(data_dir: Path, folder: Path, **values: Any) -> DataSection:
    return DataSection(dataset="demo", dataset_dir=str(data_dir), tokenized_path=str(folder), **values)


def test_saved_then_reused_without_reading_the_data(make_dataset: Any, data_dir: Path, tmp_path: Path,
                                                    tiny_tokenizer: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    make_dataset(rows(6))
    folder = tmp_path / "tok"
    first = build_data(section(data_dir, folder, val_size=2), tiny_tokenizer, seed=3)
    assert (folder / saved.META).exists() and first.report.tokenized_path == {"saved_to": str(folder)}

    def no_reading(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the data was read again")

    monkeypatch.setattr(pipeline, "split_records", no_reading)
    again = build_data(section(data_dir, folder, val_size=2, preprocessing_num_workers=2), tiny_tokenizer, seed=3)
    assert again.train["input_ids"] == first.train["input_ids"] and again.eval["labels"] == first.eval["labels"]
    assert again.report.totals() == first.report.totals()
    assert again.report.tokenized_path == {"loaded_from": str(folder)}
    assert (again.report.train_examples, again.report.eval_examples) == (4, 2)


def test_eval_sets_per_dataset_round_trip(make_dataset: Any, data_dir: Path, tmp_path: Path,
                                          tiny_tokenizer: Any) -> None:
    make_dataset(rows(3))
    make_dataset(rows(2), name="other", file_name="other.json")
    data = section(data_dir, tmp_path / "tok", eval_dataset="other", eval_on_each_dataset=True, neat_packing=True)
    first = build_data(data, tiny_tokenizer, seed=0)
    again = build_data(data, tiny_tokenizer, seed=0)
    assert list(again.eval) == ["other"] and again.packing == first.packing == "neat"
    assert again.eval["other"]["example_lengths"] == first.eval["other"]["example_lengths"]


@pytest.mark.parametrize(("change", "expected"), [
    ({"cutoff_len": 16}, "data_keys.cutoff_len: 2048 -> 16"),
    ({"template": "qwen"}, 'data_keys.template: (none) -> "qwen"'),
    ({"seed": 4}, "seed: 3 -> 4"),
])
def test_a_changed_setting_is_refused_with_what_changed(make_dataset: Any, data_dir: Path, tmp_path: Path,
                                                        tiny_tokenizer: Any, change: dict[str, Any],
                                                        expected: str) -> None:
    make_dataset(rows(3))
    folder = tmp_path / "tok"
    build_data(section(data_dir, folder), tiny_tokenizer, seed=3)
    seed = change.pop("seed", 3)
    with pytest.raises(DataError) as excinfo:
        build_data(section(data_dir, folder, **change), tiny_tokenizer, seed=seed)
    message = str(excinfo.value)
    assert f"tokenized_path {folder} was made from other data or settings: " in message and expected in message
    assert message.endswith("delete the folder to tokenize again, or set tokenized_path to a new folder")


def test_an_edited_data_file_is_refused(make_dataset: Any, data_dir: Path, tmp_path: Path,
                                        tiny_tokenizer: Any) -> None:
    path = make_dataset(rows(3))
    folder = tmp_path / "tok"
    build_data(section(data_dir, folder), tiny_tokenizer, seed=0)
    path.write_text(json.dumps(rows(4)), encoding="utf-8")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    with pytest.raises(DataError, match=f"files.{path}"):
        build_data(section(data_dir, folder), tiny_tokenizer, seed=0)


def test_a_folder_saved_by_llamafactory_is_used_as_it_is(data_dir: Path, tmp_path: Path, make_dataset: Any,
                                                         tiny_tokenizer: Any) -> None:
    from datasets import Dataset, DatasetDict

    make_dataset(rows(1))
    folder = tmp_path / "lf"
    row = {"input_ids": [5, 6, 7, 8, 0], "labels": [-100, 6, -100, 8, -100], "attention_mask": [1, 1, 2, 2, 0]}
    DatasetDict({"train": Dataset.from_list([row]), "validation": Dataset.from_list([row])}).save_to_disk(str(folder))
    bundle = build_data(section(data_dir, folder), tiny_tokenizer, seed=0)
    assert bundle.packing == "neat" and bundle.train[0]["example_lengths"] == [2, 2]
    assert len(bundle.eval) == 1 and "without a tunelab fingerprint" in bundle.report.notes[0]


def test_a_folder_that_is_not_a_saved_dataset(data_dir: Path, tmp_path: Path, make_dataset: Any,
                                              tiny_tokenizer: Any) -> None:
    make_dataset(rows(1))
    folder = tmp_path / "junk"
    folder.mkdir()
    (folder / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="is not a saved dataset"):
        build_data(section(data_dir, folder), tiny_tokenizer, seed=0)


def test_streaming_cannot_save(make_dataset: Any, data_dir: Path, tmp_path: Path, tiny_tokenizer: Any) -> None:
    make_dataset(rows(2))
    with pytest.raises(DataError, match="a streaming run cannot save tokenized data"):
        build_data(section(data_dir, tmp_path / "tok", streaming=True), tiny_tokenizer, seed=0)


def test_overwrite_cache_tokenizes_again_and_replaces_the_folder(make_dataset: Any, data_dir: Path, tmp_path: Path,
                                                                 tiny_tokenizer: Any) -> None:
    make_dataset(rows(4))
    folder = tmp_path / "tok"
    build_data(section(data_dir, folder, val_size=1), tiny_tokenizer, seed=0)
    fresh = build_data(section(data_dir, folder, cutoff_len=8, overwrite_cache=True), tiny_tokenizer, seed=0)
    assert fresh.report.tokenized_path == {"saved_to": str(folder)} and fresh.eval is None
    again = build_data(section(data_dir, folder, cutoff_len=8), tiny_tokenizer, seed=0)
    assert again.eval is None and max(len(ids) for ids in again.train["input_ids"]) == 8
