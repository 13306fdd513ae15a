"""`choice`: multiple choice answered in free text; the letter(s) extracted from the answer and the reference."""

from __future__ import annotations

from collections.abc import Sequence

from tunelab.config.eval_tasks import EvalTaskSpec
from tunelab.eval.kinds.base import Metrics, TaskKind
from tunelab.eval.results import Answer, TaskScore, mean
from tunelab.text.extract import JSON, Extractor, build_extractor


def strict_letters(kind: TaskKind, task: EvalTaskSpec) -> Extractor:
    """References are read as letters with the answer extractor's parameters (letters, multiple)."""
    return build_extractor({"name": "choice", **kind.answer_extractor(task).params})


def score_choice(task: EvalTaskSpec, names: list[str], answers: Sequence[Answer], gold: list[JSON],
                 extracted: list[JSON], workers: int | None) -> TaskScore:
    """Accuracy of the extracted letter(s) against the reference letter(s)."""
    rows: list[dict[str, object]] = [{"gold": g, "predicted": p, "correct": p == g} for g, p in zip(gold, extracted)]
    accuracy = 100.0 * mean([float(row["correct"] is True) for row in rows])
    return TaskScore(task.name, task.type, {"accuracy": accuracy}, len(answers), rows=rows)


KIND = TaskKind(
    "choice", "multiple choice answered in free text; the letter(s) extracted", EvalTaskSpec,
    Metrics(("accuracy",)), ("accuracy",), extractor="choice", score=score_choice, read_labels=strict_letters)
