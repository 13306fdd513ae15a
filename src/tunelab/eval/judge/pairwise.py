"""Pairwise comparison with each model's answers against a baseline's, asked in both orders.

Position bias is cancelled by this rule: the model wins a row only when the judge prefers it in both orders
(shown first, then shown second), loses only when the judge prefers the baseline in both, and every other pair
of verdicts (a tie in either order, or the judge choosing the same position twice) is a tie. A row whose reply
cannot be read in either order is listed as unparsed and left out of the rates.
"""

from __future__ import annotations

from pathlib import Path

from tunelab.config.schema import RunConfig
from tunelab.eval.errors import EvalError
from tunelab.eval.judge.ask import (Question, Session, ask_all, cache_path, follow_up, outcome_details,
                                    unparsed_hint)
from tunelab.eval.judge.cache import JudgeCache, question_key
from tunelab.eval.judge.parse import parse_verdict
from tunelab.eval.judge.rubric import Rubric, rubric_source
from tunelab.eval.judge.task import PAIRWISE_METRICS, JudgeTask
from tunelab.eval.results import Answer, Row, TaskScore
from tunelab.runtime.progress import Counter

# the model's result for a verdict: the model is A when shown first, B when shown second
AS_FIRST = {"A": "win", "B": "loss", "C": "tie"}
AS_SECOND = {"A": "loss", "B": "win", "C": "tie"}


def combine(first: str | None, second: str | None) -> str | None:
    """The row's result for the model from the verdicts with the model shown first and shown second."""
    if first is None or second is None:
        return None
    one, two = AS_FIRST[first], AS_SECOND[second]
    return one if one == two and one != "tie" else "tie"


def rates(results: list[str | None]) -> dict[str, float]:
    """win, tie and loss as percent of the rows with a result."""
    known = [r for r in results if r is not None]
    return {name: 100.0 * known.count(name) / len(known) if known else 0.0 for name in PAIRWISE_METRICS}


def baseline_of(task: JudgeTask, models: list[str]) -> str:
    """The model every other is compared with; EvalError with the fix when there is none to compare."""
    if len(models) < 2:
        raise EvalError(f"task {task.name}: mode pairwise compares two models' answers, and only "
                        f"{', '.join(models)} is evaluated; run tunelab eval --compare (with eval_models or an "
                        "adapter), or set mode: single")
    if task.against is not None and task.against not in models:
        raise EvalError(f"task {task.name}: against: {task.against} is not a compared model; use one of "
                        f"{', '.join(models)}")
    return task.against or models[0]


def pair_questions(task: JudgeTask, rubric: Rubric, model: Answer, base: Answer) -> tuple[Question, Question]:
    """The two questions of a row: the model's answer shown first, then shown second."""
    reference = model.label if task.with_reference else None
    asked = []
    for a, b in ((model.predict, base.predict), (base.predict, model.predict)):
        key = question_key(task.judge_name(), rubric.source, (rubric.scale_min, rubric.scale_max), model.prompt, a,
                           reference, answer_b=b)
        asked.append(Question(key, rubric.render(model.prompt, reference, answer_a=a, answer_b=b)))
    return asked[0], asked[1]


def verdict_of(cache: JudgeCache, key: str) -> tuple[str | None, str]:
    """The verdict read for a question and the judge's reply."""
    verdict = cache.get(key)
    if verdict is None:
        return None, ""
    return (verdict.value if isinstance(verdict.value, str) else None), verdict.text


def compared_score(task: JudgeTask, answers: list[Answer], pairs: list[tuple[Question, Question]],
                   cache: JudgeCache, base: str) -> TaskScore:
    """One model's win/tie/loss against the baseline, with each row's two verdicts and reasons."""
    rows: list[Row] = []
    results: list[str | None] = []
    unparsed = []
    for answer, (first_q, second_q) in zip(answers, pairs):
        first, first_reason = verdict_of(cache, first_q.key)
        second, second_reason = verdict_of(cache, second_q.key)
        result = combine(first, second)
        results.append(result)
        if result is None:
            unparsed.append(answer.id)
        rows.append({"id": answer.id, "label": answer.label, "predict": answer.predict, "result": result,
                     "verdict_shown_first": first, "verdict_shown_second": second,
                     "reason_shown_first": first_reason, "reason_shown_second": second_reason})
    figures = rates(results)
    same_position = sum(1 for r in rows if r["verdict_shown_first"] in ("A", "B")
                        and r["verdict_shown_first"] == r["verdict_shown_second"])
    details: dict[str, object] = {"against": base, "counts": {n: results.count(n) for n in PAIRWISE_METRICS},
                                  "unparsed": len(unparsed), "position_bias_rows": same_position}
    return TaskScore(task.name, task.type, {n: figures[n] for n in task.metrics or PAIRWISE_METRICS}, len(answers),
                     unextracted=unparsed, rows=rows, details=details)


def by_id(answers: list[Answer], base: list[Answer], task: str) -> list[Answer]:
    """The baseline's answers in the order of a model's rows."""
    index = {a.id: a for a in base}
    missing = [a.id for a in answers if a.id not in index]
    if missing:
        raise EvalError(f"task {task}: the baseline has no answer for row {missing[0]}; rerun the eval")
    return [index[a.id] for a in answers]


def judge_pairwise(config: RunConfig, task: JudgeTask, answered: dict[str, list[Answer]],
                   out: Path) -> dict[str, TaskScore]:
    """Each model against the baseline, both orders asked in one batch; the baseline's own row has no figures."""
    base = baseline_of(task, list(answered))
    rubric = Rubric(rubric_source(task.rubric, "pairwise"), task.scale_min, task.scale_max)
    cache = JudgeCache(cache_path(out, task.name))
    pairs = {model: [pair_questions(task, rubric, a, b) for a, b in zip(answers, by_id(answers, answered[base],
                                                                                          task.name))]
             for model, answers in answered.items() if model != base}
    session = Session(cache, parse_verdict, task.reask, follow_up(rubric.source, "pairwise"),
                      Counter(f"  {task.name}", "verdicts"))
    outcome = ask_all(config, task, f"task {task.name}: judge", session,
                      [q for rows in pairs.values() for pair in rows for q in pair])
    scores = {}
    for model, answers in answered.items():
        if model == base:
            rows: list[Row] = [{"id": a.id, "label": a.label, "predict": a.predict} for a in answers]
            scores[model] = TaskScore(task.name, task.type, {}, len(answers), rows=rows,
                                      details={"baseline": True, **outcome_details(task, outcome)})
        else:
            scores[model] = compared_score(task, answers, pairs[model], cache, base)
            scores[model].details.update(outcome_details(task, outcome))
            if scores[model].unextracted:
                scores[model].details["hint"] = unparsed_hint(len(scores[model].unextracted), len(answers), outcome)
    return scores
