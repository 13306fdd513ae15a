"""`tunelab data dedup`: exact and normalised duplicate rows, grouped; optionally write the file without them."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from tunelab.data.errors import DataError
from tunelab.data.read import Row
from tunelab.data.tools.files import listing
from tunelab.runtime.suggest import suggest

NORMALIZE = ("none", "whitespace", "punct")
PREVIEW_CHARS = 80
PRINTED_GROUPS = 30


@dataclass
class Group:
    """Rows (1-based) that share a key; the first is kept."""

    rows: list[int]
    kind: str  # "exact" when the key fields are identical, "normalised" when they match only after normalising
    preview: str


@dataclass
class DedupReport:
    """Everything dedup found, as the --report JSON holds it."""

    file: str
    rows: int
    normalize: str
    key: list[str] | None
    groups: list[Group] = field(default_factory=list)

    @property
    def dropped(self) -> int:
        """Rows that are not the first of their group."""
        return sum(len(group.rows) - 1 for group in self.groups)

    def to_dict(self) -> dict[str, object]:
        """The --report content."""
        return {"file": self.file, "rows": self.rows, "normalize": self.normalize, "key": self.key or "all text fields",
                "duplicate_groups": len(self.groups), "duplicate_rows": self.dropped, "kept": self.rows - self.dropped,
                "groups": [asdict(group) for group in self.groups]}


def normalize(text: str, level: str) -> str:
    """none: as is; whitespace: NFKC (full-width -> half-width), case-folded, whitespace collapsed;
    punct: also every Unicode punctuation character removed (，。！？、“”《》 included)."""
    if level == "none":
        return text
    text = unicodedata.normalize("NFKC", text).casefold()
    if level == "punct":
        text = "".join(ch for ch in text if not unicodedata.category(ch).startswith("P"))
    return " ".join(text.split())


def canonical(value: object, level: str) -> object:
    """The value with every string inside it normalised."""
    if isinstance(value, str):
        return normalize(value, level)
    if isinstance(value, list):
        return [canonical(item, level) for item in value]
    if isinstance(value, dict):
        return {key: canonical(item, level) for key, item in value.items()}
    return value


def text_fields(row: Row) -> list[str]:
    """The fields holding text: strings, and lists or objects (conversations) that hold strings."""
    return [key for key, value in row.items() if isinstance(value, (str, list, dict))]


def key_of(row: Row, fields: list[str] | None, level: str) -> str:
    """A hashable, order-independent key of the chosen fields after normalising."""
    chosen = {name: row.get(name) for name in (fields if fields is not None else text_fields(row))}
    return json.dumps(canonical(chosen, level), ensure_ascii=False, sort_keys=True)


def strings_in(value: object) -> list[str]:
    """Every string inside a value, in order (for previews)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [text for item in value for text in strings_in(item)]
    if isinstance(value, dict):
        return [text for item in value.values() for text in strings_in(item)]
    return []


def preview(row: Row, fields: list[str] | None) -> str:
    """The first 80 characters of the key fields' text, on one line."""
    names = fields if fields is not None else text_fields(row)
    text = " | ".join(s for name in names for s in strings_in(row.get(name)) if s)
    text = " ".join(text.split())
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def check_key(rows: list[Row], fields: list[str], file: Path) -> None:
    """Every --key field is in at least one row."""
    seen = dict.fromkeys(key for row in rows for key in row)
    for name in fields:
        if name not in seen:
            raise DataError(f"--key {name}: no row has that field{suggest(name, seen)}", file=str(file),
                            fix=f"the fields are: {', '.join(seen)}")


def find_duplicates(rows: list[Row], file: Path, fields: list[str] | None = None,
                    level: str = "punct") -> DedupReport:
    """Group rows whose key fields match after normalising at the given level."""
    if level not in NORMALIZE:
        raise DataError(f"unknown --normalize {level!r}{suggest(level, NORMALIZE)}",
                        fix="use none, whitespace or punct")
    if fields is not None:
        check_key(rows, fields, file)
    buckets: dict[str, list[int]] = {}
    for index, row in enumerate(rows):
        buckets.setdefault(key_of(row, fields, level), []).append(index)
    report = DedupReport(str(file), len(rows), level, fields)
    for members in buckets.values():
        if len(members) > 1:
            exact = len({key_of(rows[i], fields, "none") for i in members}) == 1
            report.groups.append(Group([i + 1 for i in members], "exact" if exact else "normalised",
                                       preview(rows[members[0]], fields)))
    return report


def kept_rows(rows: list[Row], report: DedupReport) -> list[Row]:
    """The rows without the later members of each group, in file order."""
    dropped = {number - 1 for group in report.groups for number in group.rows[1:]}
    return [row for index, row in enumerate(rows) if index not in dropped]


def describe(report: DedupReport) -> list[str]:
    """The lines dedup prints: each group (capped), then the counts."""
    lines = []
    for number, group in enumerate(report.groups[:PRINTED_GROUPS], start=1):
        lines.append(f"group {number} ({group.kind}, {len(group.rows)} rows): rows {listing(group.rows, 10)}: "
                     f"{group.preview}")
    if len(report.groups) > PRINTED_GROUPS:
        lines.append(f"... and {len(report.groups) - PRINTED_GROUPS} more groups (all of them in --report FILE)")
    exact = sum(group.kind == "exact" for group in report.groups)
    lines.append(f"{report.rows} rows, {len(report.groups)} duplicate groups ({exact} exact, "
                 f"{len(report.groups) - exact} normalised; normalize={report.normalize}), "
                 f"{report.dropped} duplicate rows, {report.rows - report.dropped} unique")
    return lines
