"""The `judge` task entry: who judges (an OpenAI-compatible endpoint or a local model), how (single score or
pairwise), with which rubric and scale, within which limits; and the checks of every bad combination."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt

from tunelab.config.eval_tasks import EvalTaskSpec
from tunelab.eval.judge.rubric import SHIPPED as SHIPPED_RUBRICS
from tunelab.eval.judge.rubric import template_problem
from tunelab.eval.kinds.base import needs_dataset

SINGLE_METRICS = ("judge-mean", "judge-std", "judge-top", "judge-low")
PAIRWISE_METRICS = ("win", "tie", "loss")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
KEY_LIKE = re.compile(r"(?i)^(sk-|sk_|key-|bearer\s)|^[A-Za-z0-9_\-]{32,}$")


class JudgeTask(EvalTaskSpec):
    """A judge task: the judge, the mode, the rubric and scale, the limits of the calls."""

    judge_base_url: str | None = Field(None, description="Judge: base URL of an OpenAI-compatible endpoint "
                                                         "(e.g. http://127.0.0.1:8000/v1).")
    judge_model: str | None = Field(None, description="Judge: the model name the endpoint serves.")
    judge_api_key_env: str | None = Field(None, description="Judge: the NAME of the environment variable holding "
                                                            "the API key (never the key itself); unset: no key.")
    judge_model_path: str | None = Field(None, description="Judge: a local model (path or alias) run through "
                                                           "tunelab's own inference instead of an endpoint.")
    mode: Literal["single", "pairwise"] = Field("single", description="Judge: 'single' scores each answer on the "
                                                                      "scale; 'pairwise' compares each model with "
                                                                      "the `against` model, both orders asked.")
    against: str | None = Field(None, description="Judge, pairwise: the baseline model's name (default: the first "
                                                  "compared model).")
    rubric: str = Field("en", description="Judge: 'zh' or 'en' (shipped rubrics) or the path of a Jinja file "
                                          "(variables: question, answer, reference, scale_min, scale_max; "
                                          "pairwise: answer_a, answer_b).")
    with_reference: bool = Field(False, description="Judge: show the judge each row's reference answer.")
    scale_min: int = Field(1, description="Judge: the lowest score.")
    scale_max: int = Field(10, description="Judge: the highest score.")
    top_score: float | None = Field(None, description="Judge: judge-top is the share of scores >= this "
                                                      "(default: scale_max - 1, the share of 9s on 1-10).")
    low_score: float | None = Field(None, description="Judge: judge-low is the share of scores below this "
                                                      "(default: the middle of the scale, 6 on 1-10).")
    reask: NonNegativeInt = Field(2, description="Judge: how many times a reply without a readable score is "
                                                 "asked again before the row is reported as unparsed.")
    judge_max_tokens: PositiveInt = Field(512, description="Judge: the longest reply.")
    judge_temperature: NonNegativeFloat = Field(0.0, description="Judge: sampling temperature (0: greedy).")
    judge_concurrency: PositiveInt = Field(8, description="Judge: requests in flight at once (local: batch size).")
    judge_requests_per_minute: PositiveFloat | None = Field(None, description="Judge: request rate limit.")
    judge_tokens_per_minute: PositiveFloat | None = Field(None, description="Judge: token rate limit.")
    judge_timeout: PositiveFloat = Field(60.0, description="Judge: seconds to wait for one reply.")
    judge_max_retries: NonNegativeInt = Field(5, description="Judge: retries of a request on 429/5xx/timeouts.")
    judge_price_input: NonNegativeFloat = Field(0.0, description="Judge: price per million input tokens.")
    judge_price_output: NonNegativeFloat = Field(0.0, description="Judge: price per million output tokens.")
    judge_max_cost: PositiveFloat | None = Field(None, description="Judge (endpoint): stop asking once this task's "
                                                                   "calls cost this much (at the judge prices); the rows "
                                                                   "not asked are reported and asked on a rerun.")
    judge_max_tokens_total: PositiveInt | None = Field(None, description="Judge (endpoint): stop asking once this "
                                                                         "task's calls used this many tokens.")

    def top(self) -> float:
        """The top-score threshold."""
        return self.top_score if self.top_score is not None else max(self.scale_min, self.scale_max - 1)

    def low(self) -> float:
        """The low-score threshold."""
        if self.low_score is not None:
            return self.low_score
        return self.scale_min + (self.scale_max - self.scale_min + 1) // 2

    def judge_name(self) -> str:
        """Who judges, for the cache key and the report."""
        if self.judge_model_path:
            return f"local:{self.judge_model_path}"
        return f"{self.judge_base_url}#{self.judge_model}"


def source_problems(task: JudgeTask) -> list[str]:
    """Exactly one judge: an endpoint (base URL and model) or a local model path."""
    remote = task.judge_base_url is not None or task.judge_model is not None
    if task.judge_model_path and remote:
        return ["judge_model_path and judge_base_url/judge_model: give one judge, a local model or an endpoint"]
    if task.judge_model_path:
        return (["judge_api_key_env: a local judge needs no key; remove it"] if task.judge_api_key_env else [])
    if not remote:
        return ["no judge: set judge_base_url and judge_model (an OpenAI-compatible endpoint) or judge_model_path "
                "(a local model)"]
    if not task.judge_base_url:
        return ["judge_model is set but judge_base_url is not; set the endpoint's base URL (ending in /v1)"]
    if not task.judge_model:
        return ["judge_base_url is set but judge_model is not; set the model name the endpoint serves"]
    return []


def key_problems(task: JudgeTask) -> list[str]:
    """An API key must never sit in the YAML: refuse fields that look like one."""
    problems = []
    name = task.judge_api_key_env
    if name is not None and (KEY_LIKE.search(name) or not ENV_NAME.fullmatch(name)):
        problems.append("judge_api_key_env looks like a key, not the name of an environment variable; never put a "
                        "key in the config: export JUDGE_API_KEY=<key> and set judge_api_key_env: JUDGE_API_KEY")
    if task.judge_model and KEY_LIKE.search(task.judge_model) and task.judge_model.lower().startswith(("sk-", "sk_")):
        problems.append("judge_model looks like an API key; set the model's name, and the key's variable in "
                        "judge_api_key_env")
    if task.judge_base_url and re.search(r"(?i)[?&](api_?key|key|token)=", task.judge_base_url):
        problems.append("judge_base_url carries a key in its query; remove it and name the key's environment "
                        "variable in judge_api_key_env")
    return problems


def scale_problems(task: JudgeTask) -> list[str]:
    """A scale with room, thresholds on it, metrics that fit the mode, `against` only for pairwise."""
    problems = []
    if task.judge_max_cost is not None and not (task.judge_price_input or task.judge_price_output):
        problems.append("judge_max_cost needs the prices to count the cost; set judge_price_input and "
                        "judge_price_output (per million tokens)")
    if task.scale_min >= task.scale_max:
        problems.append(f"scale_min {task.scale_min} >= scale_max {task.scale_max}; the scale must run upwards, "
                        "e.g. scale_min: 1, scale_max: 10")
        return problems
    for key, value in (("top_score", task.top_score), ("low_score", task.low_score)):
        if value is not None and not task.scale_min <= value <= task.scale_max:
            problems.append(f"{key} {value:g} is off the scale {task.scale_min}-{task.scale_max}; set it within")
    fitting = SINGLE_METRICS if task.mode == "single" else PAIRWISE_METRICS
    wrong = [m for m in task.metrics or [] if m not in fitting]
    if wrong:
        problems.append(f"metrics {', '.join(wrong)} do not fit mode {task.mode}; use {', '.join(fitting)}")
    if task.against is not None and task.mode != "pairwise":
        problems.append("against names the baseline of a pairwise comparison; set mode: pairwise or remove it")
    return problems


def rubric_problems(task: JudgeTask) -> list[str]:
    """A shipped rubric name, or a Jinja file that exists and parses."""
    if task.rubric in SHIPPED_RUBRICS:
        return []
    path = Path(task.rubric)
    if not path.is_file():
        return [f"rubric: {task.rubric} is neither a shipped rubric ({', '.join(SHIPPED_RUBRICS)}) nor a file; "
                "give zh, en or the path of your Jinja rubric"]
    problem = template_problem(path.read_text(encoding="utf-8"), task.mode)
    return [f"rubric {task.rubric}: {problem}"] if problem else []


def judge_needs(task: JudgeTask) -> list[str]:
    """Every problem of a judge task, each with its fix, found before anything loads."""
    return needs_dataset(task) + source_problems(task) + key_problems(task) + scale_problems(task) + \
        rubric_problems(task)
