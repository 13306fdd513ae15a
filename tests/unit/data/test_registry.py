"""dataset_info.json lookups: every error names the file or entry and says what to do."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from tunelab.data.errors import DataError
from tunelab.data.registry import lookup, sha1_of

ROWS = [{"instruction": "Hello there", "output": "I am fine"}]


def test_lookup_resolves_names_to_files(make_dataset: Any, data_dir: Path) -> None:
    make_dataset(ROWS, name="a", file_name="a.json")
    make_dataset(ROWS, name="b", file_name="b.jsonl", entry={"columns": {"prompt": "q", "response": "r"}})
    found = lookup(["b", "a"], data_dir)
    assert [d.name for d in found] == ["b", "a"]
    assert found[0].path == data_dir / "b.jsonl"
    assert found[0].entry.columns.prompt == "q" and found[0].entry.columns.query == "input"
    assert found[1].entry.formatting == "alpaca"


def test_missing_dataset_info_says_where_and_how(tmp_path: Path) -> None:
    with pytest.raises(DataError) as excinfo:
        lookup(["demo"], tmp_path)
    assert str(excinfo.value) == (f"{tmp_path / 'dataset_info.json'}: no dataset_info.json in {tmp_path}; set "
                                  "dataset_dir to the folder holding it, or create one with `tunelab data register`")


def test_unknown_dataset_name_suggests_and_lists_the_entries(make_dataset: Any, data_dir: Path) -> None:
    make_dataset(ROWS, name="identity")
    make_dataset(ROWS, name="alpaca_en", file_name="en.json")
    with pytest.raises(DataError) as excinfo:
        lookup(["identiy"], data_dir)
    message = str(excinfo.value)
    assert f"no entry named 'identiy' in {data_dir / 'dataset_info.json'}; did you mean identity?" in message
    assert "use one of: alpaca_en, identity" in message


def test_unknown_entry_key_suggests_the_right_one(make_dataset: Any, data_dir: Path) -> None:
    make_dataset(ROWS, entry={"formating": "alpaca"})
    with pytest.raises(DataError) as excinfo:
        lookup(["demo"], data_dir)
    assert str(excinfo.value) == (f"dataset 'demo' ({data_dir / 'dataset_info.json'}): unknown key 'formating'; "
                                  "did you mean formatting?; remove it or correct its name")


def test_unknown_column_key_is_named_with_its_path(make_dataset: Any, data_dir: Path) -> None:
    make_dataset(ROWS, entry={"columns": {"promt": "question"}})
    with pytest.raises(DataError) as excinfo:
        lookup(["demo"], data_dir)
    assert "unknown key 'columns.promt'; did you mean prompt?" in str(excinfo.value)


def test_wrong_value_in_an_entry_is_named(make_dataset: Any, data_dir: Path) -> None:
    make_dataset(ROWS, entry={"formatting": "alpacca"})
    with pytest.raises(DataError) as excinfo:
        lookup(["demo"], data_dir)
    message = str(excinfo.value)
    assert message.startswith("dataset 'demo' (")
    assert "key 'formatting': input should be 'alpaca', 'sharegpt' or 'openai' (got 'alpacca')" in message


def test_missing_data_file_names_the_entry_and_the_fix(make_dataset: Any, data_dir: Path) -> None:
    make_dataset(ROWS)
    (data_dir / "demo.json").unlink()
    with pytest.raises(DataError) as excinfo:
        lookup(["demo"], data_dir)
    assert str(excinfo.value) == (f"dataset 'demo', field file_name: file {data_dir / 'demo.json'} does not exist; "
                                  f"put the file in {data_dir} or correct file_name in dataset_info.json")


def test_entry_without_file_or_hub_url(data_dir: Path) -> None:
    data_dir.mkdir()
    (data_dir / "dataset_info.json").write_text('{"demo": {"formatting": "alpaca"}}')
    with pytest.raises(DataError) as excinfo:
        lookup(["demo"], data_dir)
    assert "the entry has no file_name and no hub URL" in str(excinfo.value)
    assert 'add "file_name": "your_file.json"' in str(excinfo.value)


def test_bad_json_in_dataset_info_names_the_line(data_dir: Path) -> None:
    data_dir.mkdir()
    (data_dir / "dataset_info.json").write_text('{\n  "demo": {\n    "file_name": "demo.json",\n  }\n}\n')
    with pytest.raises(DataError) as excinfo:
        lookup(["demo"], data_dir)
    message = str(excinfo.value)
    assert message.startswith(f"{data_dir / 'dataset_info.json'}: not valid JSON at line 4, column 3")
    assert message.endswith("; fix the JSON syntax")


def test_dataset_info_must_be_an_object(data_dir: Path) -> None:
    data_dir.mkdir()
    (data_dir / "dataset_info.json").write_text('["demo"]')
    with pytest.raises(DataError, match="must be a JSON object of dataset names to entries"):
        lookup(["demo"], data_dir)


def test_sha1_of_matches_hashlib(make_dataset: Any) -> None:
    path = make_dataset(ROWS)
    assert sha1_of(path) == hashlib.sha1(path.read_bytes()).hexdigest()


def test_an_entry_that_is_not_an_object_is_named(data_dir: Path) -> None:
    data_dir.mkdir()
    (data_dir / "dataset_info.json").write_text('{"demo": "demo.json"}')
    with pytest.raises(DataError, match="dataset 'demo'"):
        lookup(["demo"], data_dir)


def test_non_utf8_dataset_info_is_a_data_error(data_dir: Path) -> None:
    data_dir.mkdir()
    (data_dir / "dataset_info.json").write_bytes('{"demo": {"file_name": "caf\xe9.json"}}'.encode("latin-1"))
    with pytest.raises(DataError, match="dataset_info.json"):
        lookup(["demo"], data_dir)
