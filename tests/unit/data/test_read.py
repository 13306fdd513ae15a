"""Reading data files: rows in order, errors that name the file and the line or row."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tunelab.data.errors import DataError
from tunelab.data.read import read_rows


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def csv_text(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()


def test_json_array(tmp_path: Path) -> None:
    rows = [{"instruction": "a", "output": "b"}, {"instruction": "c", "output": "d"}]
    assert read_rows(write(tmp_path, "d.json", json.dumps(rows)), "ds") == rows


def test_jsonl_with_blank_lines_and_bom(tmp_path: Path) -> None:
    path = write(tmp_path, "d.jsonl", '\ufeff{"a": 1}\n\n{"a": 2}\n')
    assert read_rows(path, "ds") == [{"a": 1}, {"a": 2}]


def test_json_lines_in_a_json_file_are_read_as_json_lines(tmp_path: Path) -> None:
    assert read_rows(write(tmp_path, "d.json", '{"a": 1}\n{"a": 2}\n'), "ds") == [{"a": 1}, {"a": 2}]


def test_a_folder_is_read_file_by_file_in_name_order(tmp_path: Path) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    write(folder, "b.json", '[{"n": 2}]')
    write(folder, "a.json", '[{"n": 1}]')
    write(folder, "README.md", "# not data")
    assert read_rows(folder, "ds") == [{"n": 1}, {"n": 2}]


def test_a_folder_mixing_file_types_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    write(folder, "a.json", '[{"n": 1}]')
    write(folder, "b.jsonl", '{"n": 2}\n')
    with pytest.raises(DataError) as excinfo:
        read_rows(folder, "ds")
    assert "mixes file types (.json, .jsonl)" in str(excinfo.value) and "dataset 'ds'" in str(excinfo.value)


def test_broken_jsonl_line_is_named_by_number(tmp_path: Path) -> None:
    path = write(tmp_path, "d.jsonl", '{"a": 1}\n\n{"a": 2\n{"a": 3}\n')
    with pytest.raises(DataError) as excinfo:
        read_rows(path, "ds")
    assert str(excinfo.value) == (f"dataset 'ds' ({path}): line 3 is not valid JSON (column 8: Expecting ',' "
                                  "delimiter); fix or remove that line")


def test_broken_json_array_names_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "d.json", '[\n  {"a": 1},\n  {"a": }\n]')
    with pytest.raises(DataError) as excinfo:
        read_rows(path, "ds")
    assert str(excinfo.value) == (f"dataset 'ds' ({path}): not valid JSON at line 3, column 9: Expecting value; "
                                  "fix the JSON syntax")


def test_broken_pretty_printed_json_object_names_the_real_line(tmp_path: Path) -> None:
    path = write(tmp_path, "d.json", '{\n  "instruction": "a",\n  "output": \n}\n')
    with pytest.raises(DataError) as excinfo:
        read_rows(path, "ds")
    assert "line 4" in str(excinfo.value)


def test_invalid_utf8_names_byte_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "d.json", b'[{"a": "ok"},\n{"a": "caf\xe9"}]')
    with pytest.raises(DataError) as excinfo:
        read_rows(path, "ds")
    assert str(excinfo.value) == f"dataset 'ds' ({path}): invalid UTF-8 at byte 24 (line 2); save the file as UTF-8"


def test_rows_that_are_not_objects_are_named_by_row(tmp_path: Path) -> None:
    path = write(tmp_path, "d.json", '[{"a": 1}, ["a", "b"]]')
    with pytest.raises(DataError) as excinfo:
        read_rows(path, "ds")
    assert str(excinfo.value) == (f"dataset 'ds' ({path}), row 2: expected an object with named fields, got list; "
                                  "each row must be a JSON object")


def test_json_scalar_file_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="a JSON data file must hold a list of rows"):
        read_rows(write(tmp_path, "d.json", '"just text"'), "ds")


def test_unsupported_extension_lists_the_readable_ones(tmp_path: Path) -> None:
    path = write(tmp_path, "d.txt", "hello")
    with pytest.raises(DataError) as excinfo:
        read_rows(path, "ds")
    assert str(excinfo.value) == f"dataset 'ds' ({path}): cannot read .txt files; convert it to one of: json, jsonl, csv"


def test_csv_cells_may_hold_newlines(tmp_path: Path) -> None:
    text = csv_text([["instruction", "output"], ["first line\nsecond line", "a,b"], ["x", 'say "hi"\r\nbye']])
    rows = read_rows(write(tmp_path, "d.csv", text), "ds")
    assert rows == [{"instruction": "first line\nsecond line", "output": "a,b"},
                    {"instruction": "x", "output": 'say "hi"\r\nbye'}]


def test_csv_cells_with_unicode_line_separators_stay_one_row(tmp_path: Path) -> None:
    text = csv_text([["instruction", "output"], ["first\u2028second", "page\x0cbreak"]])
    rows = read_rows(write(tmp_path, "d.csv", text), "ds")
    assert rows == [{"instruction": "first\u2028second", "output": "page\x0cbreak"}]
