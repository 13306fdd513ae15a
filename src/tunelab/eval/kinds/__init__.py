"""Eval task kinds, one module each; this table is the only place that lists them.

A new kind is one module declaring a TaskKind (its entry fields, metrics, default extractor, how it scores)
plus one line here. Importing this package registers the table with the config layer, which validates
`eval_tasks` through it (config sits below eval and cannot import it).
"""

from __future__ import annotations

from tunelab.config.eval_tasks import EvalTaskSpec, register_task_kinds
from tunelab.eval.kinds import (
    choice, choice_logits, classification, extraction, generation, judge, length, perplexity, preference, ranking,
    retrieval,
)
from tunelab.eval.kinds.base import TaskKind

KINDS: dict[str, TaskKind] = {kind.name: kind for kind in (
    generation.KIND,
    classification.KIND,
    choice.KIND,
    extraction.KIND,
    ranking.KIND,
    retrieval.KIND,
    choice_logits.KIND,
    perplexity.KIND,
    length.KIND,
    judge.KIND,
    preference.KIND,
)}
register_task_kinds(KINDS)


def kind_of(task: EvalTaskSpec) -> TaskKind:
    """The kind of a validated task."""
    return KINDS[task.type]
