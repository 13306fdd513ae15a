"""`tunelab data split`: a seeded train/val(/test) split written next to the file with the same extension."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from tunelab.data.errors import DataError
from tunelab.data.read import Row
from tunelab.data.registry import REGISTRY_FILE, RawEntry, read_registry
from tunelab.data.tools.files import WRITABLE, load_rows, write_rows
from tunelab.data.tools.register import Registration, register, same_file


@dataclass
class Part:
    """One written part of the split."""

    name: str  # train, val or test
    path: Path
    rows: int


def part_size(text: str, total: int, flag: str) -> int:
    """'0.1' -> a fraction of the rows (at least 1), '100' -> a count."""
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{flag} {text!r} is not a number", fix=f"give a fraction such as {flag} 0.1 or a count "
                                                              f"such as {flag} 100") from None
    is_count = value.is_integer() and "." not in text and "e" not in text.lower()
    if is_count and value >= 1:
        return int(value)
    if 0 < value < 1:
        return max(1, round(total * value))
    raise DataError(f"{flag} {text}: a fraction must be between 0 and 1 and a count at least 1",
                    fix=f"e.g. {flag} 0.1 or {flag} 100")


def sizes(total: int, val: str, test: str | None, file: Path) -> tuple[int, int]:
    """The val and test sizes; train must keep at least one row."""
    n_val = part_size(val, total, "--val")
    n_test = part_size(test, total, "--test") if test is not None else 0
    if n_val + n_test >= total:
        asked = f"{n_val} val" + (f" + {n_test} test" if test is not None else "")
        raise DataError(f"asked for {asked} rows but the file has {total} rows, leaving none to train on",
                        file=str(file), fix="ask for fewer rows (a smaller count or fraction)")
    return n_val, n_test


def split_rows(rows: list[Row], n_val: int, n_test: int, seed: int) -> dict[str, list[Row]]:
    """Shuffle row positions with the seed, cut val then test off the front; each part keeps file order."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    cuts = {"val": order[:n_val], "test": order[n_val:n_val + n_test], "train": order[n_val + n_test:]}
    return {name: [rows[i] for i in sorted(picked)] for name, picked in cuts.items()}


def split_file(file: Path, val: str, test: str | None = None, seed: int = 42, out_dir: Path | None = None,
               register_parts_too: bool = False) -> tuple[list[Part], list[Registration]]:
    """Write NAME_train/NAME_val(/NAME_test) with the input's extension into out_dir (default: the file's folder),
    and register them there when asked."""
    folder = out_dir if out_dir is not None else file.parent
    stem, suffix = file.stem, file.suffix
    if suffix.lower() not in WRITABLE:
        raise DataError(f"split writes the parts with the input's extension: {', '.join(WRITABLE)}", file=str(file),
                        fix="convert the file first (tunelab data convert ... --out FILE.jsonl)")
    rows = load_rows(file)
    n_val, n_test = sizes(len(rows), val, test, file)
    parts = split_rows(rows, n_val, n_test, seed)
    written = []
    for name in ("train", "val", "test"):
        if name == "test" and test is None:
            continue
        path = folder / f"{stem}_{name}{suffix}"
        write_rows(path, parts[name])
        written.append(Part(name, path, len(parts[name])))
    return written, register_parts(file, written, rows[0]) if register_parts_too else []


def source_entry(file: Path) -> RawEntry:
    """The settings (formatting, columns, tags, ranking) of the entry registering this file in its folder, if any."""
    registry = file.parent / REGISTRY_FILE
    if not registry.is_file():
        return {}
    for entry in read_registry(file.parent).values():
        if isinstance(entry, dict) and same_file(entry, file.parent, file):
            return entry
    return {}


def guessed_formatting(row: Row) -> str | None:
    """sharegpt for a 'conversations' list, openai for a 'messages' list, else None (alpaca)."""
    if isinstance(row.get("conversations"), list):
        return "sharegpt"
    if isinstance(row.get("messages"), list):
        return "openai"
    return None


def register_parts(file: Path, parts: list[Part], first_row: Row) -> list[Registration]:
    """Register each part as STEM_train etc., with the settings of the input's own entry (else guessed)."""
    entry = source_entry(file)
    if entry:  # the source's settings as they stand: no column is added back that its entry left out
        return [register(part.path, part.path.stem, dataset_dir=part.path.parent, settings=entry)
                for part in parts]
    formatting = guessed_formatting(first_row)
    return [register(part.path, part.path.stem, formatting=formatting, dataset_dir=part.path.parent)
            for part in parts]
