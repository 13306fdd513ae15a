"""`generation`: free text against a reference, BLEU/ROUGE as LLaMA-Factory scores them, sacrebleu, rouge-score,
and `format` (answers in the expected layout: a regex with named groups or a JSON schema)."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field, PositiveInt

from tunelab.config.eval_tasks import EvalTaskSpec
from tunelab.eval.kinds.base import Metrics, TaskKind, needs_dataset
from tunelab.eval.metrics import text
from tunelab.eval.metrics.formats import FORMAT_METRIC, format_rows, is_format_metric, metric_field
from tunelab.eval.results import Answer, TaskScore, mean
from tunelab.text.extract import JSON
from tunelab.text.layout import Layout, LayoutError, regex_layout, schema_layout
from tunelab.text.normalize import normalize


class GenerationTask(EvalTaskSpec):
    """A generation task: optionally the layout its answers must have (for the format metric)."""

    format_regex: str | None = Field(None, description="Generation, metric format: the layout of an answer, a "
                                                       "regular expression with named groups (the fields), "
                                                       "matched against the whole answer.")
    format_items: PositiveInt | None = Field(None, description="Generation: the answer holds this many items in "
                                                               "a row, each matching format_regex.")
    format_schema: dict[str, object] | str | None = Field(None, description="Generation, metric format: a JSON "
                                                                            "schema the answer must satisfy, or "
                                                                            "the path of a .json file holding it.")


def task_layout(task: GenerationTask) -> Layout | None:
    """The task's layout, or None when it sets none; LayoutError when it cannot be built."""
    if task.format_regex is not None:
        return regex_layout(task.format_regex, task.format_items)
    if task.format_schema is not None:
        schema = task.format_schema
        return schema_layout(schema if isinstance(schema, str) else dict(schema))
    return None


def generation_needs(task: GenerationTask) -> list[str]:
    """A dataset, and a layout that builds and fits the format metrics asked."""
    problems = needs_dataset(task)
    asked = [name for name in task.metrics or [] if is_format_metric(name)]
    if task.format_regex is not None and task.format_schema is not None:
        return problems + ["format_regex and format_schema: give one layout, not both"]
    if task.format_items is not None and task.format_regex is None:
        problems.append("format_items counts the items of format_regex; set format_regex or remove format_items")
    try:
        layout = task_layout(task)
    except LayoutError as exc:
        return problems + [str(exc)]
    if layout is None:
        if asked:
            problems.append(f"metrics {', '.join(asked)} need the layout: set format_regex (named groups) or "
                            "format_schema")
        return problems
    if not asked:
        problems.append("format_regex/format_schema is set but no format metric is asked; add format to metrics")
    unknown = [name for name in asked if metric_field(name) not in (None, *layout.fields)]
    if unknown:
        problems.append(f"metrics {', '.join(unknown)}: no such field; the layout's fields are "
                        f"{', '.join(layout.fields) or '(none)'}")
    return problems


def score_generation(task: GenerationTask, names: list[str], answers: Sequence[Answer], gold: list[JSON],
                     extracted: list[JSON], workers: int | None) -> TaskScore:
    """BLEU/ROUGE (LLaMA-Factory's and the standard ones), exact match and format over the extracted texts."""
    predicts = [str(value or "") for value in extracted]
    labels = [str(value) for value in gold]
    rows: list[dict[str, float]] = [{} for _ in answers]
    metrics: dict[str, float] = {}
    details: dict[str, object] = {}
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
    reasons: list[str] = []
    layout = task_layout(task) if any(is_format_metric(n) for n in names) else None
    if layout is not None:
        format_values, reasons, details["format"] = format_rows(layout, [a.id for a in answers], predicts, names)
        for row, values in zip(rows, format_values):
            row.update(values)
    for name in names:
        metrics.setdefault(name, mean([row[name] for row in rows]))
    score = TaskScore(task.name, task.type, {n: metrics[n] for n in names}, len(answers), rows=list(rows),
                      details=details)
    for row, why in zip(score.rows, reasons):
        if why:
            row["format_error"] = why
    return score


GENERATION_METRICS = text.LF_METRICS + text.STANDARD_METRICS + ("exact-match", "format")

KIND = TaskKind(
    "generation", "free text against a reference: BLEU/ROUGE as LLaMA-Factory, sacrebleu, rouge-score; format",
    GenerationTask, Metrics(GENERATION_METRICS, FORMAT_METRIC, ", ".join(GENERATION_METRICS) + ", format:FIELD"),
    text.LF_METRICS, extractor="text", score=score_generation, needs=generation_needs)
