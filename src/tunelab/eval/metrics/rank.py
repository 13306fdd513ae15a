"""Ranking and retrieval: NDCG@k, DCG@k, Hit@k (rate and count) and MRR.

The gold answer is a list of items. For a ranking task it is the ideal order: item i of n has graded
relevance n - i. For a retrieval task (graded: false) every gold item has relevance 1. Gains are linear
(rel / log2(position + 1)), as in scikit-learn's ndcg_score. An answer that could not be extracted is
an empty ranking and scores 0.

- `ndcg@k` in [0, 1]: DCG@k of the predicted order over DCG@k of the ideal order.
- `dcg@k`: the unnormalised DCG@k (some published tables report this; it can exceed 1).
- `hit@k` in [0, 1]: the share of rows with at least one gold item in the top k (a rate).
- `hits@k`: the mean number of gold items in the top k (a count; at most k).
- `mrr` in [0, 1]: the mean of 1 / rank of the first gold item (0 when none is predicted).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

RANK_METRIC = re.compile(r"^(ndcg|dcg|hit|hits)@([1-9][0-9]*)$")


def relevance(gold: Sequence[str], graded: bool) -> dict[str, float]:
    """Item -> relevance: n - i for the i-th gold item when graded, else 1."""
    n = len(gold)
    table: dict[str, float] = {}
    for i, item in enumerate(gold):
        table.setdefault(item, float(n - i) if graded else 1.0)
    return table


def dcg(items: Sequence[str], rel: dict[str, float], k: int) -> float:
    """Discounted cumulative gain of the first k items (each item counts once)."""
    seen: set[str] = set()
    total = 0.0
    for position, item in enumerate(items[:k], start=1):
        if item in seen:
            continue
        seen.add(item)
        total += rel.get(item, 0.0) / math.log2(position + 1)
    return total


def ndcg(predicted: Sequence[str], gold: Sequence[str], k: int, graded: bool) -> float:
    """NDCG@k of one row."""
    rel = relevance(gold, graded)
    ideal = dcg(sorted(rel, key=rel.get, reverse=True), rel, k)
    return dcg(predicted, rel, k) / ideal if ideal else 0.0


def hits(predicted: Sequence[str], gold: Sequence[str], k: int) -> int:
    """Number of distinct gold items among the first k predicted."""
    return len(set(predicted[:k]) & set(gold))


def reciprocal_rank(predicted: Sequence[str], gold: Sequence[str]) -> float:
    """1 / rank of the first gold item predicted, 0 when there is none."""
    wanted = set(gold)
    for position, item in enumerate(predicted, start=1):
        if item in wanted:
            return 1.0 / position
    return 0.0


def row_score(name: str, predicted: Sequence[str], gold: Sequence[str], graded: bool) -> float:
    """One ranking metric (ndcg@k, dcg@k, hit@k, hits@k, mrr) of one row."""
    if name == "mrr":
        return reciprocal_rank(predicted, gold)
    match = RANK_METRIC.match(name)
    if not match:
        raise ValueError(f"not a ranking metric: {name}")
    kind, k = match.group(1), int(match.group(2))
    if kind == "ndcg":
        return ndcg(predicted, gold, k, graded)
    if kind == "dcg":
        return dcg(predicted, relevance(gold, graded), k)
    found = hits(predicted, gold, k)
    return float(found) if kind == "hits" else float(found > 0)
