"""What scoring produces and reads: one answer per row, and a task's figures with the rows behind them.

Every TaskScore says how many rows were scored and which answers could not be extracted (those count as
wrong: an empty text, an unparsed label, an empty set or ranking), so no row silently disappears.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tunelab.eval.errors import EvalError

# A per-row result line and a task's extra figures: JSON-ready values (numbers, texts, lists, tables).
Row = dict[str, object]


@dataclass(frozen=True)
class Answer:
    """One generated answer: the row's id, its prompt, the reference and the model's text."""

    id: str
    prompt: str
    label: str
    predict: str


@dataclass
class TaskScore:
    """A task's figures, the row counts behind them, and one result line per row."""

    task: str
    kind: str
    metrics: dict[str, float]
    scored: int
    unextracted: list[str] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    details: dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready summary (rows are written separately)."""
        return {"task": self.task, "kind": self.kind, "metrics": {k: round(v, 4) for k, v in self.metrics.items()},
                "scored": self.scored, "unextracted": len(self.unextracted),
                "unextracted_ids": self.unextracted, **self.details}


class LabelError(EvalError):
    """A reference answer that cannot be read the way the task needs (a bad dataset row)."""


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean (0 for no rows)."""
    return sum(values) / len(values) if values else 0.0
