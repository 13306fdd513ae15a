"""Column mapping, cell text and the alpaca/sharegpt shapes of `tunelab data convert`."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

from tunelab.data.errors import DataError
from tunelab.data.tools.convert import cell_text, column_letter, convert, parse_map, sheet_table


def test_cell_text_drops_integer_float_artefacts() -> None:
    assert [cell_text(v) for v in (None, 12.0, 2.5, 7, True, "a\nb")] == ["", "12", "2.5", "7", "TRUE", "a\nb"]
    assert cell_text(datetime.datetime(2024, 5, 1)) == "2024-05-01"


def test_parse_map_accepts_repeats_and_rejects_unknown_fields() -> None:
    assert parse_map(["instruction=问题", "output=答案,system=系统"]) == {"instruction": "问题", "output": "答案",
                                                                     "system": "系统"}
    with pytest.raises(DataError, match="unknown key 'instuction'; did you mean instruction"):
        parse_map(["instuction=问题,output=答案"])
    with pytest.raises(DataError, match="--map has no output"):
        parse_map(["instruction=问题"])


def test_sheet_table_skips_blank_rows_and_names_blank_headers() -> None:
    table = sheet_table([(None, None, None), ("q", None, "q"), ("a", "b", "c"), (None, None, None), ("d", "", "f")],
                        "x.xlsx")
    assert table.columns == ["q", "B", "q.1"]
    assert table.numbers == [3, 5] and table.rows[1] == {"q": "d", "B": "", "q.1": "f"}
    assert column_letter(26) == "AA"


def test_sharegpt_folds_history_and_input_into_turns(tmp_path: Path) -> None:
    source = tmp_path / "in.json"
    source.write_text(json.dumps([{"q": "Q", "ctx": "C", "a": "A", "h": [["h1", "a1"]], "s": "sys"}]), encoding="utf-8")
    out = tmp_path / "out.json"
    convert(source, "sharegpt", parse_map(["instruction=q,input=ctx,output=a,history=h,system=s"]), out)
    assert json.loads(out.read_text(encoding="utf-8")) == [{"conversations": [
        {"from": "human", "value": "h1"}, {"from": "gpt", "value": "a1"},
        {"from": "human", "value": "Q\nC"}, {"from": "gpt", "value": "A"}], "system": "sys"}]


def test_history_text_must_be_pairs(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("q,a,h\nQ,A,not json\n", encoding="utf-8")
    with pytest.raises(DataError, match="row 1, column h: history must be a JSON list"):
        convert(source, "alpaca", parse_map(["instruction=q,output=a,history=h"]), tmp_path / "o.json")
