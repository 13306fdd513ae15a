"""`retrieval`: the reference is a set of relevant items (binary relevance); scored like ranking."""

from __future__ import annotations

from tunelab.eval.kinds.base import TaskKind, labels_like_answers
from tunelab.eval.kinds.ranking import RANKED, RankingTask, ranking_scorer

KIND = TaskKind(
    "retrieval", "the reference is a set of relevant items (binary relevance)", RankingTask, RANKED,
    ("hit@5", "mrr"), extractor="list", score=ranking_scorer(graded_by_default=False),
    read_labels=labels_like_answers)
