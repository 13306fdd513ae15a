"""Extraction as sets (entities, relations, keywords, JSON fields): precision, recall and F1.

Micro: counts summed over all rows, then P/R/F1. Macro: P/R/F1 per row, then averaged over rows; a row
whose gold and predicted sets are both empty scores 1 (nothing to find, nothing invented). An answer that
could not be extracted is the empty set: every gold item becomes a false negative.
"""

from __future__ import annotations

from collections.abc import Sequence


def row_counts(predicted: frozenset, gold: frozenset) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) of one row."""
    hits = len(predicted & gold)
    return hits, len(predicted) - hits, len(gold) - hits


def prf(tp: int, fp: int, fn: int, empty: float = 0.0) -> tuple[float, float, float]:
    """Precision, recall, F1 from counts; `empty` when there is nothing on either side."""
    if tp + fp + fn == 0:
        return empty, empty, empty
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def micro(predicted: Sequence[frozenset], gold: Sequence[frozenset]) -> dict[str, float]:
    """micro-precision/recall/f1 (percentages) over all rows' summed counts."""
    totals = [0, 0, 0]
    for p, g in zip(predicted, gold):
        for i, count in enumerate(row_counts(p, g)):
            totals[i] += count
    precision, recall, f1 = prf(*totals)
    return {"micro-precision": 100 * precision, "micro-recall": 100 * recall, "micro-f1": 100 * f1}


def macro(predicted: Sequence[frozenset], gold: Sequence[frozenset]) -> dict[str, float]:
    """macro-precision/recall/f1 (percentages): the mean over rows of each row's P/R/F1."""
    rows = [prf(*row_counts(p, g), empty=1.0) for p, g in zip(predicted, gold)]
    if not rows:
        return {"macro-precision": 0.0, "macro-recall": 0.0, "macro-f1": 0.0}
    names = ("macro-precision", "macro-recall", "macro-f1")
    return {name: 100 * sum(r[i] for r in rows) / len(rows) for i, name in enumerate(names)}
