"""`tunelab data convert`: a spreadsheet or JSON file with arbitrary column names -> alpaca or sharegpt rows."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from pathlib import Path
from tunelab.data.errors import DataError
from tunelab.data.read import Row
from tunelab.data.tools.files import check_writable, listing, load_rows, parse_pairs, write_rows
from tunelab.runtime.suggest import suggest

FIELDS = ("instruction", "input", "output", "system", "history")
REQUIRED = ("instruction", "output")
TARGETS = ("alpaca", "sharegpt")
Parts = dict[str, str | list[list[str]]]  # a row's mapped fields: cell text, and history as [question, answer] pairs


@dataclass
class Table:
    """Rows of the input with the numbers a user sees for them (Excel row numbers for a sheet)."""

    rows: list[Row]
    columns: list[str]
    numbers: list[int]
    where: str
    row_word: str = "row"


@dataclass
class ConvertReport:
    """What convert did: rows written, and the rows whose output was empty."""

    written: int
    empty_output: list[int] = field(default_factory=list)
    row_word: str = "row"


def parse_map(items: list[str]) -> dict[str, str]:
    """'instruction=问题,output=答案' (one or more --map values) -> {field: column}; instruction and output required."""
    mapping = parse_pairs(items, FIELDS, "--map", "instruction=问题,output=答案")
    missing = [key for key in REQUIRED if key not in mapping]
    if missing:
        raise DataError(f"--map has no {' and no '.join(missing)}",
                        fix="map both, e.g. --map instruction=问题,output=答案")
    return mapping


def read_table(path: Path, sheet: str | None) -> Table:
    """The input as a table: xlsx through openpyxl (one sheet), anything else through tunelab.data.read."""
    if path.suffix.lower() == ".xlsx":
        return read_xlsx(path, sheet)
    if sheet is not None:
        raise DataError("--sheet only applies to .xlsx files", file=str(path), fix="leave out --sheet")
    rows = load_rows(path)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    return Table(rows, columns, list(range(1, len(rows) + 1)), str(path))


def read_xlsx(path: Path, sheet: str | None) -> Table:
    """One sheet (the first unless named): the first non-blank row is the header; blank rows are skipped."""
    if not path.exists():
        raise DataError("file not found", file=str(path), fix="check the path")
    try:
        import openpyxl
    except ImportError:
        raise DataError("reading .xlsx needs openpyxl", file=str(path), fix="pip install openpyxl") from None
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile, KeyError and its own errors for broken files
        raise DataError(f"not a readable .xlsx workbook ({exc})", file=str(path),
                        fix="open it in Excel and save it again as .xlsx") from None
    try:
        sheet_name = pick_sheet(book.sheetnames, sheet, path)
        worksheet = book[sheet_name]
        worksheet.reset_dimensions()  # some writers record a wrong sheet size; read every row there is
        lines = list(worksheet.iter_rows(values_only=True))
    finally:
        book.close()
    where = f"{path} (sheet {sheet_name})"
    return sheet_table(lines, where)


def pick_sheet(names: list[str], sheet: str | None, path: Path) -> str:
    """The sheet by name, or by 1-based position when given as a number; default the first."""
    if sheet is None:
        return names[0]
    if sheet in names:
        return sheet
    if sheet.isdigit() and 1 <= int(sheet) <= len(names):
        return names[int(sheet) - 1]
    raise DataError(f"no sheet {sheet!r}{suggest(sheet, names)}", file=str(path),
                    fix=f"use one of: {', '.join(names)}")


def sheet_table(lines: list[tuple[object, ...]], where: str) -> Table:
    """Rows of dicts from a sheet's value tuples; headers are text, duplicates get '.1', '.2' like pandas."""
    numbered = [(number, line) for number, line in enumerate(lines, start=1)
                if any(cell_text(value).strip() for value in line)]
    if not numbered:
        raise DataError("the sheet is empty", file=where, fix="choose another sheet with --sheet")
    (_, header_line), body = numbered[0], numbered[1:]
    columns: list[str] = []
    for position, value in enumerate(header_line):
        name = cell_text(value).strip() or column_letter(position)
        base, count = name, 0
        while name in columns:
            count += 1
            name = f"{base}.{count}"
        columns.append(name)
    rows = [{name: line[i] if i < len(line) else None for i, name in enumerate(columns)} for _, line in body]
    return Table(rows, columns, [number for number, _ in body], where, row_word="sheet row")


def column_letter(position: int) -> str:
    """0 -> 'A', 26 -> 'AA': the name of a column whose header cell is blank."""
    letters = ""
    position += 1
    while position:
        position, rest = divmod(position - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def cell_text(value: object) -> str:
    """A cell as text: blank -> '', 12.0 -> '12' (Excel stores integers as floats), dates as ISO text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime.datetime) and value.time() == datetime.time():
        return value.date().isoformat()
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def check_columns(mapping: dict[str, str], table: Table) -> None:
    """Every mapped column exists; otherwise name it, list the real columns and suggest the closest."""
    for key, column in mapping.items():
        if column in table.columns:
            continue
        stripped = [c for c in table.columns if c.strip() == column.strip()]
        hint = f"; did you mean {stripped[0]!r}?" if stripped else suggest(column, table.columns)
        raise DataError(f"--map {key}={column} names no column {column!r}; the columns are: "
                        f"{', '.join(table.columns)}{hint}", file=table.where, fix="correct the --map")


def history_pairs(value: object, number: int, table: Table, column: str) -> list[list[str]]:
    """A history cell: a list of [question, answer] pairs, or that list as JSON text; blank -> []."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            pass
    if isinstance(value, list) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in value):
        return [[cell_text(q), cell_text(a)] for q, a in value]
    raise DataError(f"{table.row_word} {number}, column {column}: history must be a JSON list of "
                    "[question, answer] pairs", file=table.where,
                    fix='write it like [["hi", "hello"]], or leave the cell blank')


def alpaca_row(parts: Parts) -> Row:
    """The alpaca record: instruction, input, output, then system and history when mapped."""
    return {key: parts[key] for key in FIELDS if key in parts}


def sharegpt_row(parts: Parts) -> Row:
    """The sharegpt record: history turns, then instruction (+ newline + input) and output; system when mapped."""
    turns = []
    for question, answer in parts.get("history", []):
        turns += [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]
    prompt = "\n".join(text for text in (parts["instruction"], parts["input"]) if text)
    turns += [{"from": "human", "value": prompt}, {"from": "gpt", "value": parts["output"]}]
    row: Row = {"conversations": turns}
    if "system" in parts:
        row["system"] = parts["system"]
    return row


def convert(path: Path, to: str, mapping: dict[str, str], out: Path, sheet: str | None = None,
            keep_empty: bool = False) -> ConvertReport:
    """Read, map columns, write alpaca or sharegpt rows to out; rows with an empty output are left out unless kept."""
    if to not in TARGETS:
        raise DataError(f"unknown target format {to!r}{suggest(to, TARGETS)}", fix="use alpaca or sharegpt")
    check_writable(out)
    if out.suffix.lower() == ".csv":
        raise DataError("convert writes .json or .jsonl", file=str(out), fix="name the output .json or .jsonl")
    table = read_table(path, sheet)
    check_columns(mapping, table)
    records, empty = [], []
    for number, row in zip(table.numbers, table.rows):
        parts: Parts = {"input": ""}
        for key, column in mapping.items():
            value = row.get(column)
            parts[key] = history_pairs(value, number, table, column) if key == "history" else cell_text(value)
        if not parts["output"].strip():
            empty.append(number)
            if not keep_empty:
                continue
        records.append(alpaca_row(parts) if to == "alpaca" else sharegpt_row(parts))
    if not records:
        raise DataError(f"no rows to write: all {len(table.rows)} have an empty output "
                        f"(column {mapping['output']})", file=table.where,
                        fix="check --map output=..., or pass --keep-empty")
    write_rows(out, records)
    return ConvertReport(len(records), empty, table.row_word)


def describe(report: ConvertReport, out: Path, to: str, keep_empty: bool) -> list[str]:
    """The lines convert prints."""
    lines = [f"wrote {report.written} rows to {out} ({to})"]
    if report.empty_output:
        fate = "kept (--keep-empty)" if keep_empty else "not written; pass --keep-empty to keep them"
        lines.append(f"{len(report.empty_output)} rows with an empty output, {fate}: "
                     f"{report.row_word}s {listing(report.empty_output)}")
    return lines
