"""`extraction`: sets of items (entities, relations, keywords, JSON fields) scored by precision/recall/F1."""

from __future__ import annotations

import json
from collections.abc import Hashable, Sequence

from tunelab.config.eval_tasks import EvalTaskSpec
from tunelab.eval.kinds.base import Metrics, TaskKind, labels_like_answers
from tunelab.eval.metrics import sets
from tunelab.eval.results import Answer, TaskScore
from tunelab.text.extract import JSON
from tunelab.text.normalize import normalize

SET_METRICS = ("micro-f1", "micro-precision", "micro-recall", "macro-f1", "macro-precision", "macro-recall")


def as_items(value: JSON) -> frozenset[Hashable]:
    """An extracted list / JSON value as a set of normalised items (relations as tuples)."""
    if value is None:
        return frozenset()
    if isinstance(value, dict):
        value = [f"{k}={v}" for k, v in value.items()]
    if not isinstance(value, list):
        value = [value]
    return frozenset(item_key(item) for item in value)


def item_key(item: JSON | tuple[JSON, ...]) -> Hashable:
    """One item, comparable: strings normalised, lists/tuples as tuples, objects as sorted JSON."""
    if isinstance(item, (list, tuple)):
        return tuple(item_key(part) for part in item)
    if isinstance(item, dict):
        return json.dumps({normalize(k): item_key(v) for k, v in item.items()}, sort_keys=True, ensure_ascii=False)
    return normalize(item)


def score_extraction(task: EvalTaskSpec, names: list[str], answers: Sequence[Answer], gold: list[JSON],
                     extracted: list[JSON], workers: int | None) -> TaskScore:
    """Micro and macro precision/recall/F1 over item sets."""
    truth = [as_items(g) for g in gold]
    predicted = [as_items(v) for v in extracted]
    table = {**sets.micro(predicted, truth), **sets.macro(predicted, truth)}
    rows: list[dict[str, object]] = []
    for p, g in zip(predicted, truth):
        tp, fp, fn = sets.row_counts(p, g)
        rows.append({"tp": tp, "fp": fp, "fn": fn, "f1": 100 * sets.prf(tp, fp, fn, empty=1.0)[2]})
    return TaskScore(task.name, task.type, {n: table[n] for n in names}, len(answers), rows=rows)


KIND = TaskKind(
    "extraction", "sets of items (entities, relations, keywords, JSON fields): precision/recall/F1", EvalTaskSpec,
    Metrics(SET_METRICS), ("micro-f1", "macro-f1"), extractor="list", score=score_extraction,
    read_labels=labels_like_answers)
