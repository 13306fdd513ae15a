"""JSON files of model folders read for export: a missing or broken file is an ExportError naming it."""

from __future__ import annotations

import json
from pathlib import Path

from tunelab.export.errors import ExportError


def read_json(path: Path, fix: str) -> dict:
    """The JSON object in path; missing, unreadable or not an object: an ExportError naming the file and `fix`."""
    if not path.is_file():
        raise ExportError(f"{path}: missing; {fix}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExportError(f"{path}: not valid JSON ({exc}); {fix}") from None
    if not isinstance(data, dict):
        raise ExportError(f"{path}: holds {type(data).__name__}, not a JSON object; {fix}")
    return data
