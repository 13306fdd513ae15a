"""Read a dataset file (or a folder of same-type files) into row dicts; errors name the file and the line or row.

The file types are LLaMA-Factory's (json, jsonl, csv, parquet, arrow, txt) plus xlsx. Rows are plain dicts, read the
way the `datasets` loaders LLaMA-Factory uses read them: a JSON object file is one row, a txt file gives one
{"text": line} row per line (blank lines included), an arrow file is what `Dataset.save_to_disk` writes.
`iter_rows` yields rows lazily (line by line or batch by batch) for `streaming: true`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING

from tunelab.data.errors import DataError
from tunelab.data.json_stream import iter_json_array
from tunelab.runtime import strict_json
from tunelab.runtime.strict_json import DuplicateKey

if TYPE_CHECKING:
    from pydantic import JsonValue

# extension -> LLaMA-Factory's file type (FILEEXT2TYPE): a folder may mix extensions of one type (json + jsonl)
FILE_TYPES = {"json": "json", "jsonl": "json", "csv": "csv", "parquet": "parquet", "arrow": "arrow", "txt": "text",
              "xlsx": "xlsx"}
READERS_DOC = ", ".join(FILE_TYPES)
ARROW_BATCH_ROWS = 1024

Row = dict[str, object]  # one row as read: column -> a JSON value, or a cell's value (csv text, parquet/xlsx values)


class BadRow(dict):  # type: ignore[type-arg]
    """A row the reader could not read whole (a CSV line with too many or too few cells): its cells as far as they
    go, and the error. Strict readers raise it at once; a run's reader yields it so that conversion raises it for
    the row, where on_bad_row: skip counts it like any other bad row."""

    def __init__(self, cells: Row, error: DataError) -> None:
        super().__init__(cells)
        self.error = error


def read_rows(path: Path, dataset: str, sheet: str | None = None) -> list[Row]:
    """All rows of one file (or of every same-type file in a folder), in order; `sheet` picks an xlsx sheet."""
    return list(iter_rows(path, dataset, sheet))


def iter_rows(path: Path, dataset: str, sheet: str | None = None, lazy: bool = False,
              bad_rows: bool = False) -> Iterator[Row]:
    """The rows of `read_rows`, lazily: jsonl/csv/txt line by line, parquet/arrow batch by batch, and with `lazy`
    (streaming) a JSON array element by element too. A row that cannot be read whole is an error, or with
    `bad_rows` a BadRow for the conversion to refuse (and on_bad_row: skip to count)."""
    files = folder_files(path, dataset) if path.is_dir() else [path]
    for file in files:
        file_type(file, dataset)  # every file's type is checked before the first row is yielded
    rows = chain.from_iterable(iter_file(file, dataset, sheet, lazy) for file in files)
    return rows if bad_rows else strict(rows)


def strict(rows: Iterator[Row]) -> Iterator[Row]:
    """The rows, raising the error of the first BadRow."""
    for row in rows:
        if isinstance(row, BadRow):
            raise row.error
        yield row


def folder_files(folder: Path, dataset: str) -> list[Path]:
    """The data files of a folder, sorted (other files such as a README are left alone); all of one type."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and extension(p) in FILE_TYPES)
    if not files:
        raise DataError(f"the folder {folder} holds no data files ({READERS_DOC})", dataset=dataset)
    types = {FILE_TYPES[extension(p)] for p in files}
    if len(types) > 1:
        suffixes = sorted({p.suffix.lower() for p in files})
        raise DataError(f"the folder {folder} mixes file types ({', '.join(suffixes)})", dataset=dataset,
                        fix="keep one type per dataset folder (json and jsonl may be mixed)")
    return files


def extension(path: Path) -> str:
    """The lower-case extension without its dot."""
    return path.suffix.lower().lstrip(".")


def file_type(path: Path, dataset: str) -> str:
    """The reader name for a file; an unknown extension lists the readable ones."""
    suffix = extension(path)
    if suffix not in FILE_TYPES:
        what = f".{suffix} files" if suffix else "files without an extension"
        raise DataError(f"cannot read {what}", dataset=dataset, file=str(path),
                        fix=f"convert it to one of: {READERS_DOC}")
    return FILE_TYPES[suffix] if suffix != "jsonl" else "jsonl"


def iter_file(path: Path, dataset: str, sheet: str | None = None, lazy: bool = False) -> Iterator[Row]:
    """Rows of one file, chosen by its extension; each must be an object with named fields."""
    kind = file_type(path, dataset)
    rows = iter_json_array(path, dataset) if lazy and kind == "json" else None
    if rows is None:
        rows = read_xlsx(path, dataset, sheet) if kind == "xlsx" else READERS[kind](path, dataset)
    if kind in ("parquet", "arrow", "xlsx"):
        rows = located(rows, path, dataset, kind)
    for index, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise DataError(f"expected an object with named fields, got {type(row).__name__}", dataset=dataset,
                            file=str(path), row=index, fix="each row must be a JSON object")
        yield row


def located(rows: Iterable[object], path: Path, dataset: str, kind: str) -> Iterator[object]:
    """Rows of a binary file; a library error part-way (a truncated or corrupt file) names the file and the row."""
    index = 0
    iterator = iter(rows)
    while True:
        try:
            row = next(iterator)
        except StopIteration:
            return
        except DataError:
            raise
        except Exception as exc:  # pyarrow and openpyxl raise their own, zipfile's, OSError or ValueError
            raise DataError(f"the {kind} file is damaged after row {index} ({type(exc).__name__}: "
                            f"{str(exc)[:200]})", dataset=dataset, file=str(path),
                            fix="write the file again (was its copy or download cut short?)") from None
        index += 1
        yield row


def duplicate_error(exc: DuplicateKey, path: Path, dataset: str, row: int | None = None,
                    line: int | None = None) -> DataError:
    """A repeated key named by its row and field: the path's leading [i] is the row of a JSON array."""
    field = exc.field
    if row is None:
        head, sep, rest = field.partition("]")
        row, field = (int(head[1:]) + 1, rest.lstrip(".")) if field.startswith("[") and sep else (1, field)
    where = f" (line {line})" if line is not None else ""
    return DataError(f"the key {exc.key!r} appears twice in one object{where}; JSON keeps only the last value",
                     dataset=dataset, file=str(path), row=row, field=field or exc.key,
                     fix="remove or rename one of them")


def utf8_error(path: Path, dataset: str, data: bytes, offset: int, exc: UnicodeDecodeError,
               line: int | None = None) -> DataError:
    """Bad bytes named by their byte offset in the file and their line."""
    line = line if line is not None else data[: exc.start].count(b"\n") + 1
    return DataError(f"invalid UTF-8 at byte {offset + exc.start} (line {line})", dataset=dataset, file=str(path),
                     fix="save the file as UTF-8")


def read_text(path: Path, dataset: str) -> str:
    """The file as UTF-8 text (a leading BOM is dropped); bad bytes are reported with their line."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise utf8_error(path, dataset, data, 0, exc) from None


def text_lines(path: Path, dataset: str) -> Iterator[tuple[int, str]]:
    """(line number, line with its ending) split on '\\n' only, as files read; a leading BOM is dropped."""
    offset = 0
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw, offset = raw[3:], 3
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise utf8_error(path, dataset, raw, offset, exc, line=number) from None
            offset += len(raw)


def read_json(path: Path, dataset: str) -> list[JsonValue]:
    """A JSON array of rows, or one object as one row (a JSON-lines file with a .json name is read as JSON lines)."""
    text = read_text(path, dataset)
    try:
        data = strict_json.loads(text)
    except DuplicateKey as exc:
        raise duplicate_error(exc, path, dataset) from None
    except json.JSONDecodeError as exc:
        if looks_like_json_lines(text):
            return list(read_jsonl(path, dataset))
        raise DataError(f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", dataset=dataset,
                        file=str(path), fix="fix the JSON syntax") from None
    if isinstance(data, dict):
        return [data]
    if not isinstance(data, list):
        raise DataError("a JSON data file must hold a list of rows", dataset=dataset, file=str(path))
    return data


def looks_like_json_lines(text: str) -> bool:
    """True when the first non-blank line is a whole JSON object by itself (JSON lines under a .json name)."""
    first = next((line for line in text.split("\n") if line.strip()), "")
    try:
        return isinstance(json.loads(first), dict)
    except json.JSONDecodeError:
        return False


def read_jsonl(path: Path, dataset: str) -> Iterator[JsonValue]:
    """One JSON value per line (lines end at '\\n' only, so U+2028 inside strings is safe); blank lines are skipped."""
    row = 0
    for number, line in text_lines(path, dataset):
        line = line.rstrip("\r\n")  # the line ending is no part of the JSON: columns count within the line
        if not line.strip():
            continue
        row += 1
        try:
            yield strict_json.loads(line)
        except DuplicateKey as exc:
            raise duplicate_error(exc, path, dataset, row, number) from None
        except json.JSONDecodeError as exc:
            raise DataError(f"line {number} is not valid JSON (column {exc.colno}: {exc.msg})", dataset=dataset,
                            file=str(path), fix="fix or remove that line") from None


def read_csv(path: Path, dataset: str) -> Iterator[Row]:
    """CSV with a header row; cells stay text and may hold newlines inside quotes. A line with more or fewer cells
    than the header is a BadRow naming the line and the cells (an unquoted comma would otherwise shift or drop
    text silently); blank lines are no rows."""
    # strict: a quote inside an unquoted cell, or a file that ends inside a quoted cell, is an error, not text
    reader = csv.reader((line for _, line in text_lines(path, dataset)), strict=True)
    try:
        header: list[str | None] | None = None
        for cells in reader:
            if not cells:
                continue
            if header is None:
                header = csv_header(cells, path, dataset)
                continue
            yield csv_row(header, cells, reader.line_num, path, dataset)
    except csv.Error as exc:
        raise DataError(f"line {reader.line_num} is not valid CSV ({exc})", dataset=dataset, file=str(path),
                        fix="fix that line (quote cells that hold commas, quotes or line breaks)") from None


def csv_header(cells: list[str], path: Path, dataset: str) -> list[str | None]:
    """Column names from line 1: repeated names are an error (one would hide the other's cells)."""
    names = [cell.strip() or None for cell in cells]
    seen = [name for name in names if name is not None]
    repeated = sorted({name for name in seen if seen.count(name) > 1})
    if repeated:
        raise DataError(f"column names repeat in line 1: {', '.join(repeated)}", dataset=dataset, file=str(path),
                        fix="give every column its own name")
    return names


def csv_row(header: list[str | None], cells: list[str], line: int, path: Path, dataset: str) -> Row:
    """One record as a row, or a BadRow when its cell count differs from the header's or a cell has no column."""
    row: Row = {name: cell for name, cell in zip(header, cells) if name is not None}
    problem = None
    if len(cells) > len(header):
        extra = ", ".join(repr(cell[:40]) for cell in cells[len(header):])
        problem = f"line {line} has {len(cells)} cells but the header has {len(header)} (extra: {extra})"
    elif len(cells) < len(header):
        missing = ", ".join(str(name) for name in header[len(cells):])
        problem = f"line {line} has {len(cells)} cells but the header has {len(header)} (missing: {missing})"
    else:
        unnamed = [i + 1 for i, (name, cell) in enumerate(zip(header, cells)) if name is None and cell.strip()]
        if unnamed:
            problem = f"line {line}: cell {unnamed[0]} has a value but its column has no name in line 1"
    if problem is None:
        return row
    fix = "quote cells that hold commas (\"a, b\"), or give every line one cell per column"
    return BadRow(row, DataError(problem, dataset=dataset, file=str(path), fix=fix, kind="CSV line with a wrong "
                                 "number of cells"))


def read_txt(path: Path, dataset: str) -> Iterator[Row]:
    """One {"text": line} row per line, blank lines included (the `datasets` text loader's rows)."""
    for _, line in text_lines(path, dataset):
        # text mode turns \r\n and a lone \r into \n, so a lone \r ends a line as well
        parts = line.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        yield from ({"text": part} for part in (parts[:-1] if parts[-1] == "" else parts))


def read_parquet(path: Path, dataset: str) -> Iterator[Row]:
    """Rows of a parquet file, one row group batch at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"not a readable parquet file ({exc})", dataset=dataset, file=str(path),
                        fix="write it again with pandas.DataFrame.to_parquet or pyarrow") from None
    for batch in parquet.iter_batches(batch_size=ARROW_BATCH_ROWS):
        yield from batch.to_pylist()


def read_arrow(path: Path, dataset: str) -> Iterator[Row]:
    """Rows of an Arrow IPC file: the stream format `datasets` writes, or the random-access file format.

    Read through a plain file, not a memory map, and every batch validated in full before its values are touched:
    Arrow trusts a file's offsets, so a damaged file read as it stands makes the process read outside its buffers
    (a bus error or segfault, not an exception). Damage becomes a DataError naming the file (through `located`).
    """
    import pyarrow as pa

    with pa.OSFile(str(path)) as source:
        try:
            reader: Iterable[pa.RecordBatch] = pa.ipc.open_stream(source)
        except pa.ArrowInvalid:
            source.seek(0)
            try:
                file_reader = pa.ipc.open_file(source)
            except pa.ArrowInvalid as exc:
                raise DataError(f"not an Arrow IPC file ({exc})", dataset=dataset, file=str(path),
                                fix="use the .arrow files that datasets' save_to_disk writes, or parquet") from None
            reader = (file_reader.get_batch(i) for i in range(file_reader.num_record_batches))
        for batch in reader:
            batch.validate(full=True)
            yield from batch.to_pylist()


def read_xlsx(path: Path, dataset: str, sheet: str | None = None) -> Iterator[Row]:
    """Rows of an Excel sheet (the first unless named); the first row holds the column names."""
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile, KeyError or its own errors for broken files
        raise DataError(f"not a readable .xlsx workbook ({type(exc).__name__}: {exc})", dataset=dataset,
                        file=str(path), fix="save it again from Excel as .xlsx, or export it as csv") from None
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise DataError(f"no sheet named {sheet!r}", dataset=dataset, file=str(path),
                            fix=f"use one of: {', '.join(book.sheetnames)}")
        values = (book[sheet] if sheet is not None else book.worksheets[0]).iter_rows(values_only=True)
        header = xlsx_header(next(values, ()), path, dataset)
        for number, cells in enumerate(values, start=2):
            if all(cell is None for cell in cells):
                continue  # formatted but empty rows below the data
            check_unnamed_cells(header, cells, number, path, dataset)
            padded = list(cells) + [None] * (len(header) - len(cells))
            yield {name: cell for name, cell in zip(header, padded) if name is not None}
    finally:
        book.close()


def check_unnamed_cells(header: list[str | None], cells: tuple[object, ...], number: int, path: Path,
                        dataset: str) -> None:
    """A value under a column without a name would be lost silently: that is an error."""
    from openpyxl.utils import get_column_letter

    for index, cell in enumerate(cells):
        if cell is not None and (index >= len(header) or header[index] is None):
            letter = get_column_letter(index + 1)
            raise DataError(f"cell {letter}{number} has a value but column {letter} has no name in row 1",
                            dataset=dataset, file=str(path), fix=f"name column {letter} in row 1, or clear it")


def xlsx_header(cells: tuple[object, ...], path: Path, dataset: str) -> list[str | None]:
    """Column names from the first row; blank names drop their column, repeated names are an error."""
    names = [None if cell is None or str(cell).strip() == "" else str(cell).strip() for cell in cells]
    seen = [name for name in names if name is not None]
    if not seen:
        raise DataError("the first row of the sheet is empty; it must hold the column names", dataset=dataset,
                        file=str(path), fix="put column names such as instruction, output in row 1")
    repeated = sorted({name for name in seen if seen.count(name) > 1})
    if repeated:
        raise DataError(f"column names repeat in row 1: {', '.join(repeated)}", dataset=dataset, file=str(path),
                        fix="give every column its own name")
    return names


READERS: dict[str, Callable[[Path, str], Iterable[object]]] = {  # rows not yet checked to be objects
    "json": read_json, "jsonl": read_jsonl, "csv": read_csv, "parquet": read_parquet, "arrow": read_arrow,
    "text": read_txt}
