"""`generation`: free text against a reference, BLEU/ROUGE as LLaMA-Factory scores them, sacrebleu, rouge-score."""

from __future__ import annotations

from collections.abc import Sequence

from tunelab.config.eval_tasks import EvalTaskSpec
from tunelab.eval.kinds.base import Metrics, TaskKind
from tunelab.eval.metrics import text
from tunelab.eval.results import Answer, TaskScore, mean
from tunelab.text.extract import JSON
from tunelab.text.normalize import normalize


def score_generation(task: EvalTaskSpec, names: list[str], answers: Sequence[Answer], gold: list[JSON],
                     extracted: list[JSON], workers: int | None) -> TaskScore:
    """BLEU/ROUGE (LLaMA-Factory's and the standard ones) and exact match over the extracted texts."""
    predicts = [str(value or "") for value in extracted]
    labels = [str(value) for value in gold]
    rows: list[dict[str, float]] = [{} for _ in answers]
    metrics: dict[str, float] = {}
    if any(n in text.LF_METRICS for n in names):
        for row, scores in zip(rows, text.lf_scores(predicts, labels, names, workers)):
            row.update(scores)
    if any(n.startswith("rouge-score-") for n in names):
        for row, scores in zip(rows, text.rouge_score_rows(predicts, labels)):
            row.update({k: v for k, v in scores.items() if k in names})
    for name in [n for n in names if n in text.SACREBLEU_TOKENIZE]:
        metrics[name] = text.sacrebleu_corpus(predicts, labels, name)
        for row, value in zip(rows, text.sacrebleu_rows(predicts, labels, name)):
            row[name] = value
    if "exact-match" in names:
        for row, p, g in zip(rows, predicts, labels):
            row["exact-match"] = 100.0 * (normalize(p) == normalize(g))
    for name in names:
        metrics.setdefault(name, mean([row[name] for row in rows]))
    return TaskScore(task.name, task.type, {n: metrics[n] for n in names}, len(answers), rows=rows)


KIND = TaskKind(
    "generation", "free text against a reference: BLEU/ROUGE as LLaMA-Factory, sacrebleu, rouge-score",
    EvalTaskSpec, Metrics(text.LF_METRICS + text.STANDARD_METRICS + ("exact-match",)), text.LF_METRICS,
    extractor="text", score=score_generation)
