"""DataError text: where (dataset, file, row, field), what, and the fix."""

from __future__ import annotations

from tunelab.data.errors import DataError


def test_every_part() -> None:
    error = DataError("two 'gpt' turns in a row", dataset="esg", file="data/esg.json", row=1312,
                      field="conversations[3].from", fix="merge them, or set on_bad_row: skip")
    assert str(error) == ("dataset 'esg' (data/esg.json), row 1312, field conversations[3].from: two 'gpt' turns in "
                          "a row; merge them, or set on_bad_row: skip")


def test_file_without_dataset() -> None:
    assert str(DataError("bad", file="x.json", row=0)) == "x.json, row 0: bad"


def test_problem_alone() -> None:
    assert str(DataError("no rows")) == "no rows"
    assert str(DataError("no rows", fix="add some")) == "no rows; add some"
