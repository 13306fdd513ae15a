"""`classification`: one label per row; labels normalised (case, width, punctuation) and aliased."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from tunelab.config.eval_tasks import EvalTaskSpec
from tunelab.eval.kinds.base import Metrics, TaskKind
from tunelab.eval.metrics import classify
from tunelab.eval.results import Answer, TaskScore
from tunelab.text.extract import JSON
from tunelab.text.normalize import alias_table, canonical, normalize


class ClassificationTask(EvalTaskSpec):
    """A classification task: the allowed labels and their other spellings."""

    labels: list[str] | None = Field(None, description="Classification: the allowed labels; an answer that "
                                                       "contains exactly one of them is read as that label.")
    aliases: dict[str, str] | None = Field(None, description="Classification: other spellings -> label.")


def classify_answer(value: JSON, answer_text: str, labels: list[str] | None, aliases: dict[str, str]) -> str | None:
    """The label an answer stands for: its normalised text, or the one allowed label it contains."""
    if value is None:
        return None
    guess = canonical(value, aliases)
    if labels is None:
        return guess or None
    allowed = {canonical(label, aliases) for label in labels}
    if guess in allowed:
        return guess
    said = normalize(answer_text)
    found = {label for label in allowed if label and label in said}
    found |= {label for alias, label in aliases.items() if alias and alias in said}
    return found.pop() if len(found) == 1 else None


def score_classification(task: ClassificationTask, names: list[str], answers: Sequence[Answer],
                         gold: list[JSON], extracted: list[JSON], workers: int | None) -> TaskScore:
    """Accuracy, macro/micro F1 and the confusion matrix over normalised (and aliased) labels."""
    aliases = alias_table(task.aliases)
    truth = [canonical(g, aliases) for g in gold]
    predicted = [classify_answer(v, str(v or ""), task.labels, aliases) for v in extracted]
    for index, value in enumerate(predicted):
        if value is None:
            extracted[index] = None  # an answer naming no allowed label counts as unextracted
    functions = {"accuracy": classify.accuracy, "macro-f1": classify.macro_f1, "micro-f1": classify.micro_f1}
    metrics = {name: functions[name](predicted, truth) for name in names}
    rows: list[dict[str, object]] = [{"gold": t, "predicted": p, "correct": p == t} for t, p in zip(truth, predicted)]
    return TaskScore(task.name, task.type, metrics, len(answers), rows=rows,
                     details={"confusion_matrix": classify.confusion(predicted, truth)})


KIND = TaskKind(
    "classification", "one label per row; labels normalised (case, width, punctuation) and aliased",
    ClassificationTask, Metrics(("accuracy", "macro-f1", "micro-f1")), ("accuracy", "macro-f1"),
    extractor="text", score=score_classification)
