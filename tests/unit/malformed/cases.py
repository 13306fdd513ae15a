"""Malformed inputs made by mutating valid ones: per format a valid seed (three rows and their dataset_info entry),
per reader a writer, and mutations of rows (delete a field, change a type, duplicate a key, reorder roles) and of
the file's bytes (truncate, invalid bytes, broken encoding, empty, ragged CSV lines)."""

from __future__ import annotations

import copy
import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

Row = dict[str, object]

TOOLS = json.dumps([{"name": "weather", "description": "Weather of a city",
                     "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}])


@dataclass(frozen=True)
class Format:
    """A dataset format: three valid rows, the dataset_info entry that reads them, and the stage that trains on them."""

    name: str
    rows: list[Row]
    entry: dict[str, object]
    stage: str
    required: str  # a field every row must have
    flat: bool  # only text cells: csv and xlsx can hold it
    roles: str | None = None  # the messages field whose order matters


def alpaca_rows() -> list[Row]:
    """Three alpaca rows."""
    return [{"instruction": f"Question {i}?", "input": "", "output": f"Answer {i}."} for i in range(1, 4)]


def sharegpt_rows() -> list[Row]:
    """Three sharegpt conversations."""
    return [{"conversations": [{"from": "human", "value": f"Question {i}?"}, {"from": "gpt", "value": f"Answer {i}."}]}
            for i in range(1, 4)]


def openai_rows() -> list[Row]:
    """Three OpenAI-style message lists with a system prompt."""
    return [{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"Question {i}?"},
                          {"role": "assistant", "content": f"Answer {i}."}]} for i in range(1, 4)]


def preference_rows() -> list[Row]:
    """Three ranking rows (chosen, rejected)."""
    return [{"instruction": f"Who are you {i}?", "input": "", "chosen": "I am tunelab.", "rejected": "I am a cat."}
            for i in range(1, 4)]


def kto_rows() -> list[Row]:
    """Three KTO rows, the second undesirable."""
    return [{"instruction": f"Who are you {i}?", "output": "I am tunelab.", "kto_tag": i != 2} for i in range(1, 4)]


def tool_rows() -> list[Row]:
    """Three sharegpt conversations with a function call, its observation and a tools column."""
    return [{"conversations": [{"from": "human", "value": f"Weather in city {i}?"},
                               {"from": "function_call", "value": json.dumps({"name": "weather",
                                                                              "arguments": {"city": f"c{i}"}})},
                               {"from": "observation", "value": "sunny"},
                               {"from": "gpt", "value": f"It is sunny in city {i}."}], "tools": TOOLS}
            for i in range(1, 4)]


OPENAI_TAGS = {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
               "system_tag": "system"}

FORMATS = [
    Format("alpaca", alpaca_rows(), {}, "sft", "output", flat=True),
    Format("sharegpt", sharegpt_rows(), {"formatting": "sharegpt"}, "sft", "conversations", flat=False,
           roles="conversations"),
    Format("openai", openai_rows(), {"formatting": "sharegpt", "columns": {"messages": "messages"},
                                     "tags": OPENAI_TAGS}, "sft", "messages", flat=False, roles="messages"),
    Format("preference", preference_rows(), {"ranking": True, "columns": {"prompt": "instruction", "query": "input",
                                                                          "chosen": "chosen", "rejected": "rejected"}},
           "dpo", "chosen", flat=True),
    Format("kto", kto_rows(), {"columns": {"prompt": "instruction", "response": "output", "kto_tag": "kto_tag"}},
           "kto", "kto_tag", flat=False),
    Format("tools", tool_rows(), {"formatting": "sharegpt", "columns": {"messages": "conversations",
                                                                        "tools": "tools"}},
           "sft", "conversations", flat=False, roles="conversations"),
]
FORMAT_BY_NAME = {fmt.name: fmt for fmt in FORMATS}


# ---- writers: rows -> file bytes, per reader ---------------------------------------------------------------------

def write_json(rows: list[Row], path: Path) -> None:
    """A JSON array, indented."""
    path.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")


def write_jsonl(rows: list[Row], path: Path) -> None:
    """One JSON object a line."""
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def write_csv(rows: list[Row], path: Path) -> None:
    """A header line and one line per row."""
    names = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, names, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")


def write_xlsx(rows: list[Row], path: Path) -> None:
    """One sheet: the names in row 1, then the rows."""
    from openpyxl import Workbook

    names = list(dict.fromkeys(key for row in rows for key in row))
    book = Workbook()
    sheet = book.active
    sheet.append(names)
    for row in rows:
        sheet.append([cell if not isinstance(cell, (dict, list)) else json.dumps(cell) for cell in
                      (row.get(name) for name in names)])
    book.save(path)


def write_parquet(rows: list[Row], path: Path) -> None:
    """A parquet table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)


def write_arrow(rows: list[Row], path: Path) -> None:
    """An Arrow IPC stream, as datasets' save_to_disk writes."""
    import pyarrow as pa

    table = pa.Table.from_pylist(rows)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)


WRITERS: dict[str, Callable[[list[Row], Path], None]] = {
    "json": write_json, "jsonl": write_jsonl, "csv": write_csv, "xlsx": write_xlsx, "parquet": write_parquet,
    "arrow": write_arrow}
TEXT_READERS = ("json", "jsonl", "csv")


def readers_for(fmt: Format) -> list[str]:
    """The readers a format can be stored in (csv and xlsx hold text cells only)."""
    return [name for name in WRITERS if fmt.flat or name not in ("csv", "xlsx")]


# ---- mutations ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """One malformed dataset: how to make it, and what the error must name."""

    id: str
    fmt: Format
    reader: str
    make: Callable[[Path], None]  # writes the file at the path given
    names: tuple[str, ...]  # each must appear in the message
    row_level: bool = True  # a bad row (skipped and counted under on_bad_row: skip), not a bad file
    skip_count: int = field(default=1)


def rows_case(fmt: Format, reader: str, mutation: str, rows: list[Row], names: tuple[str, ...],
              skip_count: int = 1) -> Case:
    """A case whose file holds the given rows."""
    def make(path: Path) -> None:
        WRITERS[reader](rows, path)
    return Case(f"{reader}-{fmt.name}-{mutation}", fmt, reader, make, names, skip_count=skip_count)


def row_mutations(fmt: Format, reader: str) -> list[Case]:
    """Row 2 of the seed changed: a required field deleted, typed wrong, nulled; conversations reordered."""
    cases = []
    deleted = copy.deepcopy(fmt.rows)
    del deleted[1][fmt.required]
    # parquet/arrow give a deleted field as null (one schema for all rows): the same check answers both
    cases.append(rows_case(fmt, reader, "delete-field", deleted, ("row 2", fmt.required)))
    if reader in ("json", "jsonl", "parquet", "arrow"):
        retyped = copy.deepcopy(fmt.rows)
        retyped[1][fmt.required] = {"text": "x"} if reader in ("json", "jsonl") else 7
        if reader in ("parquet", "arrow"):  # one column type for every row: type the column wrong for all rows
            retyped = [{**row, fmt.required: 7} for row in retyped]
            cases.append(rows_case(fmt, reader, "change-type", retyped, ("row 1", fmt.required),
                                   skip_count=len(retyped)))
        else:
            cases.append(rows_case(fmt, reader, "change-type", retyped, ("row 2", fmt.required)))
    columnar = reader in ("parquet", "arrow")  # one type per column: a wrong type goes into every row
    if fmt.name == "preference":
        emptied = copy.deepcopy(fmt.rows)
        emptied[1]["rejected"] = ""
        cases.append(rows_case(fmt, reader, "empty-side", emptied, ("row 2", "rejected")))
        same = copy.deepcopy(fmt.rows)
        same[1]["rejected"] = same[1]["chosen"]
        # identical sides teach nothing: refused by the pair checks (merged from the i15-data branch)
        cases.append(rows_case(fmt, reader, "identical-sides", same, ("row 2",)))
    if fmt.name == "kto":
        tagged = [{**row, "kto_tag": "yes"} if columnar or i == 1 else row for i, row in enumerate(fmt.rows)]
        cases.append(rows_case(fmt, reader, "string-tag", copy.deepcopy(tagged), ("row 1" if columnar else "row 2",
                               "kto_tag"), skip_count=3 if columnar else 1))
    if fmt.roles:
        reordered = copy.deepcopy(fmt.rows)
        messages = reordered[1][fmt.roles]
        assert isinstance(messages, list)
        messages.reverse()
        cases.append(rows_case(fmt, reader, "reorder-roles", reordered, ("row 2", fmt.roles)))
    return cases


def duplicate_key_case(fmt: Format, reader: str) -> Case:
    """Row 2 names its required field twice (the JSON text written by hand): the last value would win silently."""
    def make(path: Path) -> None:
        texts = [json.dumps(row, ensure_ascii=False) for row in fmt.rows]
        texts[1] = "{" + json.dumps(fmt.required) + ": null, " + texts[1][1:]
        text = "\n".join(texts) + "\n" if reader == "jsonl" else "[\n" + ",\n".join(texts) + "\n]\n"
        path.write_text(text, encoding="utf-8")
    return Case(f"{reader}-{fmt.name}-duplicate-key", fmt, reader, make, ("row 2", fmt.required), row_level=False)


def byte_cases(fmt: Format, reader: str) -> list[Case]:
    """The file's bytes broken: truncated, an invalid byte, another encoding, empty."""
    def truncated(path: Path) -> None:
        WRITERS[reader](fmt.rows, path)
        data = path.read_bytes()
        if reader == "csv":  # inside the last line's first cell: the line loses cells
            path.write_bytes(data[: data.rstrip(b"\n").rfind(b"\n") + 4])
            return
        path.write_bytes(data[: len(data) * 2 // 3 + 7])  # inside row 3, not at a line's end

    def invalid(path: Path) -> None:
        WRITERS[reader](fmt.rows, path)
        data = path.read_bytes()
        at = data.find(b"2")  # inside row 2 (or its question), after the header
        path.write_bytes(data[:at] + b"\xff\xfe" + data[at:])

    def utf16(path: Path) -> None:
        WRITERS[reader](fmt.rows, path)
        path.write_bytes(path.read_text(encoding="utf-8").encode("utf-16"))

    def empty(path: Path) -> None:
        path.write_bytes(b"")

    name = f"{reader}-{fmt.name}"
    cases = [Case(f"{name}-truncate", fmt, reader, truncated, (), row_level=False),
             Case(f"{name}-empty-file", fmt, reader, empty, (), row_level=False)]
    if reader in TEXT_READERS:
        cases += [Case(f"{name}-invalid-bytes", fmt, reader, invalid, ("line",), row_level=False),
                  Case(f"{name}-utf16", fmt, reader, utf16, (), row_level=False)]
    return cases


def ragged_cases(fmt: Format) -> list[Case]:
    """CSV lines with an unquoted comma (an extra cell) or a cell too few."""
    def extra(path: Path) -> None:
        write_csv(fmt.rows, path)
        lines = path.read_text(encoding="utf-8").split("\n")
        lines[2] += ",and more"  # line 3 = row 2
        path.write_text("\n".join(lines), encoding="utf-8")

    def missing(path: Path) -> None:
        write_csv(fmt.rows, path)
        lines = path.read_text(encoding="utf-8").split("\n")
        lines[2] = lines[2].rsplit(",", 1)[0]
        path.write_text("\n".join(lines), encoding="utf-8")

    def repeated_header(path: Path) -> None:
        write_csv(fmt.rows, path)
        lines = path.read_text(encoding="utf-8").split("\n")
        first = lines[0].split(",")[0]
        lines = [line + ("," + first if i == 0 else ",x") if line else line for i, line in enumerate(lines)]
        path.write_text("\n".join(lines), encoding="utf-8")

    return [Case(f"csv-{fmt.name}-extra-cell", fmt, "csv", extra, ("line 3", "and more")),
            Case(f"csv-{fmt.name}-missing-cell", fmt, "csv", missing, ("line 3",)),
            Case(f"csv-{fmt.name}-repeated-column", fmt, "csv", repeated_header, ("line 1",), row_level=False)]


def txt_cases() -> list[Case]:
    """Plain text (stage pt): only the bytes can be wrong."""
    fmt = Format("text", [{"text": "one"}, {"text": "two"}], {"columns": {"prompt": "text"}}, "pt", "text", flat=True)

    def invalid(path: Path) -> None:
        path.write_bytes(b"first line\nsecond \xff line\nthird\n")

    def utf16(path: Path) -> None:
        path.write_bytes("first line\nsecond\n".encode("utf-16"))

    def empty(path: Path) -> None:
        path.write_bytes(b"")

    return [Case("txt-text-invalid-bytes", fmt, "txt", invalid, ("line 2",), row_level=False),
            Case("txt-text-utf16", fmt, "txt", utf16, ("line 1",), row_level=False),
            Case("txt-text-empty-file", fmt, "txt", empty, (), row_level=False)]


def all_cases() -> list[Case]:
    """Every generated dataset case."""
    cases: list[Case] = []
    for fmt in FORMATS:
        for reader in readers_for(fmt):
            cases += row_mutations(fmt, reader) + byte_cases(fmt, reader)
            if reader in ("json", "jsonl"):
                cases.append(duplicate_key_case(fmt, reader))
        if fmt.flat:
            cases += ragged_cases(fmt)
    return cases + txt_cases()
