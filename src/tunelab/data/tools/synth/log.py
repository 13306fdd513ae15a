"""The synthesis log: one JSON line per reply received (raw text, usage, the records or the rejection), appended and
flushed as each reply arrives, so an interrupted run loses nothing received and a rerun asks only what is missing."""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from pydantic import JsonValue

from tunelab.data.errors import DataError

Entry = dict[str, JsonValue]


@dataclass
class LogState:
    """What earlier runs left: the accepted entry per id, asks per id, every rejection, the tokens they used."""

    accepted: dict[str, Entry] = field(default_factory=dict)
    asks: Counter[str] = field(default_factory=Counter)
    rejected: list[Entry] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    torn: int = 0  # an unfinished last line (the process died while writing it), dropped

    def add(self, entry: Entry) -> None:
        """Count one entry in."""
        key = str(entry["id"])
        self.asks[key] += 1
        self.prompt_tokens += int(entry.get("prompt_tokens") or 0)  # type: ignore[arg-type]
        self.completion_tokens += int(entry.get("completion_tokens") or 0)  # type: ignore[arg-type]
        if entry.get("accepted"):
            self.accepted.setdefault(key, entry)  # the first accepted reply of an id is the one used
        else:
            self.rejected.append(entry)


def read_log(path: Path) -> LogState:
    """The state of a log (empty when there is none); a bad line other than a torn last one is an error."""
    state = LogState()
    if not path.exists():
        return state
    lines = path.read_bytes().decode("utf-8", errors="replace").split("\n")  # a torn line may end mid-character
    if lines[-1]:
        state.torn = 1  # no line break after it: the process died while writing it; asked again
    for number, line in enumerate(lines[:-1], start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            if not isinstance(entry, dict) or "id" not in entry:
                raise ValueError("not an entry")
        except ValueError:
            raise DataError("not a synthesis log entry", file=str(path), row=number,
                            fix="restore the line or delete it (that reply will be asked again)") from None
        state.add(entry)
    return state


def cut_torn_line(path: Path) -> None:
    """Drop an unfinished last line (its reply was never fully written; it is asked again)."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as handle:
            handle.truncate(data.rfind(b"\n") + 1)


class LogWriter:
    """Appends entries, each flushed to disk before the next reply is handled."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            cut_torn_line(path)
        self.handle: TextIO = path.open("a", encoding="utf-8")

    def append(self, entry: Entry) -> None:
        """Write one entry as a line and make it durable."""
        self.handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self.handle.flush()
        os.fsync(self.handle.fileno())

    def close(self) -> None:
        """Close the file."""
        self.handle.close()
