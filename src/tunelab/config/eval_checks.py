"""Checks of `eval_tasks` / `eval_models`, run before any model or dataset loads.

Every problem is reported at once, from one place, without importing the eval layer (config sits below
it): the common fields are checked here, and each task is asked of its kind through the table the eval
layer registers (config.eval_tasks.register_task_kinds, called when tunelab.eval is imported). Its
kind says what it requires, which metrics fit and whether its extractors build; fields of other kinds are
reported here, grouped by the kinds they belong to.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from tunelab.config.errors import Problem
from tunelab.config.eval_tasks import EvalModelSpec, EvalTaskSpec, foreign_fields, own_fields, parse_entries, \
    parse_tasks, task_kinds
from tunelab.config.schema import EvalSection, TrainSection

UNSAFE_NAME = set('/\\:*?"<>|')


class EvalSections(Protocol):
    """The sections eval_checks reads."""

    @property
    def train(self) -> TrainSection:
        """Where the results go (output_dir)."""

    @property
    def eval(self) -> EvalSection:
        """The eval_tasks and eval_models entries."""


def eval_checks(config: EvalSections) -> list[Problem]:
    """Every problem of the eval tasks and compared models at once."""
    problems = []
    if not config.train.output_dir:
        problems.append(Problem("output_dir", "required: predictions, per-row scores and the report go there"))
    raw = config.eval.eval_tasks
    tasks, problems_tasks = parse_tasks(raw)
    models, problems_models = parse_entries("eval_models", config.eval.eval_models, EvalModelSpec)
    problems += problems_tasks + problems_models
    if not raw:
        problems.append(Problem("eval_tasks", "required for `tunelab eval`: list the tasks (name, type, dataset, "
                                              "metrics, extractor); see docs/evaluation.md"))
    problems += name_problems("eval_tasks", [task.name for task in tasks if task])
    problems += name_problems("eval_models", [model.name for model in models if model])
    for index, task in enumerate(tasks):
        entry = raw[index]
        if task is not None and isinstance(entry, dict):
            problems += task_problems(f"eval_tasks[{index}] ({task.name})", task, entry)
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


def task_problems(where: str, task: EvalTaskSpec, entry: Mapping[str, object] | None = None) -> list[Problem]:
    """Problems of one task: what its kind needs, fields of other kinds, metrics that fit, extractors that build."""
    kind = task_kinds()[task.type]
    found = kind.requirements(task) + misplaced(entry or {})
    return [Problem(where, text) for text in found] + kind.problems(where, task)


def misplaced(entry: Mapping[str, object]) -> list[str]:
    """One message per group of fields given on a task of another kind, e.g. labels and aliases."""
    given = [key for key in foreign_fields(entry) if entry[key] is not None]
    messages = []
    groups: dict[tuple[str, ...], list[str]] = {}  # the kinds owning some fields -> those fields
    for kind in task_kinds().values():
        for field in own_fields(kind.spec):
            owners = tuple(n for n, k in task_kinds().items() if field in own_fields(k.spec))
            if field not in groups.get(owners, []):
                groups.setdefault(owners, []).append(field)
    for owners, fields in groups.items():
        if any(field in given for field in fields):
            messages.append(f"{listed(fields)} {'applies' if len(fields) == 1 else 'apply'} to {listed(owners)} "
                            f"tasks only; remove {'it' if len(fields) == 1 else 'them'}")
    return messages


def listed(words: tuple[str, ...] | list[str]) -> str:
    """a, b and c."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + f" and {words[-1]}"
