"""A JSON array read element by element, across read blocks, with errors that name the line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunelab.data.errors import DataError
from tunelab.data.json_stream import iter_json_array
from tunelab.data.read import iter_rows

ROWS = [{"instruction": f"问题 {i} — ünïcode", "output": "line\nbreak", "n": i * 1.5, "ok": True} for i in range(40)]


@pytest.mark.parametrize("block", [1, 7, 64, 1 << 20])
def test_elements_match_json_load_whatever_the_block_size(tmp_path: Path, block: int) -> None:
    path = tmp_path / "rows.json"
    path.write_text("\ufeff" + json.dumps(ROWS, ensure_ascii=False, indent=2), encoding="utf-8")
    rows = iter_json_array(path, "demo", block=block)
    assert rows is not None and list(rows) == ROWS


@pytest.mark.parametrize(("text", "problem"), [
    ('[{"a": 1},\n{"a": 2}\n{"a": 3}]', "line 3: expected ',' or ']' after an element, found '{'"),
    ('[{"a": 1},\n{"a": }]', "line 2: Expecting value"),
    ('[{"a": 1},\n', "the file ends inside the array (missing ']')"),
    ('[1]\n[2]', "line 2: text after the closing ']'"),
])
def test_syntax_errors_name_the_line(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError) as excinfo:
        list(iter_json_array(path, "demo", block=4) or [])
    assert problem in str(excinfo.value) and str(path) in str(excinfo.value)


def test_not_an_array_is_left_to_the_whole_file_reader(tmp_path: Path) -> None:
    path = tmp_path / "lines.json"
    path.write_text('{"a": 1}\n{"a": 2}\n', encoding="utf-8")
    assert iter_json_array(path, "demo") is None
    assert list(iter_rows(path, "demo", lazy=True)) == [{"a": 1}, {"a": 2}]


def test_empty_array_and_invalid_utf8(tmp_path: Path) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text(" [ ] ", encoding="utf-8")
    assert list(iter_json_array(empty, "demo") or ["x"]) == []
    broken = tmp_path / "broken.json"
    broken.write_bytes(b'[{"a": "\xff"}]')
    with pytest.raises(DataError, match="invalid UTF-8 at byte 8"):
        list(iter_json_array(broken, "demo") or [])
