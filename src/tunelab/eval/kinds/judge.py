"""`judge`: a judge model scores the answers (single, on a scale) or compares two models' answers (pairwise).

The judge runs once every compared model has answered (one batch of questions for all of them, and a local judge
loaded only after the candidates are gone): the kind scores across models (TaskKind.across_models).
"""

from __future__ import annotations

from pathlib import Path

from tunelab.config.eval_tasks import EvalTaskSpec
from tunelab.config.schema import RunConfig
from tunelab.eval.errors import EvalError
from tunelab.eval.judge.pairwise import baseline_of, judge_pairwise
from tunelab.eval.judge.plot import judge_plot
from tunelab.eval.judge.single import judge_single
from tunelab.eval.judge.task import PAIRWISE_METRICS, SINGLE_METRICS, JudgeTask, judge_needs
from tunelab.eval.kinds.base import Metrics, ScoreModels, TaskKind
from tunelab.eval.results import Answer, TaskScore


def judge_models(config: RunConfig, task: EvalTaskSpec, models: list[str], expected: list[Answer]) -> ScoreModels:
    """Check what needs the models and rows (a baseline to compare with, references to show), then judge later."""
    assert isinstance(task, JudgeTask)
    if task.mode == "pairwise":
        baseline_of(task, models)
    if task.with_reference:
        empty = [a.id for a in expected if not a.label.strip()]
        if empty:
            raise EvalError(f"task {task.name}: with_reference shows each row's reference, and {len(empty)} rows "
                            f"have none (first: {empty[0]}); fill the response column or set with_reference: false")

    def run(answered: dict[str, list[Answer]], out: Path) -> dict[str, TaskScore]:
        """Judge every model's answers."""
        if task.mode == "pairwise":
            return judge_pairwise(config, task, answered, out)
        return judge_single(config, task, answered, out)
    return run


KIND = TaskKind(
    "judge", "a judge model scores answers on a scale (mean, std, distribution, top/low shares) or compares two "
             "models' answers (win/tie/loss)",
    JudgeTask, Metrics(SINGLE_METRICS + PAIRWISE_METRICS), SINGLE_METRICS, extractor="text",
    needs=judge_needs,
    needs_reference=False, plot=judge_plot, across_models=judge_models,
    scales={"judge-mean": "score on the task's scale", "judge-std": "score on the task's scale"})
