"""The eval task and compared-model entries of `eval_tasks:` and `eval_models:` (closed, like every section).

EvalTaskSpec holds the fields every task has. Each task kind (tunelab.eval.kinds, one module per kind) adds
its own fields by subclassing it, and the eval layer registers its kinds here with `register_task_kinds`:
config sits below eval, so it learns the kinds from this table instead of importing them. An entry is
validated with its kind's class; a field that belongs to other kinds is set aside and reported by
eval_checks ("labels and aliases apply to classification tasks only"), so one entry still shows all its
problems.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from tunelab.config.errors import Problem, pydantic_problems

ExtractorSpec = Union[str, dict[str, object]]  # a name, or {name: ..., param: ...}


class Entry(BaseModel):
    """Base of list entries: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class EvalTaskSpec(Entry):
    """One evaluation task: what to answer, how to pull the answer out, how to score it."""

    name: str = Field(description="Short name: a column of the results table and a folder name.")
    type: str = Field(description="Task kind; decides the metrics that fit.")
    dataset: str | None = Field(None, description="Registered dataset (dataset_info.json) with reference answers.")
    metrics: list[str] | None = Field(None, description="Metric names (default: the kind's usual ones).")
    extractor: ExtractorSpec | None = Field(
        None, description="Extractor name, or {name: ..., params}: pulls the answer out of generated text.")
    label_extractor: ExtractorSpec | None = Field(
        None, description="Extractor for the reference answer (default: same as extractor for lists/JSON).")
    predictions: str | None = Field(None, description="Score this generated_predictions.jsonl instead of "
                                                      "generating (tunelab's or LLaMA-Factory's).")
    max_new_tokens: PositiveInt | None = Field(None, description="Generation length for this task.")

    @field_validator("type")
    @classmethod
    def known_kind(cls, value: str) -> str:
        """The kind must be registered; the message lists the kinds as a Literal's would."""
        names = list(task_kinds())
        if value not in names:
            expected = ", ".join(repr(n) for n in names[:-1]) + f" or {names[-1]!r}" if names[1:] else repr(names[0])
            raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": expected})
        return value


class EvalModelSpec(Entry):
    """One model of `tunelab eval --compare`: a base model, optionally with adapters."""

    name: str = Field(description="Row name in the results table.")
    model_name_or_path: str | None = Field(None, description="Default: the config's model_name_or_path.")
    adapter_name_or_path: str | None = Field(None, description="Adapters (comma list); none: the bare model.")
    template: str | None = Field(None, description="Chat template for this model (default: the config's).")


class TaskKindRules(Protocol):
    """What the config layer asks of a task kind (tunelab.eval.kinds.base.TaskKind is the implementation)."""

    @property
    def spec(self) -> type[EvalTaskSpec]:
        """The kind's entry class: EvalTaskSpec plus the kind's own fields."""

    def requirements(self, task: EvalTaskSpec) -> list[str]:
        """Keys the kind needs that the task lacks, as messages."""

    def problems(self, where: str, task: EvalTaskSpec) -> list[Problem]:
        """Everything else wrong with a task of this kind: predictions, metrics, extractors."""


KINDS: dict[str, TaskKindRules] = {}


def register_task_kinds(kinds: Mapping[str, TaskKindRules]) -> None:
    """Make the eval layer's task kinds known to config validation (tunelab.eval.kinds calls this on import)."""
    KINDS.clear()
    KINDS.update(kinds)


def task_kinds() -> dict[str, TaskKindRules]:
    """The registered kinds; none registered is a bug of the caller, not of the user's config."""
    if not KINDS:
        raise RuntimeError("no eval task kinds are registered: import tunelab.eval (it registers them) before "
                           "validating eval_tasks")
    return KINDS


def own_fields(spec: type[EvalTaskSpec]) -> list[str]:
    """The fields a kind adds to the common ones."""
    return [name for name in spec.model_fields if name not in EvalTaskSpec.model_fields]


def foreign_fields(item: Mapping[str, object]) -> list[str]:
    """Keys of an entry that belong to other kinds than its own (all kind fields when its type is unknown)."""
    kinds = task_kinds()
    kind = kinds.get(str(item.get("type")))
    own = set(own_fields(kind.spec)) if kind else set()
    return [key for key in item if key not in own and any(key in own_fields(k.spec) for k in kinds.values())]


E = TypeVar("E", bound=Entry)


def parse_entry(key: str, index: int, item: object, spec: type[E]) -> tuple[E | None, list[Problem]]:
    """One entry validated, or None with its problems keyed like eval_tasks[2].metrics."""
    if not isinstance(item, dict):
        return None, [Problem(f"{key}[{index}]", f"must be a mapping of keys (name, type, ...), not {item!r}")]
    try:
        return spec(**item), []
    except ValidationError as exc:
        return None, [Problem(f"{key}[{index}].{p.key}", p.message) for p in pydantic_problems(exc)]


def parse_entries(key: str, raw: Sequence[object], spec: type[E]) -> tuple[list[E | None], list[Problem]]:
    """Validate list entries one by one, so one bad entry does not hide the problems of the others.

    The parsed list is aligned with `raw`: None where an entry is invalid.
    """
    parsed: list[E | None] = []
    problems: list[Problem] = []
    for index, item in enumerate(raw):
        entry, found = parse_entry(key, index, item, spec)
        parsed.append(entry)
        problems += found
    return parsed, problems


def task_spec(**values: object) -> EvalTaskSpec:
    """A task as its kind's class; fields of other kinds are set aside (eval_checks reports them)."""
    kind = task_kinds().get(str(values.get("type")))
    spec = kind.spec if kind else EvalTaskSpec
    return spec(**{k: v for k, v in values.items() if k not in foreign_fields(values)})


def parse_tasks(raw: Sequence[object]) -> tuple[list[EvalTaskSpec | None], list[Problem]]:
    """eval_tasks entries, each validated with its kind's class; fields of other kinds are left to eval_checks."""
    parsed: list[EvalTaskSpec | None] = []
    problems: list[Problem] = []
    for index, item in enumerate(raw):
        spec: type[EvalTaskSpec] = EvalTaskSpec
        if isinstance(item, dict):
            kind = task_kinds().get(str(item.get("type")))
            spec = kind.spec if kind else EvalTaskSpec
            item = {k: v for k, v in item.items() if k not in foreign_fields(item)}
        task, found = parse_entry("eval_tasks", index, item, spec)
        parsed.append(task)
        problems += found
    return parsed, problems
