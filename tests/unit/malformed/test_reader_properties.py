"""Property tests of the readers (Hypothesis): any bytes, and any damage to a valid file, either read as rows whose
text round-trips through the same format, or fail with a DataError naming the file; never another exception."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.malformed.cases import WRITERS, alpaca_rows, sharegpt_rows
from tunelab.data.errors import DataError
from tunelab.data.read import read_rows

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
JSONISH = st.text(alphabet='{}[]",:0123456789.eE+-truefalsn \n\t\\abcé中\ud7ff', max_size=80)
CSVISH = st.text(alphabet='ab,"\n\r é中x ', max_size=80)


def read_or_error(path: Path) -> list[dict[str, object]] | None:
    """The rows, or None after checking that the error names the file."""
    try:
        return read_rows(path, "demo")
    except DataError as exc:
        assert exc.file == str(path) and str(path) in str(exc), exc
        return None


def round_trip(path: Path, rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """The rows written back in path's format and read again."""
    again = path.with_name("again" + path.suffix)
    if path.suffix == ".csv":
        names = list(rows[0]) if rows else []
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, names, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        again.write_text(buffer.getvalue() if rows else "", encoding="utf-8")
    elif path.suffix == ".txt":
        again.write_text("".join(f"{row['text']}\n" for row in rows), encoding="utf-8")
    elif path.suffix == ".jsonl":
        again.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    else:
        again.write_text(json.dumps(rows), encoding="utf-8")
    return read_rows(again, "demo")


def same(left: list[dict[str, object]], right: list[dict[str, object]]) -> bool:
    return json.dumps(left, sort_keys=True) == json.dumps(right, sort_keys=True)  # NaN equals NaN here


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".csv", ".txt"])
@SETTINGS
@given(data=st.one_of(st.binary(max_size=120), JSONISH.map(str.encode), CSVISH.map(str.encode)))
def test_text_readers_any_bytes(suffix: str, data: bytes, tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("any") / f"demo{suffix}"
    try:
        path.write_bytes(data)
    except UnicodeEncodeError:
        return
    rows = read_or_error(path)
    if rows is not None:
        header_only = suffix == ".csv" and not rows
        assert header_only or same(round_trip(path, rows), rows)


@pytest.mark.parametrize("reader", list(WRITERS))
@SETTINGS
@given(cut=st.floats(0, 1), flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=3))
def test_damaged_files(reader: str, cut: float, flips: list[tuple[float, int]],
                       tmp_path_factory: pytest.TempPathFactory) -> None:
    """A valid file truncated and with a few bytes changed: rows, or an error naming the file."""
    folder = tmp_path_factory.mktemp("damaged")
    path = folder / f"demo.{reader}"
    WRITERS[reader](alpaca_rows() if reader in ("csv", "xlsx") else sharegpt_rows() + alpaca_rows(), path)
    data = bytearray(path.read_bytes())
    for where, value in flips:
        data[int(where * (len(data) - 1))] = value
    path.write_bytes(bytes(data[: max(1, int(cut * len(data)))]))
    rows = read_or_error(path)
    if rows is not None and reader in ("json", "jsonl", "csv"):
        assert same(round_trip(path, rows), rows)
