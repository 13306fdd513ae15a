"""`choice_logits`: MMLU / C-Eval / CMMLU folders, the option letter with the highest logit (no generation)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, NonNegativeInt

from tunelab.config.eval_tasks import EvalTaskSpec
from tunelab.config.schema import RunConfig
from tunelab.eval.kinds.base import Measured, Metrics, ProgressFor, TaskKind
from tunelab.eval.results import TaskScore
from tunelab.model.load import ModelBundle


class ChoiceLogitsTask(EvalTaskSpec):
    """A benchmark folder task: which folder, split, shots, prompt language and subjects."""

    task_dir: str | None = Field(None, description="choice_logits: the MMLU/C-Eval/CMMLU folder.")
    split: str = Field("test", description="choice_logits: the split evaluated (few-shot rows come from dev).")
    n_shot: NonNegativeInt = Field(5, description="choice_logits: examples from the dev split per question.")
    lang: Literal["en", "zh"] = Field("en", description="choice_logits: prompt language.")
    subjects: list[str] | None = Field(None, description="choice_logits: only these subjects.")


def needs_task_dir(task: EvalTaskSpec) -> list[str]:
    """The benchmark folder, instead of a dataset."""
    if isinstance(task, ChoiceLogitsTask) and task.task_dir:
        return []
    return ["task_dir is required: the folder of MMLU / C-Eval / CMMLU CSV files"]


def measure_choice(config: RunConfig, task: ChoiceLogitsTask) -> Measured:
    """Read and check the benchmark folder now; score a model on it later."""
    from tunelab.eval.choice import read_choice_task

    benchmark = read_choice_task(task.task_dir, task.split, task.n_shot, task.subjects)

    def run(bundle: ModelBundle, config: RunConfig, progress: ProgressFor) -> TaskScore:
        """Multiple choice by logits on the folder read in prepare."""
        from tunelab.eval.choice import evaluate_choice

        result = evaluate_choice(bundle, task.task_dir, split=task.split, n_shot=task.n_shot, lang=task.lang,
                                 batch_size=config.eval.per_device_eval_batch_size,
                                 cutoff_len=config.data.cutoff_len, subjects=task.subjects,
                                 progress=progress("questions"), loaded=benchmark)
        summary = result.to_dict()
        rows: list[dict[str, object]] = [{**record, "label": record.get("answer")} for record in result.records]
        score = TaskScore(task.name, task.type, {"accuracy": result.average}, result.questions, rows=rows,
                          details={k: v for k, v in summary.items() if k not in ("records", "average")})
        score.unextracted = list(result.too_long)  # questions too long even without shots: scored wrong
        return score
    return run


KIND = TaskKind(
    "choice_logits", "MMLU / C-Eval / CMMLU folders: the option letter with the highest logit", ChoiceLogitsTask,
    Metrics(("accuracy",)), ("accuracy",), measure=measure_choice, needs=needs_task_dir)
