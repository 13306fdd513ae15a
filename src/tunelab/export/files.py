"""JSON files of model folders read for export: a missing or broken file is an ExportError naming it."""

from __future__ import annotations

from pathlib import Path

from tunelab.export.errors import ExportError
from tunelab.model.errors import ModelError
from tunelab.model.preflight import read_json_object


def read_json(path: Path, fix: str) -> dict[str, object]:
    """The JSON object in path; missing, unreadable or not an object: an ExportError naming the file and `fix`."""
    if not path.is_file():
        raise ExportError(f"{path}: missing; {fix}")
    try:
        return read_json_object(path, fix)
    except ModelError as exc:
        raise ExportError(str(exc)) from None
