"""`tunelab data convert`: a spreadsheet or JSON file with arbitrary column names -> alpaca or sharegpt rows."""

from __future__ import annotations

import datetime
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tunelab.data.errors import DataError
from tunelab.data.read import Row
from tunelab.data.tools.convert_rules import Condition, Extraction, Rules, check_names
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
    """What convert did: rows written, rows filtered out, rows the --extract patterns missed, empty outputs."""

    written: int
    empty_output: list[int] = field(default_factory=list)
    row_word: str = "row"
    filtered: int = 0
    unmatched: list[int] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    extract_columns: list[str] = field(default_factory=list)


def parse_map(items: list[str], provided: Collection[str] = ()) -> dict[str, str]:
    """'instruction=问题,output=答案' (one or more --map values) -> {field: column}; instruction and output are
    required unless `provided` (the fields --set and --template give) has them; no field is given twice."""
    mapping = parse_pairs(items, FIELDS, "--map", "instruction=问题,output=答案")
    twice = sorted(set(mapping) & set(provided))
    if twice:
        raise DataError(f"{twice[0]} is given by --map and by --set or --template", fix="give each field once")
    missing = [key for key in REQUIRED if key not in mapping and key not in provided]
    if missing:
        fix = "map both, e.g. --map instruction=问题,output=答案, or give them" if len(missing) == 2 else \
            f"map it, e.g. --map {missing[0]}=COLUMN, or give it"
        raise DataError(f"--map has no {' and no '.join(missing)}", fix=f"{fix} with --set or --template")
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
            keep_empty: bool = False, rules: Rules | None = None) -> ConvertReport:
    """Read, filter, extract, map columns and fill fields, write alpaca or sharegpt rows to out; rows with an empty
    output, or that an --extract pattern misses, are left out unless kept."""
    if to not in TARGETS:
        raise DataError(f"unknown target format {to!r}{suggest(to, TARGETS)}", fix="use alpaca or sharegpt")
    rules = rules or Rules()
    check_writable(out)
    if out.suffix.lower() == ".csv":
        raise DataError("convert writes .json or .jsonl", file=str(out), fix="name the output .json or .jsonl")
    table = read_table(path, sheet)
    check_names(rules, mapping, table.columns, table.where)
    report = ConvertReport(0, row_word=table.row_word, conditions=[str(c) for c in rules.conditions],
                           extract_columns=list(dict.fromkeys(e.column for e in rules.extractions)))
    ruled = rules != Rules()
    needed = used_columns(mapping, rules, table.columns)
    records = []
    for number, row in zip(table.numbers, table.rows):
        values = rule_values(rules, needed, row, number, report) if ruled else {}
        if values is None:
            continue
        parts = row_parts(mapping, rules, row, values, number, table)
        if not parts["output"].strip():
            report.empty_output.append(number)
            if not keep_empty:
                continue
        records.append(alpaca_row(parts) if to == "alpaca" else sharegpt_row(parts))
    if not records:
        raise nothing_to_write(report, len(table.rows), mapping, table.where)
    write_rows(out, records)
    report.written = len(records)
    return report


def used_columns(mapping: Mapping[str, str], rules: Rules, columns: list[str]) -> list[str]:
    """The columns the rules read, and the mapped ones: their cells as text (history cells are read as pairs)."""
    names = {column for key, column in mapping.items() if key != "history"}
    names |= {e.column for e in rules.extractions} | {c.name for c in rules.conditions}
    names |= {name for template in rules.templates.values() for name in template.names()}
    return [column for column in columns if column in names]


def rule_values(rules: Rules, needed: list[str], row: Row, number: int, report: ConvertReport) -> dict[str, str] | None:
    """The row's cells and extracted fields as text, or None when a condition or a pattern drops the row (counted)."""
    values = {name: cell_text(row.get(name)) for name in needed}
    # conditions on columns come first, so a row they drop is not reported as unmatched
    if not passes([c for c in rules.conditions if c.name in values], values):
        report.filtered += 1
        return None
    if not extract(rules.extractions, values):
        report.unmatched.append(number)
        if not rules.keep_unmatched:
            return None
    if not passes(rules.conditions, values):  # now the conditions on extracted fields too
        report.filtered += 1
        return None
    return values


def passes(conditions: list[Condition], values: Mapping[str, str]) -> bool:
    """Whether a row meets every condition (they are ANDed)."""
    return all(condition.holds(values[condition.name]) for condition in conditions)


def extract(extractions: list[Extraction], values: dict[str, str]) -> bool:
    """Add each pattern's named groups to values ('' where it is not found); False when any is not found."""
    matched = True
    for extraction in extractions:
        found = extraction.apply(values[extraction.column])
        if found is None:
            matched, found = False, dict.fromkeys(extraction.fields(), "")
        values.update(found)
    return matched


def row_parts(mapping: Mapping[str, str], rules: Rules, row: Row, values: Mapping[str, str], number: int,
              table: Table) -> Parts:
    """A row's fields: mapped columns or extracted fields, then the --set texts and the filled templates."""
    parts: Parts = {"input": ""}
    for key, column in mapping.items():
        if key == "history":
            cell = row.get(column) if column in table.columns else values[column]
            parts[key] = history_pairs(cell, number, table, column)
        else:  # a column the rules do not read is not in values (the common case: plain mapping)
            parts[key] = values[column] if column in values else cell_text(row.get(column))
    if rules.fixed or rules.templates:
        parts.update(rules.fixed)
        parts.update({key: template.render(values) for key, template in rules.templates.items()})
    return parts


def nothing_to_write(report: ConvertReport, total: int, mapping: Mapping[str, str], where: str) -> DataError:
    """The error for a run that would write no row, with the count of each reason and its fix."""
    if not report.filtered and not report.unmatched:
        column = f" (column {mapping['output']})" if "output" in mapping else ""
        return DataError(f"no rows to write: all {total} have an empty output{column}", file=where,
                         fix="check --map output=..., or pass --keep-empty")
    reasons, fixes = [], []
    if report.filtered:
        reasons.append(f"{report.filtered} filtered out by --where")
        fixes.append("check the --where conditions")
    if report.unmatched:
        reasons.append(f"{len(report.unmatched)} not matched by --extract ({report.row_word}s "
                       f"{listing(report.unmatched)})")
        fixes.append("check the --extract patterns against those rows, or pass --keep-unmatched")
    if report.empty_output:
        reasons.append(f"{len(report.empty_output)} with an empty output")
        fixes.append("pass --keep-empty")
    return DataError(f"no rows to write: of {total} rows, {', '.join(reasons)}", file=where, fix="; ".join(fixes))


def describe(report: ConvertReport, out: Path, to: str, keep_empty: bool, keep_unmatched: bool = False) -> list[str]:
    """The lines convert prints."""
    lines = [f"wrote {report.written} rows to {out} ({to})"]
    if report.conditions:
        lines.append(f"{report.filtered} rows filtered out by --where {' and '.join(report.conditions)}")
    if report.extract_columns:
        line = f"{len(report.unmatched)} rows not matched by --extract {', '.join(report.extract_columns)}"
        if report.unmatched:
            fate = "kept (--keep-unmatched)" if keep_unmatched else "not written; pass --keep-unmatched to keep them"
            line += f", {fate}: {report.row_word}s {listing(report.unmatched)}"
        lines.append(line)
    if report.empty_output:
        fate = "kept (--keep-empty)" if keep_empty else "not written; pass --keep-empty to keep them"
        lines.append(f"{len(report.empty_output)} rows with an empty output, {fate}: "
                     f"{report.row_word}s {listing(report.empty_output)}")
    return lines
