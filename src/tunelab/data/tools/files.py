"""Reading and writing the row files the data tools work on (json, jsonl, csv by extension)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from tunelab.data.errors import DataError
from tunelab.data.read import Row, read_rows
from tunelab.runtime.atomic import write_text_atomic
from tunelab.runtime.suggest import suggest

WRITABLE = (".json", ".jsonl", ".csv")


def load_rows(path: Path) -> list[Row]:
    """Every row of a data file; a missing or empty file is an error naming it."""
    if not path.exists():
        raise DataError("file not found", file=str(path), fix="check the path")
    rows = read_rows(path, "")
    if not rows:
        raise DataError("the file holds no rows", file=str(path), fix="give a file with at least one row")
    return rows


def check_writable(path: Path) -> None:
    """Fail before any work when the output extension cannot be written."""
    if path.suffix.lower() not in WRITABLE:
        raise DataError(f"cannot write {path.suffix or 'extensionless'} files", file=str(path),
                        fix=f"name the output with one of: {', '.join(WRITABLE)}")


def write_rows(path: Path, rows: list[Row]) -> None:
    """Write rows by extension: .json as a pretty array, .jsonl one object a line, .csv with a header row."""
    check_writable(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".json":
        text = json.dumps(rows, ensure_ascii=False, indent=2) + "\n"
    elif suffix == ".jsonl":
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    else:
        text = csv_text(rows)
    write_text_atomic(path, text, newline="" if suffix == ".csv" else None)


def csv_text(rows: list[Row]) -> str:
    """CSV with the union of the rows' keys as header, in first-seen order; lists and objects as JSON."""
    header = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else v
                         for k, v in row.items()})
    return buffer.getvalue()


def listing(numbers: list[int], limit: int = 20) -> str:
    """'3, 8, 12' or '3, 8, ... (40 in all)' for row numbers in messages."""
    shown = ", ".join(str(n) for n in numbers[:limit])
    return shown + (f", ... ({len(numbers)} in all)" if len(numbers) > limit else "")


def parse_pairs(items: list[str], known: tuple[str, ...], flag: str, example: str,
                allow_empty: bool = False) -> dict[str, str]:
    """'a=x,b=y' (one or more flag values) -> {'a': 'x', 'b': 'y'}; unknown keys get a did-you-mean; with
    allow_empty, 'a=' gives '' (the caller's way to remove a key)."""
    pairs: dict[str, str] = {}
    for item in (part for text in items for part in text.split(",")):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or not (value.strip() or allow_empty):
            raise DataError(f"{flag} item {item!r} is not KEY=VALUE", fix=f"write e.g. {flag} {example}")
        if key not in known:
            raise DataError(f"{flag} names an unknown key {key!r}{suggest(key, known)}",
                            fix=f"use the keys {', '.join(known)}")
        pairs[key] = value.strip()
    return pairs
