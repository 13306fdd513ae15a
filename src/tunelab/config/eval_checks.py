"""Checks of `eval_tasks` / `eval_models`, run before any model or dataset loads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunelab.config.errors import Problem
from tunelab.config.eval_tasks import EvalModelSpec, EvalTaskSpec, parse_entries

UNSAFE_NAME = set('/\\:*?"<>|')


def eval_checks(config: Any) -> list[Problem]:
    """Every problem of the eval tasks and compared models at once."""
    problems = []
    if not config.train.output_dir:
        problems.append(Problem("output_dir", "required: predictions, per-row scores and the report go there"))
    tasks, problems_tasks = parse_entries("eval_tasks", config.eval.eval_tasks, EvalTaskSpec)
    models, problems_models = parse_entries("eval_models", config.eval.eval_models, EvalModelSpec)
    problems += problems_tasks + problems_models
    if not config.eval.eval_tasks:
        problems.append(Problem("eval_tasks", "required for `tunelab eval`: list the tasks (name, type, dataset, "
                                              "metrics, extractor); see docs/evaluation.md"))
    problems += name_problems("eval_tasks", [task.name for task in tasks if task])
    problems += name_problems("eval_models", [model.name for model in models if model])
    for index, task in enumerate(tasks):
        if task is not None:
            problems += task_problems(f"eval_tasks[{index}] ({task.name})", task)
    return problems


def name_problems(key: str, names: list[str]) -> list[Problem]:
    """Names must be unique and usable as folder names."""
    problems = []
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(Problem(key, f"the name {name!r} is used twice; give each entry its own name"))
    for name in names:
        if not name.strip() or name.startswith(".") or UNSAFE_NAME & set(name):
            problems.append(Problem(key, f"the name {name!r} cannot be a folder name; use letters, digits, - and _"))
    return problems


def task_problems(where: str, task: Any) -> list[Problem]:
    """Problems of one task: what its kind needs, metrics that fit, extractors that build."""
    from tunelab.eval.extract import ExtractorError, build_extractor
    from tunelab.eval.kinds import KINDS

    kind = KINDS[task.type]
    problems = [Problem(where, text) for text in kind_requirements(task, kind)]
    for metric in task.metrics or []:
        if not kind.fits(metric):
            problems.append(Problem(f"{where}.metrics", f"{metric!r} does not fit a {task.type} task; use {kind.allowed()}"))
    for key in ("extractor", "label_extractor"):
        spec = getattr(task, key)
        if spec is None:
            continue
        if not kind.generates:
            problems.append(Problem(f"{where}.{key}", f"a {task.type} task generates no text; remove {key}"))
            continue
        try:
            build_extractor(spec)
        except ExtractorError as exc:
            problems.append(Problem(f"{where}.{key}", str(exc)))
    return problems


def kind_requirements(task: Any, kind: Any) -> list[str]:
    """Keys the task's kind needs or does not use."""
    found = []
    if task.type == "choice_logits":
        if not task.task_dir:
            found.append("task_dir is required: the folder of MMLU / C-Eval / CMMLU CSV files")
    elif not task.dataset:
        found.append(f"dataset is required: a dataset registered in dataset_info.json for this {task.type} task")
    if (task.labels or task.aliases) and task.type != "classification":
        found.append("labels and aliases apply to classification tasks only; remove them")
    if task.graded is not None and not kind.ranked:
        found.append("graded applies to ranking and retrieval tasks only; remove it")
    if task.predictions:
        if not kind.generates:
            found.append(f"predictions: a {task.type} task scores the model directly, not a predictions file")
        elif not Path(task.predictions).is_file():
            found.append(f"predictions: {task.predictions} does not exist; give the path of a "
                         "generated_predictions.jsonl")
    return found
