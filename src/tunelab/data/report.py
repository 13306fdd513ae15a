"""The data report of a run: what happened to every dataset's rows, written as data_report.json."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import JsonValue


@dataclass
class RowIssue:
    """A skipped row, kept for the data report."""

    dataset: str
    row: int
    reason: str


@dataclass
class DatasetReport:
    """What happened to one dataset's rows on the way to training examples."""

    name: str
    file: str | None = None
    role: str = "train"  # train, or eval (an eval_dataset)
    rows_read: int = 0
    rows_converted: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    skipped_rows: list[RowIssue] = field(default_factory=list)
    truncated: int = 0
    turns_dropped_for_length: int = 0
    dropped_for_length: int = 0  # packing: examples longer than cutoff_len, left out
    media_dropped: int = 0  # drop_media: image, video and audio entries left out of converted rows
    tokens: int = 0
    tokens_trained: int = 0
    notes: list[str] = field(default_factory=list)

    def skip(self, row: int, reason: str, detail: str = "") -> None:
        """Count a skipped row under its reason; the first 100 are kept with their details."""
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        if len(self.skipped_rows) < 100:
            self.skipped_rows.append(RowIssue(self.name, row, detail or reason))


COUNT_KEYS = ("truncated", "turns_dropped_for_length", "dropped_for_length", "tokens", "tokens_trained")


@dataclass
class DataReport:
    """Per-dataset counts plus the split sizes; written as data_report.json by every run."""

    datasets: list[DatasetReport] = field(default_factory=list)
    train_examples: int = 0
    eval_examples: int = 0
    eval_sets: dict[str, int] = field(default_factory=dict)  # eval_on_each_dataset: examples per eval dataset
    examples_without_trained_tokens: int = 0
    packed_rows: int = 0
    dropped_for_length: int = 0  # packing: examples longer than cutoff_len (per dataset in `datasets`)
    tokens_dropped: int = 0  # pre-training packing: the remainder of each block batch
    mixing: dict[str, dict[str, object]] = field(default_factory=dict)  # interleaving, per role: rows taken per dataset
    tokenized_path: dict[str, str] = field(default_factory=dict)  # saved_to or loaded_from: the folder
    notes: list[str] = field(default_factory=list)

    def totals(self) -> dict[str, int]:
        """Counts summed over datasets."""
        keys = ("rows_read", "rows_converted") + COUNT_KEYS
        out = {key: sum(getattr(d, key) for d in self.datasets) for key in keys}
        out["rows_skipped"] = sum(sum(d.skipped.values()) for d in self.datasets)
        return out

    def dataset(self, name: str, role: str = "train") -> DatasetReport:
        """The report of one dataset of the run (role train or eval)."""
        return next(d for d in self.datasets if d.name == name and d.role == role)

    def add_counts(self, counts: dict[tuple[str, str], dict[str, int]]) -> None:
        """Add per-(dataset, role) counts made while tokenizing."""
        for (name, role), values in counts.items():
            target = self.dataset(name, role)
            for key, value in values.items():
                setattr(target, key, getattr(target, key) + value)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        out = {"totals": self.totals(), "train_examples": self.train_examples, "eval_examples": self.eval_examples,
               "examples_without_trained_tokens": self.examples_without_trained_tokens,
               "packed_rows": self.packed_rows, "dropped_for_length": self.dropped_for_length,
               "tokens_dropped": self.tokens_dropped, "notes": self.notes,
               "datasets": [asdict(d) for d in self.datasets]}
        for key in ("eval_sets", "mixing", "tokenized_path"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        return out

    def write(self, path: Path) -> None:
        """Save as JSON."""
        path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def from_dict(cls, saved: dict[str, JsonValue]) -> DataReport:
        """A report read back from its JSON form (tokenized_path reuse)."""
        known = {f for f in DatasetReport.__dataclass_fields__}
        datasets = []
        for item in saved.get("datasets", []):
            item = {k: v for k, v in item.items() if k in known and k != "skipped_rows"}
            datasets.append(DatasetReport(**item))
        fields = {k: saved[k] for k in ("train_examples", "eval_examples", "eval_sets", "examples_without_trained_tokens",
                                        "packed_rows", "dropped_for_length", "tokens_dropped", "mixing", "notes")
                  if k in saved}
        return cls(datasets=datasets, **fields)
