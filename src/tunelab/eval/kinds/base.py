"""What a task kind declares: its entry class, metrics, default extractor, and how it scores.

A kind that generates text has a `score` function (answers and extracted values in, a TaskScore out);
a kind that scores the model directly (log-likelihoods) has a `measure` function instead, which reads
its inputs when the run is prepared and returns what runs once a model is loaded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tunelab.config.errors import Problem
from tunelab.config.eval_tasks import EvalTaskSpec
from tunelab.config.schema import RunConfig
from tunelab.eval.results import Answer, TaskScore
from tunelab.model.load import ModelBundle
from tunelab.text.extract import JSON, Extractor, ExtractorError, build_extractor

Progress = Callable[[int, int], None]  # done, total
ProgressFor = Callable[[str], Progress]  # unit (rows, windows, questions) -> a progress printer
# Scores a generating task: its spec, the metric names, the answers, the references read, the extracted
# answers (a scorer may blank those it cannot use: they count as unextracted), and the worker processes.
Scorer = Callable[[EvalTaskSpec, list[str], Sequence[Answer], list[JSON], list[JSON], "int | None"], TaskScore]
# Scores the model on inputs read beforehand: (bundle, the model's run config, progress) -> score.
Measured = Callable[[ModelBundle, RunConfig, ProgressFor], TaskScore]
Measure = Callable[[RunConfig, EvalTaskSpec], Measured]  # reads a task's inputs (before any model loads)
LabelReader = Callable[["TaskKind", EvalTaskSpec], "Extractor | None"]
# A kind's own figures for the report: (task, model name -> that model's score, the report folder) -> PNGs written.
KindPlot = Callable[[EvalTaskSpec, "dict[str, TaskScore]", Path], list[Path]]


@dataclass(frozen=True)
class Metrics:
    """The metric names that fit a kind: a fixed list, and/or a pattern such as ndcg@k."""

    names: tuple[str, ...]
    pattern: re.Pattern[str] | None = None
    described: str = ""  # how to list them in a message when a pattern is involved

    def fits(self, metric: str) -> bool:
        """Whether a metric name applies."""
        return metric in self.names or bool(self.pattern and self.pattern.match(metric))

    def allowed(self) -> str:
        """The metric names for a message."""
        return self.described or ", ".join(self.names)


def raw_labels(_kind: TaskKind, _task: EvalTaskSpec) -> Extractor | None:
    """References are read as they are (text)."""
    return None


def labels_like_answers(kind: TaskKind, task: EvalTaskSpec) -> Extractor | None:
    """References are lists / JSON, read with the answer's extractor."""
    return kind.answer_extractor(task)


def needs_dataset(task: EvalTaskSpec) -> list[str]:
    """A task scored on dataset rows needs a registered dataset."""
    if task.dataset:
        return []
    return [f"dataset is required: a dataset registered in dataset_info.json for this {task.type} task"]


def no_label_column(_task: EvalTaskSpec) -> str | None:
    """References come from the rows' mapped response (the converted record), not from a raw column."""
    return None


def no_decoding(_task: EvalTaskSpec) -> dict[str, object]:
    """The task generates with the run's infer settings."""
    return {}


@dataclass(frozen=True)
class TaskKind:
    """One task kind; the config layer validates through it and eval/run.py runs through it."""

    name: str
    description: str
    spec: type[EvalTaskSpec]
    metrics: Metrics
    defaults: tuple[str, ...]
    extractor: str = "text"  # the default answer extractor (of a generating kind)
    score: Scorer | None = None
    measure: Measure | None = None
    read_labels: LabelReader = raw_labels
    needs: Callable[[EvalTaskSpec], list[str]] = field(default=needs_dataset)
    needs_reference: bool = True  # False: rows are scored without a reference answer (judge without one, length)
    plot: KindPlot | None = None  # figures beyond the report's bar chart (a histogram, actual vs target, ...)
    scales: dict[str, str] = field(default_factory=dict)  # metric -> how to read its number, where not percent
    # a raw column of the dataset rows that holds each row's reference (e.g. a length task's target_field)
    label_column: Callable[[EvalTaskSpec], "str | None"] = field(default=no_label_column)
    # infer settings a task fixes for its generation (e.g. a length task's greedy decoding): InferSection keys
    decoding: Callable[[EvalTaskSpec], "dict[str, object]"] = field(default=no_decoding)

    @property
    def generates(self) -> bool:
        """Whether the kind scores generated text (else it scores the model directly)."""
        return self.measure is None

    def task_metrics(self, task: EvalTaskSpec) -> list[str]:
        """The metrics asked, or the kind's defaults."""
        return list(task.metrics or self.defaults)

    def answer_extractor(self, task: EvalTaskSpec) -> Extractor:
        """The task's extractor, or the kind's default one."""
        return build_extractor(task.extractor or self.extractor)

    def label_extractor(self, task: EvalTaskSpec) -> Extractor | None:
        """How the reference is read: the task's label_extractor, else the kind's way (None: as text)."""
        if task.label_extractor:
            return build_extractor(task.label_extractor)
        return self.read_labels(self, task)

    def requirements(self, task: EvalTaskSpec) -> list[str]:
        """Keys the kind needs that the task lacks."""
        return self.needs(task)

    def problems(self, where: str, task: EvalTaskSpec) -> list[Problem]:
        """A predictions file that cannot be used, metrics that do not fit, extractors that do not build."""
        problems = [Problem(where, text) for text in self.predictions_problems(task)]
        for metric in task.metrics or []:
            if not self.metrics.fits(metric):
                problems.append(Problem(f"{where}.metrics", f"{metric!r} does not fit a {task.type} task; use "
                                                            f"{self.metrics.allowed()}"))
        for key, spec in (("extractor", task.extractor), ("label_extractor", task.label_extractor)):
            if spec is None:
                continue
            if not self.generates:
                problems.append(Problem(f"{where}.{key}", f"a {task.type} task generates no text; remove {key}"))
                continue
            try:
                build_extractor(spec)
            except ExtractorError as exc:
                problems.append(Problem(f"{where}.{key}", str(exc)))
        return problems

    def predictions_problems(self, task: EvalTaskSpec) -> list[str]:
        """A `predictions:` file suits a generating kind only, and must exist."""
        if not task.predictions:
            return []
        if not self.generates:
            return [f"predictions: a {task.type} task scores the model directly, not a predictions file"]
        if not Path(task.predictions).is_file():
            return [f"predictions: {task.predictions} does not exist; give the path of a generated_predictions.jsonl"]
        return []
