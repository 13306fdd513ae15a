"""The eval task and compared-model entries of `eval_tasks:` and `eval_models:` (closed, like every section)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveInt, ValidationError

from tunelab.config.errors import Problem


class Entry(BaseModel):
    """Base of list entries: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class EvalTaskSpec(Entry):
    """One evaluation task: what to answer, how to pull the answer out, how to score it."""

    name: str = Field(description="Short name: a column of the results table and a folder name.")
    type: Literal["generation", "classification", "choice", "extraction", "ranking", "retrieval",
                  "choice_logits", "perplexity"] = Field(description="Task kind; decides the metrics that fit.")
    dataset: str | None = Field(None, description="Registered dataset (dataset_info.json) with reference answers.")
    metrics: list[str] | None = Field(None, description="Metric names (default: the kind's usual ones).")
    extractor: str | dict[str, Any] | None = Field(
        None, description="Extractor name, or {name: ..., params}: pulls the answer out of generated text.")
    label_extractor: str | dict[str, Any] | None = Field(
        None, description="Extractor for the reference answer (default: same as extractor for lists/JSON).")
    labels: list[str] | None = Field(None, description="Classification: the allowed labels; an answer that "
                                                       "contains exactly one of them is read as that label.")
    aliases: dict[str, str] | None = Field(None, description="Classification: other spellings -> label.")
    graded: bool | None = Field(None, description="Ranking: graded relevance from the reference order.")
    predictions: str | None = Field(None, description="Score this generated_predictions.jsonl instead of "
                                                      "generating (tunelab's or LLaMA-Factory's).")
    max_new_tokens: PositiveInt | None = Field(None, description="Generation length for this task.")
    task_dir: str | None = Field(None, description="choice_logits: the MMLU/C-Eval/CMMLU folder.")
    split: str = Field("test", description="choice_logits: the split evaluated (few-shot rows come from dev).")
    n_shot: NonNegativeInt = Field(5, description="choice_logits: examples from the dev split per question.")
    lang: Literal["en", "zh"] = Field("en", description="choice_logits: prompt language.")
    subjects: list[str] | None = Field(None, description="choice_logits: only these subjects.")


class EvalModelSpec(Entry):
    """One model of `tunelab eval --compare`: a base model, optionally with adapters."""

    name: str = Field(description="Row name in the results table.")
    model_name_or_path: str | None = Field(None, description="Default: the config's model_name_or_path.")
    adapter_name_or_path: str | None = Field(None, description="Adapters (comma list); none: the bare model.")
    template: str | None = Field(None, description="Chat template for this model (default: the config's).")


def parse_entries(key: str, raw: list[Any], spec: type[Entry]) -> tuple[list[Any], list[Problem]]:
    """Validate list entries one by one, so one bad entry does not hide the problems of the others.

    The parsed list is aligned with `raw`: None where an entry is invalid.
    """
    from tunelab.config.errors import pydantic_problems

    parsed, problems = [], []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            problems.append(Problem(f"{key}[{index}]", f"must be a mapping of keys (name, type, ...), not {item!r}"))
            parsed.append(None)
            continue
        try:
            parsed.append(spec(**item))
        except ValidationError as exc:
            parsed.append(None)
            for problem in pydantic_problems(exc):
                problems.append(Problem(f"{key}[{index}].{problem.key}", problem.message))
    return parsed, problems
