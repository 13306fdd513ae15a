"""Classification: accuracy, macro and micro F1 and the confusion matrix over normalised labels.

An answer that could not be extracted is the class UNPARSED: it is always wrong, counts as a false
negative of the true class, and shows in the confusion matrix as its own column.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

UNPARSED = "<unparsed>"


def accuracy(predicted: Sequence[str | None], gold: Sequence[str]) -> float:
    """Share of rows whose predicted label equals the gold one, as a percentage."""
    if not gold:
        return 0.0
    return 100.0 * sum(p == g for p, g in zip(predicted, gold)) / len(gold)


def per_class_counts(predicted: Sequence[str | None], gold: Sequence[str]) -> dict[str, tuple[int, int, int]]:
    """Class -> (true positives, false positives, false negatives); classes are the gold labels seen."""
    tp, fp, fn = Counter(), Counter(), Counter()
    for p, g in zip(predicted, gold):
        if p == g:
            tp[g] += 1
            continue
        fn[g] += 1
        if p is not None:
            fp[p] += 1
    classes = set(gold) | {p for p in predicted if p is not None}
    return {c: (tp[c], fp[c], fn[c]) for c in sorted(classes)}


def f1(tp: int, fp: int, fn: int) -> float:
    """F1 from counts: 2TP / (2TP + FP + FN), 0 when all three are 0."""
    denominator = 2 * tp + fp + fn
    return 2 * tp / denominator if denominator else 0.0


def macro_f1(predicted: Sequence[str | None], gold: Sequence[str]) -> float:
    """Unweighted mean of the per-class F1 over the gold classes, as a percentage."""
    counts = per_class_counts(predicted, gold)
    classes = sorted(set(gold))
    return 100.0 * sum(f1(*counts[c]) for c in classes) / len(classes) if classes else 0.0


def micro_f1(predicted: Sequence[str | None], gold: Sequence[str]) -> float:
    """F1 of the summed counts over all classes, as a percentage (equals accuracy for single labels
    when every answer was extracted; lower when some were not)."""
    counts = per_class_counts(predicted, gold).values()
    return 100.0 * f1(sum(c[0] for c in counts), sum(c[1] for c in counts), sum(c[2] for c in counts))


def confusion(predicted: Sequence[str | None], gold: Sequence[str]) -> dict[str, dict[str, int]]:
    """gold label -> predicted label (UNPARSED for none) -> count."""
    table: dict[str, Counter[str]] = {}
    for p, g in zip(predicted, gold):
        table.setdefault(g, Counter())[UNPARSED if p is None else p] += 1
    return {g: dict(sorted(row.items())) for g, row in sorted(table.items())}
