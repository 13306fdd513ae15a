"""Rows of named cells as Markdown, CSV and the console: the one table layout of sweeps and run comparisons."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from tunelab.sweep.naming import number_text

Cell = str | int | float | bool | None
Row = dict[str, Cell]


def cell_text(value: Cell) -> str:
    """A cell as shown: floats to four significant digits, durations and counts as they are, '-' for none."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return number_text(value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def columns(rows: Sequence[Row], first: Sequence[str] = ()) -> list[str]:
    """Every column of the rows, the given ones first, the rest in the order they appear."""
    names = list(first)
    for row in rows:
        names += [key for key in row if key not in names]
    return names


def markdown(rows: Sequence[Row], names: Sequence[str]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    lines += ["| " + " | ".join(cell_text(row.get(name)) for name in names) + " |" for row in rows]
    return "\n".join(lines)


def csv_text(rows: Sequence[Row], names: Sequence[str]) -> str:
    """The rows as CSV, values unformatted (floats in full)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(names), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({name: "" if row.get(name) is None else row.get(name) for name in names})
    return out.getvalue()


def print_rows(rows: Sequence[Row], names: Sequence[str], title: str) -> None:
    """The table on the console."""
    from rich.table import Table

    from tunelab.runtime.logging import console

    table = Table(title=title)
    for name in names:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*(cell_text(row.get(name)) for name in names))
    console.print(table)


def transposed(rows: Sequence[Row], names: Sequence[str], key: str) -> tuple[list[Row], list[str]]:
    """One row per column name and one column per row (named by its `key` cell): a comparison of a few wide rows
    reads down the page."""
    labels = [cell_text(row.get(key)) for row in rows]
    out: list[Row] = [{"": name, **{label: row.get(name) for label, row in zip(labels, rows)}}
                      for name in names if name != key]
    return out, ["", *labels]
