"""Config checks of judge tasks: each bad combination reported with its fix, before anything loads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tunelab.config.errors import ConfigError
from tunelab.config.load import build
from tunelab.eval import kinds  # noqa: F401  (registers the task kinds with the config layer)

JUDGE = {"name": "j", "type": "judge", "dataset": "demo", "judge_base_url": "http://127.0.0.1:9/v1",
         "judge_model": "m"}


def problems(data_dir: Path, **task: Any) -> str:
    flat = {"model_name_or_path": "smollm2-135m-instruct", "dataset_dir": str(data_dir), "output_dir": "o",
            "eval_tasks": [{**JUDGE, **task}]}
    with pytest.raises(ConfigError) as error:
        build(flat, purpose="eval")
    return str(error.value)


def test_a_good_task_passes(data_dir: Path) -> None:
    flat = {"model_name_or_path": "smollm2-135m-instruct", "dataset_dir": str(data_dir), "output_dir": "o",
            "eval_tasks": [{**JUDGE, "judge_api_key_env": "JUDGE_KEY", "rubric": "zh", "top_score": 8}]}
    task = build(flat, purpose="eval").eval.tasks()[0]
    assert task.type == "judge" and task.top() == 8 and task.low() == 6  # type: ignore[attr-defined]


@pytest.mark.parametrize(("task", "message"), [
    ({"judge_base_url": None, "judge_model": None}, "no judge: set judge_base_url and judge_model"),
    ({"judge_model_path": "smollm2-135m-instruct"}, "give one judge"),
    ({"judge_model": None}, "judge_base_url is set but judge_model is not"),
    ({"judge_api_key_env": "sk-abcdef0123456789abcdef0123456789"}, "looks like a key"),
    ({"judge_api_key_env": "my key"}, "export JUDGE_API_KEY=<key>"),
    ({"judge_base_url": "http://h/v1?api_key=123"}, "carries a key in its query"),
    ({"scale_min": 10, "scale_max": 10}, "scale_min 10 >= scale_max 10"),
    ({"top_score": 11}, "top_score 11 is off the scale 1-10"),
    ({"rubric": "fr"}, "rubric: fr is neither a shipped rubric"),
    ({"metrics": ["win"]}, "metrics win do not fit mode single"),
    ({"mode": "pairwise", "metrics": ["judge-mean"]}, "do not fit mode pairwise"),
    ({"against": "base"}, "set mode: pairwise or remove it"),
    ({"mode": "triple"}, "eval_tasks[0].mode"),
])
def test_bad_combinations_say_the_fix(data_dir: Path, task: dict[str, Any], message: str) -> None:
    assert message in problems(data_dir, **task)


def test_rubric_files_are_checked(data_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.jinja"
    broken.write_text("Rate {{ answer }\n", encoding="utf-8")
    assert "line 1" in problems(data_dir, rubric=str(broken))
    blind = tmp_path / "blind.jinja"
    blind.write_text("Rate the answer to {{ question }}", encoding="utf-8")
    assert "must show answer" in problems(data_dir, rubric=str(blind))
    assert "must show answer_a and answer_b" in problems(data_dir, rubric=str(blind), mode="pairwise")


def test_local_judge_takes_no_key(data_dir: Path) -> None:
    text = problems(data_dir, judge_base_url=None, judge_model=None, judge_model_path="x", judge_api_key_env="K")
    assert "a local judge needs no key" in text


def test_judge_fields_on_another_kind_are_reported(data_dir: Path) -> None:
    flat = {"model_name_or_path": "smollm2-135m-instruct", "dataset_dir": str(data_dir), "output_dir": "o",
            "eval_tasks": [{"name": "g", "type": "generation", "dataset": "demo", "judge_model": "m"}]}
    with pytest.raises(ConfigError, match="judge_model, .*apply to judge tasks only"):
        build(flat, purpose="eval")
