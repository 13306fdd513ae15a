"""Read a dataset file into a list of row dicts; errors name the file and the line or row."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from tunelab.data.errors import DataError

READERS_DOC = "json, jsonl, csv"


def read_rows(path: Path, dataset: str) -> list[dict[str, Any]]:
    """All rows of one file (or of every same-type file in a folder), in order."""
    files = folder_files(path, dataset) if path.is_dir() else [path]
    rows: list[dict[str, Any]] = []
    for file in files:
        rows.extend(read_file(file, dataset))
    return rows


def folder_files(folder: Path, dataset: str) -> list[Path]:
    """The data files of a folder (other files such as a README are left alone); all of one type."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower().lstrip(".") in READERS)
    types = sorted({p.suffix.lower() for p in files})
    if not files:
        raise DataError(f"the folder {folder} holds no data files ({READERS_DOC})", dataset=dataset)
    if len(types) > 1:
        raise DataError(f"the folder {folder} mixes file types ({', '.join(types)})", dataset=dataset,
                        fix="keep one type per dataset folder")
    return files


def read_file(path: Path, dataset: str) -> list[dict[str, Any]]:
    """Rows of one file, chosen by its extension."""
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in READERS:
        raise DataError(f"cannot read .{suffix} files", dataset=dataset, file=str(path),
                        fix=f"convert it to one of: {READERS_DOC}")
    text = read_text(path, dataset)
    rows = READERS[suffix](text, path, dataset)
    for index, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise DataError(f"expected an object with named fields, got {type(row).__name__}", dataset=dataset,
                            file=str(path), row=index, fix="each row must be a JSON object")
    return rows


def read_text(path: Path, dataset: str) -> str:
    """The file as UTF-8 text (a leading BOM is dropped); bad bytes are reported with their line."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(f"invalid UTF-8 at byte {exc.start} (line {line})", dataset=dataset, file=str(path),
                        fix="save the file as UTF-8") from None


def read_json(text: str, path: Path, dataset: str) -> list[Any]:
    """A JSON array of rows (a JSON-lines file with a .json name is read as JSON lines)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if looks_like_json_lines(text):
            return read_jsonl(text, path, dataset)
        raise DataError(f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", dataset=dataset,
                        file=str(path), fix="fix the JSON syntax") from None
    if isinstance(data, dict):
        return [data]
    if not isinstance(data, list):
        raise DataError("a JSON data file must hold a list of rows", dataset=dataset, file=str(path))
    return data


def looks_like_json_lines(text: str) -> bool:
    """True when the first non-blank line is a whole JSON object by itself (JSON lines under a .json name)."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    try:
        return isinstance(json.loads(first), dict)
    except json.JSONDecodeError:
        return False


def read_jsonl(text: str, path: Path, dataset: str) -> list[Any]:
    """One JSON object per line; blank lines are allowed."""
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise DataError(f"line {number} is not valid JSON (column {exc.colno}: {exc.msg})", dataset=dataset,
                            file=str(path), fix="fix or remove that line") from None
    return rows


def read_csv(text: str, path: Path, dataset: str) -> list[dict[str, Any]]:
    """CSV with a header row; cells may hold newlines inside quotes."""
    return [dict(row) for row in csv.DictReader(io.StringIO(text, newline=""))]


READERS = {"json": read_json, "jsonl": read_jsonl, "csv": read_csv}
