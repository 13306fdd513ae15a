"""Scoring one generating task's answers: read each reference, extract each answer, let the task's kind score.

Every TaskScore says how many rows were scored and which answers could not be extracted (those count as
wrong), so no row silently disappears.
"""

from __future__ import annotations

from collections.abc import Sequence

from tunelab.config.eval_tasks import EvalTaskSpec
from tunelab.eval.kinds import kind_of
from tunelab.eval.results import Answer, LabelError, TaskScore
from tunelab.text.extract import JSON


def gold_values(task: EvalTaskSpec, answers: Sequence[Answer]) -> list[JSON]:
    """Each reference read for the task; a reference that cannot be read is a LabelError naming the row."""
    reader = kind_of(task).label_extractor(task)
    if reader is None:
        return [a.label for a in answers]
    values = []
    for answer in answers:
        value = reader(answer.label, answer.prompt)
        if value is None:
            raise LabelError(f"task {task.name}: row {answer.id}: the reference answer {answer.label[:80]!r} "
                             f"cannot be read by the {reader.name} extractor; fix the row or set label_extractor")
        values.append(value)
    return values


def score_task(task: EvalTaskSpec, answers: Sequence[Answer], workers: int | None = None) -> TaskScore:
    """Score a generating task's answers with its extractor and metrics."""
    kind = kind_of(task)
    if kind.score is None:
        raise ValueError(f"task {task.name}: a {task.type} task scores the model directly, not answers")
    gold = gold_values(task, answers)
    extractor = kind.answer_extractor(task)
    extracted = [extractor(a.predict, a.prompt) for a in answers]
    score = kind.score(task, kind.task_metrics(task), answers, gold, extracted, workers)
    score.unextracted = [a.id for a, value in zip(answers, extracted) if value is None]
    for row, answer, value in zip(score.rows, answers, extracted):
        row.update({"id": answer.id, "label": answer.label, "predict": answer.predict, "extracted": value})
    return score
