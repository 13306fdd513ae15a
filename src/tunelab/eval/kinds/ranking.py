"""`ranking`: the reference is the ideal order (graded relevance); NDCG/DCG/Hit@k and MRR per row, averaged."""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import Field

from tunelab.config.eval_tasks import EvalTaskSpec
from tunelab.eval.kinds.base import Metrics, Scorer, TaskKind, labels_like_answers
from tunelab.eval.metrics import rank
from tunelab.eval.results import Answer, TaskScore, mean
from tunelab.text.extract import JSON
from tunelab.text.normalize import normalize

RANKED = Metrics(("mrr",), rank.RANK_METRIC, "ndcg@k, dcg@k, hit@k, hits@k (k a number), mrr")


class RankingTask(EvalTaskSpec):
    """A ranking or retrieval task: whether relevance is graded by the reference order."""

    graded: bool | None = Field(None, description="Ranking: graded relevance from the reference order.")


def as_ranking(value: JSON) -> list[str]:
    """An extracted list as a ranking of normalised items (an unextracted answer ranks nothing)."""
    if value is None:
        return []
    return [normalize(v) for v in (value if isinstance(value, list) else [value])]


def letters_hint(task: RankingTask, gold: list[JSON], extracted: list[JSON]) -> str | None:
    """A hint when the references are option letters but the default `list` extractor kept option texts."""
    if task.extractor is not None:
        return None
    references = [item for g in gold for item in (g if isinstance(g, list) else [g])]
    answers = [item for v in extracted if isinstance(v, list) for item in v]
    if not references or not all(isinstance(r, str) and re.fullmatch(r"[A-Z]", r.strip()) for r in references):
        return None
    if all(isinstance(a, str) and re.fullmatch(r"[A-Z]", a.strip()) for a in answers):
        return None
    return ("the references are option letters but the answers list more than letters (e.g. 'A. text'); "
            "set extractor: letter_list to read the letters")


def ranking_scorer(graded_by_default: bool) -> Scorer:
    """The scorer of a ranked kind; `graded` on the task overrides the kind's default relevance."""
    def score_ranking(task: RankingTask, names: list[str], answers: Sequence[Answer], gold: list[JSON],
                      extracted: list[JSON], workers: int | None) -> TaskScore:
        """NDCG/DCG/Hit@k and MRR per row, averaged."""
        graded = task.graded if task.graded is not None else graded_by_default
        rows = []
        for g, v in zip(gold, extracted):
            predicted, truth = as_ranking(v), as_ranking(g)
            rows.append({name: rank.row_score(name, predicted, truth, graded) for name in names})
        metrics = {name: mean([row[name] for row in rows]) for name in names}
        details: dict[str, object] = {"graded": graded}
        hint = letters_hint(task, gold, extracted)
        if hint:
            details["hint"] = hint
        return TaskScore(task.name, task.type, metrics, len(answers), rows=rows, details=details)
    return score_ranking


KIND = TaskKind(
    "ranking", "the reference is the ideal order (graded relevance)", RankingTask, RANKED, ("ndcg@5", "mrr"),
    extractor="list", score=ranking_scorer(graded_by_default=True), read_labels=labels_like_answers)
