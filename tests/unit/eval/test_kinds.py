"""The task-kind table: every kind registered with the config layer, fields of other kinds reported, and a new
kind working from one table entry."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from tunelab.config import eval_tasks
from tunelab.config.errors import ConfigError
from tunelab.config.eval_tasks import EvalTaskSpec, register_task_kinds, task_spec
from tunelab.config.load import build
from tunelab.eval.kinds import KINDS
from tunelab.eval.kinds.base import Metrics, TaskKind
from tunelab.eval.results import Answer, TaskScore
from tunelab.eval.score import score_task
from tunelab.text.extract import JSON


def test_every_kind_is_registered_with_config_under_its_name() -> None:
    assert list(eval_tasks.task_kinds()) == list(KINDS)
    assert all(eval_tasks.task_kinds()[name] is kind and kind.name == name for name, kind in KINDS.items())
    assert [name for name, kind in KINDS.items() if not kind.generates] == ["choice_logits", "perplexity", "preference"]


def test_fields_of_other_kinds_are_named_with_their_kinds() -> None:
    tasks = [{"name": "g", "type": "generation", "dataset": "d", "n_shot": 3, "graded": True},
             {"name": "m", "type": "choice_logits", "task_dir": "t", "n_shot": 3, "lang": "zh"}]
    with pytest.raises(ConfigError) as excinfo:
        build({"model_name_or_path": "m", "output_dir": "o", "eval_tasks": tasks}, purpose="eval")
    assert [f"{p.key}: {p.message}" for p in excinfo.value.problems] == [
        "eval_tasks[0] (g): graded applies to ranking and retrieval tasks only; remove it",
        "eval_tasks[0] (g): task_dir, split, n_shot, lang and subjects apply to choice_logits tasks only; remove them"]


def test_a_task_is_built_as_its_kinds_class() -> None:
    task = task_spec(name="c", type="classification", dataset="d", labels=["a"])
    assert type(task) is KINDS["classification"].spec and task.labels == ["a"]
    assert type(task_spec(name="g", type="generation", dataset="d")) is KINDS["generation"].spec
    assert type(task_spec(name="e", type="extraction", dataset="d")) is EvalTaskSpec  # a kind without own fields


def test_config_without_registered_kinds_is_a_bug_not_a_config_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(eval_tasks, "KINDS", {})
    with pytest.raises(RuntimeError, match="import tunelab.eval"):
        build({"model_name_or_path": "m", "output_dir": "o", "eval_tasks": [{"name": "g", "type": "generation"}]},
              purpose="eval")


def score_length(task: EvalTaskSpec, names: list[str], answers: Sequence[Answer], gold: list[JSON],
                 extracted: list[JSON], workers: int | None) -> TaskScore:
    """Mean answer length in characters (a kind made up for the test)."""
    lengths = [len(str(value or "")) for value in extracted]
    return TaskScore(task.name, task.type, {"chars": sum(lengths) / len(lengths)}, len(answers),
                     rows=[{"chars": n} for n in lengths])


def test_a_new_kind_is_one_table_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    kind = TaskKind("mean_length", "answer length", EvalTaskSpec, Metrics(("chars",)), ("chars",), score=score_length)
    monkeypatch.setitem(KINDS, "mean_length", kind)
    register_task_kinds(KINDS)
    try:
        config = build({"model_name_or_path": "m", "output_dir": "o",
                        "eval_tasks": [{"name": "n", "type": "mean_length", "dataset": "d"}]}, purpose="eval")
        with pytest.raises(ConfigError, match="'bleu-4' does not fit a mean_length task; use chars"):
            build({"model_name_or_path": "m", "output_dir": "o",
                   "eval_tasks": [{"name": "n", "type": "mean_length", "dataset": "d", "metrics": ["bleu-4"]}]},
                  purpose="eval")
        task = config.eval.tasks()[0]
        score = score_task(task, [Answer("1", "", "x", "abcd"), Answer("2", "", "y", "  ")])
        assert score.metrics == {"chars": 2.0} and score.unextracted == ["2"]
    finally:
        monkeypatch.undo()
        register_task_kinds(KINDS)
    assert "mean_length" not in eval_tasks.task_kinds()
