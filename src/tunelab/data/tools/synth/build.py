"""The dataset from the accepted log entries: records in seed order, alpaca or sharegpt rows with the seed kept,
duplicates removed by `tunelab data dedup`'s own functions, the file written and registered (with its sha1)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import JsonValue

from tunelab.data.read import Row
from tunelab.data.tools.convert import alpaca_row, sharegpt_row
from tunelab.data.tools.dedup import find_duplicates, kept_rows
from tunelab.data.tools.files import write_rows
from tunelab.data.tools.register import Registration, register
from tunelab.data.tools.synth.config import OutputSection
from tunelab.data.tools.synth.log import Entry
from tunelab.data.tools.synth.seeds import Request

DEDUP_LEVELS = {"exact": "none", "whitespace": "whitespace", "punct": "punct"}


@dataclass
class Built:
    """The written dataset: rows before and after dedup, the path, the registration."""

    records: int
    written: int
    path: Path
    registration: Registration | None


def rows_of(requests: list[Request], accepted: dict[str, Entry], output: OutputSection) -> list[Row]:
    """The accepted records as dataset rows, in the order of the requests (seed order, then index)."""
    rows = []
    for request in requests:
        entry = accepted.get(request.id)
        if entry is None:
            continue
        for record in entry["records"]:  # type: ignore[union-attr]
            parts = {key: str(value) for key, value in record.items()}  # type: ignore[union-attr]
            row = alpaca_row(parts) if output.format == "alpaca" else sharegpt_row(parts)
            if output.seed_field:
                source: JsonValue = entry.get("source")
                row[output.seed_field] = source
            rows.append(row)
    return rows


def build(requests: list[Request], accepted: dict[str, Entry], output: OutputSection, dedup: str) -> Built | None:
    """Write (and register) the dataset; None when no record was accepted (nothing is written)."""
    rows = rows_of(requests, accepted, output)
    if not rows:
        return None
    path = Path(output.file)
    kept = rows
    if dedup != "off":
        key = ["instruction", "input", "output"] if output.format == "alpaca" else ["conversations"]
        kept = kept_rows(rows, find_duplicates(rows, path, key, DEDUP_LEVELS[dedup]))
    write_rows(path, kept)
    registration = None
    if output.register_dataset:
        folder = Path(output.dataset_dir) if output.dataset_dir else None
        registration = register(path, output.name or path.stem, formatting=output.format, dataset_dir=folder,
                                fresh=True)
    return Built(len(rows), len(kept), path, registration)
