"""Scoring one task's answers: extract each answer, compare it with the reference, aggregate the metrics.

Every TaskScore says how many rows were scored and which answers could not be extracted (those count as
wrong: an empty text, an unparsed label, an empty set or ranking), so no row silently disappears.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tunelab.config.eval_tasks import EvalTaskSpec
from tunelab.eval.errors import EvalError
from tunelab.eval.extract import Extractor, build_extractor
from tunelab.eval.kinds import KINDS
from tunelab.eval.metrics import classify, rank, sets, text
from tunelab.eval.normalize import alias_table, canonical, normalize


@dataclass(frozen=True)
class Answer:
    """One generated answer: the row's id, its prompt, the reference and the model's text."""

    id: str
    prompt: str
    label: str
    predict: str


@dataclass
class TaskScore:
    """A task's figures, the row counts behind them, and one result line per row."""

    task: str
    kind: str
    metrics: dict[str, float]
    scored: int
    unextracted: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (rows are written separately)."""
        return {"task": self.task, "kind": self.kind, "metrics": {k: round(v, 4) for k, v in self.metrics.items()},
                "scored": self.scored, "unextracted": len(self.unextracted),
                "unextracted_ids": self.unextracted, **self.details}


class LabelError(EvalError):
    """A reference answer that cannot be read the way the task needs (a bad dataset row)."""


def task_metrics(task: EvalTaskSpec) -> list[str]:
    """The metrics asked, or the kind's defaults."""
    return list(task.metrics or KINDS[task.type].defaults)


def task_extractor(task: EvalTaskSpec) -> Extractor:
    """The task's extractor, or its kind's default one."""
    return build_extractor(task.extractor or KINDS[task.type].extractor)


def label_extractor(task: EvalTaskSpec) -> Extractor | None:
    """How the reference is read: lists/JSON like the answer, choice letters strictly, the rest as text."""
    if task.label_extractor:
        return build_extractor(task.label_extractor)
    if task.type in ("extraction", "ranking", "retrieval"):
        return task_extractor(task)
    if task.type == "choice":
        return build_extractor({"name": "choice", **task_extractor(task).params})
    return None


def gold_values(task: EvalTaskSpec, answers: Sequence[Answer]) -> list[Any]:
    """Each reference read for the task; a reference that cannot be read is a LabelError naming the row."""
    reader = label_extractor(task)
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


def as_items(value: Any) -> frozenset:
    """An extracted list / JSON value as a set of normalised items (relations as tuples)."""
    if value is None:
        return frozenset()
    if isinstance(value, dict):
        value = [f"{k}={v}" for k, v in value.items()]
    if not isinstance(value, list):
        value = [value]
    return frozenset(item_key(item) for item in value)


def item_key(item: Any) -> Any:
    """One item, comparable: strings normalised, lists/tuples as tuples, objects as sorted JSON."""
    if isinstance(item, (list, tuple)):
        return tuple(item_key(part) for part in item)
    if isinstance(item, dict):
        return json.dumps({normalize(k): item_key(v) for k, v in item.items()}, sort_keys=True, ensure_ascii=False)
    return normalize(item)


def as_ranking(value: Any) -> list[str]:
    """An extracted list as a ranking of normalised items (an unextracted answer ranks nothing)."""
    if value is None:
        return []
    return [normalize(v) for v in (value if isinstance(value, list) else [value])]


def score_task(task: EvalTaskSpec, answers: Sequence[Answer], workers: int | None = None) -> TaskScore:
    """Score a generating task's answers with its extractor and metrics."""
    gold = gold_values(task, answers)
    extractor = task_extractor(task)
    extracted = [extractor(a.predict, a.prompt) for a in answers]
    scorer = SCORERS[task.type]
    score = scorer(task, answers, gold, extracted, workers)
    score.unextracted = [a.id for a, value in zip(answers, extracted) if value is None]
    for row, answer, value in zip(score.rows, answers, extracted):
        row.update({"id": answer.id, "label": answer.label, "predict": answer.predict, "extracted": value})
    return score


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean (0 for no rows)."""
    return sum(values) / len(values) if values else 0.0


def score_generation(task: EvalTaskSpec, answers: Sequence[Answer], gold: list[Any], extracted: list[Any],
                     workers: int | None) -> TaskScore:
    """BLEU/ROUGE (LLaMA-Factory's and the standard ones) and exact match over the extracted texts."""
    names = task_metrics(task)
    predicts = [value or "" for value in extracted]
    rows: list[dict[str, Any]] = [{} for _ in answers]
    metrics: dict[str, float] = {}
    if any(n in text.LF_METRICS for n in names):
        for row, scores in zip(rows, text.lf_scores(predicts, gold, names, workers)):
            row.update(scores)
    if any(n.startswith("rouge-score-") for n in names):
        for row, scores in zip(rows, text.rouge_score_rows(predicts, gold)):
            row.update({k: v for k, v in scores.items() if k in names})
    for name in [n for n in names if n in text.SACREBLEU_TOKENIZE]:
        metrics[name] = text.sacrebleu_corpus(predicts, gold, name)
        for row, value in zip(rows, text.sacrebleu_rows(predicts, gold, name)):
            row[name] = value
    if "exact-match" in names:
        for row, p, g in zip(rows, predicts, gold):
            row["exact-match"] = 100.0 * (normalize(p) == normalize(g))
    for name in names:
        metrics.setdefault(name, mean([row[name] for row in rows]))
    return TaskScore(task.name, task.type, {n: metrics[n] for n in names}, len(answers), rows=rows)


def classify_answer(value: Any, answer_text: str, labels: list[str] | None, aliases: dict[str, str]) -> str | None:
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


def score_classification(task: EvalTaskSpec, answers: Sequence[Answer], gold: list[Any], extracted: list[Any],
                         workers: int | None) -> TaskScore:
    """Accuracy, macro/micro F1 and the confusion matrix over normalised (and aliased) labels."""
    aliases = alias_table(task.aliases)
    truth = [canonical(g, aliases) for g in gold]
    predicted = [classify_answer(v, str(v or ""), task.labels, aliases) for v in extracted]
    for index, value in enumerate(predicted):
        if value is None:
            extracted[index] = None  # an answer naming no allowed label counts as unextracted
    functions = {"accuracy": classify.accuracy, "macro-f1": classify.macro_f1, "micro-f1": classify.micro_f1}
    metrics = {name: functions[name](predicted, truth) for name in task_metrics(task)}
    rows = [{"gold": t, "predicted": p, "correct": p == t} for t, p in zip(truth, predicted)]
    return TaskScore(task.name, task.type, metrics, len(answers), rows=rows,
                     details={"confusion_matrix": classify.confusion(predicted, truth)})


def score_choice(task: EvalTaskSpec, answers: Sequence[Answer], gold: list[Any], extracted: list[Any],
                 workers: int | None) -> TaskScore:
    """Accuracy of the extracted letter(s) against the reference letter(s)."""
    rows = [{"gold": g, "predicted": p, "correct": p == g} for g, p in zip(gold, extracted)]
    accuracy = 100.0 * mean([float(row["correct"]) for row in rows])
    return TaskScore(task.name, task.type, {"accuracy": accuracy}, len(answers), rows=rows)


def score_extraction(task: EvalTaskSpec, answers: Sequence[Answer], gold: list[Any], extracted: list[Any],
                     workers: int | None) -> TaskScore:
    """Micro and macro precision/recall/F1 over item sets."""
    truth = [as_items(g) for g in gold]
    predicted = [as_items(v) for v in extracted]
    table = {**sets.micro(predicted, truth), **sets.macro(predicted, truth)}
    rows = []
    for p, g in zip(predicted, truth):
        tp, fp, fn = sets.row_counts(p, g)
        rows.append({"tp": tp, "fp": fp, "fn": fn, "f1": 100 * sets.prf(tp, fp, fn, empty=1.0)[2]})
    return TaskScore(task.name, task.type, {n: table[n] for n in task_metrics(task)}, len(answers), rows=rows)


def score_ranking(task: EvalTaskSpec, answers: Sequence[Answer], gold: list[Any], extracted: list[Any],
                  workers: int | None) -> TaskScore:
    """NDCG/DCG/Hit@k and MRR per row, averaged; ranking tasks use graded relevance, retrieval binary."""
    graded = task.graded if task.graded is not None else task.type == "ranking"
    names = task_metrics(task)
    rows = []
    for g, v in zip(gold, extracted):
        predicted, truth = as_ranking(v), as_ranking(g)
        rows.append({name: rank.row_score(name, predicted, truth, graded) for name in names})
    metrics = {name: mean([row[name] for row in rows]) for name in names}
    return TaskScore(task.name, task.type, metrics, len(answers), rows=rows, details={"graded": graded})


SCORERS = {"generation": score_generation, "classification": score_classification, "choice": score_choice,
           "extraction": score_extraction, "ranking": score_ranking, "retrieval": score_ranking}
