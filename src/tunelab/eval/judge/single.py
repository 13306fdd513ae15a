"""Single-answer grading: every model's answers scored on the scale, then per model the mean, the standard
deviation, the distribution and the shares of top and low scores; each row keeps its score and the judge's reason."""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path

from tunelab.config.schema import RunConfig
from tunelab.eval.judge.ask import (Outcome, Question, Session, ask_all, cache_path, follow_up, outcome_details,
                                    unparsed_hint)
from tunelab.eval.judge.cache import JudgeCache, question_key
from tunelab.eval.judge.parse import parse_score
from tunelab.eval.judge.rubric import Rubric, rubric_source
from tunelab.eval.judge.task import SINGLE_METRICS, JudgeTask
from tunelab.eval.results import Answer, Row, TaskScore
from tunelab.runtime.progress import Counter as ProgressCounter


def score_label(value: float) -> str:
    """A score as a distribution key: 8, not 8.0; 8.5 as it is."""
    return f"{value:g}"


def summary(task: JudgeTask, scores: list[float]) -> tuple[dict[str, float], dict[str, int]]:
    """judge-mean, judge-std (sample standard deviation, 0 for one score), judge-top and judge-low (percent of the
    scored rows) and the counts per score."""
    count = len(scores)
    figures = {
        "judge-mean": statistics.fmean(scores) if scores else 0.0,
        "judge-std": statistics.stdev(scores) if count > 1 else 0.0,
        "judge-top": 100.0 * sum(s >= task.top() for s in scores) / count if count else 0.0,
        "judge-low": 100.0 * sum(s < task.low() for s in scores) / count if count else 0.0,
    }
    distribution = {score_label(v): n for v, n in sorted(Counter(scores).items())}
    return figures, distribution


def question(task: JudgeTask, rubric: Rubric, answer: Answer) -> Question:
    """The judge's question about one answer."""
    reference = answer.label if task.with_reference else None
    key = question_key(task.judge_name(), rubric.source, (rubric.scale_min, rubric.scale_max), answer.prompt,
                       answer.predict, reference)
    return Question(key, rubric.render(answer.prompt, reference, answer=answer.predict))


def not_judged(outcome: Outcome, key: str) -> str:
    """Why a question has no reply: its request failed for good, or a budget stopped the asking."""
    return outcome.failed.get(key) or outcome.stopped or "not asked"


def model_score(task: JudgeTask, answers: list[Answer], questions: list[Question], cache: JudgeCache,
                outcome: Outcome) -> TaskScore:
    """One model's figures from the replies in the cache; rows without a readable score are listed, not dropped."""
    rows: list[Row] = []
    scores: list[float] = []
    unparsed: list[str] = []
    for answer, asked in zip(answers, questions):
        verdict = cache.get(asked.key)
        value = verdict.value if verdict is not None and isinstance(verdict.value, float) else None
        row: Row = {"id": answer.id, "label": answer.label, "predict": answer.predict, "score": value,
                    "reason": verdict.text if verdict is not None else not_judged(outcome, asked.key),
                    "attempts": verdict.attempt if verdict is not None else 0}
        if value is None:
            unparsed.append(answer.id)
            row["unparsed"] = True
        else:
            scores.append(value)
        rows.append(row)
    figures, distribution = summary(task, scores)
    names = list(task.metrics or SINGLE_METRICS)
    details: dict[str, object] = {"scale": f"{task.scale_min}-{task.scale_max}", "top_score": task.top(),
                                  "low_score": task.low(), "distribution": distribution, "judged": len(scores),
                                  "unparsed": len(unparsed), **outcome_details(task, outcome)}
    if unparsed:
        details["hint"] = unparsed_hint(len(unparsed), len(answers), outcome)
    return TaskScore(task.name, task.type, {n: figures[n] for n in names}, len(answers), unextracted=unparsed,
                     rows=rows, details=details)


def judge_single(config: RunConfig, task: JudgeTask, answered: dict[str, list[Answer]],
                 out: Path) -> dict[str, TaskScore]:
    """Every model's answers judged on the scale (one batch of questions for all models), scored per model."""
    rubric = Rubric(rubric_source(task.rubric, "single"), task.scale_min, task.scale_max)
    cache = JudgeCache(cache_path(out, task.name))
    questions = {model: [question(task, rubric, a) for a in answers] for model, answers in answered.items()}
    session = Session(cache, lambda text: parse_score(text, task.scale_min, task.scale_max), task.reask,
                      follow_up(rubric.source, "single"), ProgressCounter(f"  {task.name}", "judged"))
    outcome = ask_all(config, task, f"task {task.name}: judge", session,
                      [q for asked in questions.values() for q in asked])
    return {model: model_score(task, answered[model], questions[model], cache, outcome) for model in answered}
