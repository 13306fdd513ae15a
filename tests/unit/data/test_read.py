"""Reading data files: rows in order, errors that name the file and the line or row."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from tunelab.data.errors import DataError
from tunelab.data.read import iter_rows, read_rows


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
    write(folder, "b.csv", "n\n2\n")
    with pytest.raises(DataError) as excinfo:
        read_rows(folder, "ds")
    assert "mixes file types (.csv, .json)" in str(excinfo.value) and "dataset 'ds'" in str(excinfo.value)


def test_a_folder_may_mix_json_and_jsonl_as_llamafactory_does(tmp_path: Path) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    write(folder, "a.json", '[{"n": 1}]')
    write(folder, "b.jsonl", '{"n": 2}\n')
    assert read_rows(folder, "ds") == [{"n": 1}, {"n": 2}]


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
    path = write(tmp_path, "d.docx", "hello")
    with pytest.raises(DataError) as excinfo:
        read_rows(path, "ds")
    assert str(excinfo.value) == (f"dataset 'ds' ({path}): cannot read .docx files; convert it to one of: json, jsonl, "
                                  "csv, parquet, arrow, txt, xlsx")


def test_csv_cells_may_hold_newlines(tmp_path: Path) -> None:
    text = csv_text([["instruction", "output"], ["first line\nsecond line", "a,b"], ["x", 'say "hi"\r\nbye']])
    rows = read_rows(write(tmp_path, "d.csv", text), "ds")
    assert rows == [{"instruction": "first line\nsecond line", "output": "a,b"},
                    {"instruction": "x", "output": 'say "hi"\r\nbye'}]


def test_csv_cells_with_unicode_line_separators_stay_one_row(tmp_path: Path) -> None:
    text = csv_text([["instruction", "output"], ["first\u2028second", "page\x0cbreak"]])
    rows = read_rows(write(tmp_path, "d.csv", text), "ds")
    assert rows == [{"instruction": "first\u2028second", "output": "page\x0cbreak"}]


# ---- the other file types: round trips through the libraries that write them ----

ROWS = [{"instruction": "你好\nworld", "input": "", "output": "a,b \"c\""},
        {"instruction": "second", "input": "x", "output": "done"}]


def test_parquet_round_trip(tmp_path: Path) -> None:
    import pandas as pd

    path = tmp_path / "d.parquet"
    pd.DataFrame(ROWS).to_parquet(path)
    assert read_rows(path, "ds") == ROWS


def test_parquet_keeps_nested_lists_and_reads_in_batches(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"conversations": [{"from": "human", "value": f"q{i}"}, {"from": "gpt", "value": f"a{i}"}]}
            for i in range(2500)]
    path = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=1000)
    lazy = iter_rows(path, "ds")
    assert next(lazy) == rows[0]
    assert [rows[0], *lazy] == rows


def test_arrow_file_written_by_datasets_save_to_disk(tmp_path: Path) -> None:
    from datasets import Dataset

    Dataset.from_list(ROWS).save_to_disk(str(tmp_path / "saved"))
    arrow_files = sorted((tmp_path / "saved").glob("*.arrow"))
    assert len(arrow_files) == 1
    assert read_rows(arrow_files[0], "ds") == ROWS


def test_arrow_random_access_file_format(tmp_path: Path) -> None:
    import pyarrow as pa

    path = tmp_path / "d.arrow"
    table = pa.Table.from_pylist(ROWS)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    assert read_rows(path, "ds") == ROWS


def test_a_file_that_is_not_arrow_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "d.arrow", "not arrow at all")
    with pytest.raises(DataError, match=r"not an Arrow IPC file .*use the \.arrow files that datasets' save_to_disk"):
        read_rows(path, "ds")


def test_txt_gives_one_text_row_per_line_like_the_datasets_text_loader(tmp_path: Path) -> None:
    path = write(tmp_path, "d.txt", "\ufefffirst line\r\n\nthird\rfourth\u2028same line\n".encode())
    assert read_rows(path, "ds") == [{"text": "first line"}, {"text": ""}, {"text": "third"},
                                     {"text": "fourth\u2028same line"}]


def test_txt_rows_equal_datasets_text_loader(tmp_path: Path) -> None:
    from datasets import load_dataset

    path = write(tmp_path, "d.txt", "a\r\nb\n\n  c  \n\x0cd\ne")
    expected = load_dataset("text", data_files=str(path), split="train", cache_dir=str(tmp_path / "cache")).to_list()
    assert read_rows(path, "ds") == expected


def test_jsonl_strings_may_hold_unicode_line_separators(tmp_path: Path) -> None:
    rows = [{"a": "one\u2028two\x0cthree\x85"}, {"a": "next"}]
    path = write(tmp_path, "d.jsonl", "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    assert read_rows(path, "ds") == rows


def test_json_object_file_is_one_row_as_datasets_reads_it(tmp_path: Path) -> None:
    data = {"instruction": ["a", "b"], "output": ["c", "d"]}
    path = write(tmp_path, "d.json", json.dumps(data, indent=2))
    assert read_rows(path, "ds") == [data]


def test_invalid_utf8_in_jsonl_names_byte_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "d.jsonl", b'{"a": "ok"}\n{"a": "caf\xe9"}\n')
    with pytest.raises(DataError) as excinfo:
        read_rows(path, "ds")
    assert str(excinfo.value) == f"dataset 'ds' ({path}): invalid UTF-8 at byte 22 (line 2); save the file as UTF-8"


def test_invalid_utf8_in_csv_and_txt_is_named(tmp_path: Path) -> None:
    for name in ("d.csv", "d.txt"):
        path = write(tmp_path, name, b"instruction,output\nq,ok\n\xff,x\n")
        with pytest.raises(DataError, match=r"invalid UTF-8 at byte 24 \(line 3\); save the file as UTF-8"):
            read_rows(path, "ds")


def test_iter_rows_is_lazy_for_jsonl(tmp_path: Path) -> None:
    path = write(tmp_path, "d.jsonl", '{"a": 1}\n{"a": 2}\n{broken\n')
    rows = iter_rows(path, "ds")
    assert next(rows) == {"a": 1} and next(rows) == {"a": 2}
    with pytest.raises(DataError, match="line 3 is not valid JSON"):
        next(rows)


def test_iter_rows_checks_every_file_type_of_a_folder_first(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read .docx files"):
        iter_rows(write(tmp_path, "d.docx", "x"), "ds")


def test_a_folder_of_parquet_files_is_read_in_name_order(tmp_path: Path) -> None:
    import pandas as pd

    folder = tmp_path / "shards"
    folder.mkdir()
    pd.DataFrame(ROWS[1:]).to_parquet(folder / "train-00001.parquet")
    pd.DataFrame(ROWS[:1]).to_parquet(folder / "train-00000.parquet")
    assert read_rows(folder, "ds") == ROWS


def test_an_empty_folder_is_named(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no data files"):
        read_rows(tmp_path / "empty", "ds")


# ---- xlsx ----

def write_xlsx(path: Path, sheets: dict[str, list[list[Any]]]) -> Path:
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


def test_xlsx_chinese_headers_and_cells_with_newlines(tmp_path: Path) -> None:
    sheet = [["指令", "输出"], ["第一行\n第二行", "答案"], ["问", "多行\n回答\n"]]
    path = write_xlsx(tmp_path / "d.xlsx", {"数据": sheet})
    assert read_rows(path, "ds") == [{"指令": "第一行\n第二行", "输出": "答案"},
                                     {"指令": "问", "输出": "多行\n回答\n"}]


def test_xlsx_first_sheet_by_default_and_a_sheet_by_name(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "d.xlsx", {"train": [["instruction", "output"], ["a", "b"]],
                                            "eval": [["instruction", "output"], ["c", "d"], [None, None]]})
    assert read_rows(path, "ds") == [{"instruction": "a", "output": "b"}]
    assert read_rows(path, "ds", sheet="eval") == [{"instruction": "c", "output": "d"}]


def test_xlsx_unknown_sheet_lists_the_sheets(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "d.xlsx", {"train": [["a"], ["b"]], "eval": [["a"], ["c"]]})
    with pytest.raises(DataError) as excinfo:
        read_rows(path, "ds", sheet="test")
    assert str(excinfo.value) == f"dataset 'ds' ({path}): no sheet named 'test'; use one of: train, eval"


def test_xlsx_numbers_and_blank_cells_keep_their_values(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "d.xlsx", {"s": [["instruction", "output", "score"], ["a", None, 3], ["b", "x"]]})
    assert read_rows(path, "ds") == [{"instruction": "a", "output": None, "score": 3},
                                     {"instruction": "b", "output": "x", "score": None}]


def test_xlsx_value_under_an_unnamed_column_is_an_error(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "d.xlsx", {"s": [["instruction", None, "output"], ["a", "lost?", "b"]]})
    with pytest.raises(DataError) as excinfo:
        read_rows(path, "ds")
    assert "cell B2 has a value but column B has no name in row 1; name column B in row 1, or clear it" in str(
        excinfo.value)


def test_xlsx_repeated_column_names_are_an_error(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "d.xlsx", {"s": [["output", "output"], ["a", "b"]]})
    with pytest.raises(DataError, match="column names repeat in row 1: output"):
        read_rows(path, "ds")


def test_a_broken_xlsx_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "d.xlsx", b"PK not really a zip")
    with pytest.raises(DataError, match=r"not a readable \.xlsx workbook"):
        read_rows(path, "ds")
