"""Stage grpo's rewards: the built-in rule rewards (accuracy, format, length) and a user's Python function, each
weighted; an answer's reward is the weighted sum.

Every reward function has one signature: `function(completions, prompts, references) -> list[float]`, one score
per completion. `prompts` are the prompts as the chat template rendered them (special tokens left out),
`references` the rows' reference answers (None where a row has none).

- accuracy: 1 when the extractor's answer equals the reference's (both normalised as the evaluation does), else 0.
  The reference goes through the same extractor; when it finds nothing there, the whole reference is used.
- format: 1 when the whole answer (surrounding whitespace ignored) matches `pattern` with `flags`, else 0.
- length: with L the answer's length and T the target (in units of `rule`), d = |L - T|:
  1 when d <= tolerance, else max(0, (T - d) / (T - tolerance)): 1 at the tolerance, falling linearly to 0 at a
  deviation of 100% of the target (0 beyond). With tolerance >= T, anything past the tolerance scores 0.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tunelab.config.rewards import RewardSpec
from tunelab.text.extract import JSON, Extractor, build_extractor
from tunelab.text.length import LengthRule, length_rule
from tunelab.text.normalize import normalize
from tunelab.train.outdir import RunError

RewardFunction = Callable[[list[str], list[str], list["str | None"]], list[float]]
Encode = Callable[[str], Sequence[int]]  # the tokenizer's text -> ids, for the tokens length rule
FLAGS = {"i": re.IGNORECASE, "s": re.DOTALL, "m": re.MULTILINE}


class RewardError(RunError):
    """A reward that cannot score: a user function that fails to load or returns the wrong thing."""


@dataclass(frozen=True)
class Reward:
    """One entry of reward_funcs, ready to score: its log name (rewards/<key>), weight and function."""

    key: str
    weight: float
    score: RewardFunction
    needs_reference: bool


def as_text(value: JSON) -> str:
    """An extracted answer as text to compare: lists joined, JSON values dumped."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return " ".join(as_text(item) for item in value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def same_answer(extractor: Extractor, completion: str, prompt: str, reference: str | None) -> bool:
    """The completion's extracted answer equals the reference's, after normalisation."""
    answer = extractor(completion, prompt)
    if answer is None or reference is None:
        return False
    expected = extractor(reference, prompt)
    wanted = normalize(as_text(expected if expected is not None else reference))
    return bool(wanted) and normalize(as_text(answer)) == wanted


def accuracy_reward(spec: RewardSpec) -> RewardFunction:
    """1 where the answer matches the row's reference through the extractor (default: the whole text)."""
    extractor = build_extractor(spec.extractor or "text")

    def score(completions: list[str], prompts: list[str], references: list[str | None]) -> list[float]:
        return [float(same_answer(extractor, c, p, r)) for c, p, r in zip(completions, prompts, references)]
    return score


def format_reward(spec: RewardSpec) -> RewardFunction:
    """1 where the whole answer matches the pattern."""
    flags = 0
    for letter in spec.flags:
        flags |= FLAGS[letter]
    pattern = re.compile(spec.pattern or "", flags)

    def score(completions: list[str], prompts: list[str], references: list[str | None]) -> list[float]:
        return [float(pattern.fullmatch(c.strip()) is not None) for c in completions]
    return score


def closeness(length: int, target: int, tolerance: float) -> float:
    """1 within the tolerance, falling linearly to 0 at a deviation of 100% of the target."""
    deviation = abs(length - target)
    if deviation <= tolerance:
        return 1.0
    if tolerance >= target:
        return 0.0
    return max(0.0, (target - deviation) / (target - tolerance))


def length_reward(spec: RewardSpec, encode: Encode) -> RewardFunction:
    """Closeness of the answer's length to the target (or to the reference's length) under the rule."""
    rule: LengthRule = length_rule(spec.rule, encode)

    def score(completions: list[str], prompts: list[str], references: list[str | None]) -> list[float]:
        out = []
        for completion, reference in zip(completions, references):
            target = spec.target if spec.target is not None else rule(reference or "")
            out.append(closeness(rule(completion), target, spec.tolerance) if target > 0 else 0.0)
        return out
    return score


def load_user_function(where: str, name: str) -> RewardFunction:
    """The function of a `path/to/rewards.py:function` entry, loaded from its file (relative: the working
    directory; the config loader has already made paths found next to the config file absolute)."""
    file_name, _, function_name = name.rpartition(":")
    path = Path(file_name)
    if not path.is_file():
        raise RewardError(f"{where}: file {file_name} not found; fix the path in reward_funcs")
    module_name = f"tunelab_user_rewards_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise RewardError(f"{where}: {path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's module: any failure is reported with the entry
        raise RewardError(f"{where}: importing {path} failed: {type(exc).__name__}: {exc}") from None
    sys.modules.setdefault(module_name, module)
    function = getattr(module, function_name, None)
    if not callable(function):
        raise RewardError(f"{where}: {path} has no function {function_name!r}; define "
                          f"def {function_name}(completions, prompts, references) -> list[float]")
    return checked(where, function)


def checked(where: str, function: RewardFunction) -> RewardFunction:
    """A user function whose failures and wrong results are errors naming the entry."""
    def score(completions: list[str], prompts: list[str], references: list[str | None]) -> list[float]:
        try:
            values = function(list(completions), list(prompts), list(references))
        except Exception as exc:  # the user's code: reported with the entry, not as a traceback of ours
            raise RewardError(f"{where}: the function raised {type(exc).__name__}: {exc}") from None
        if not isinstance(values, (list, tuple)) or len(values) != len(completions):
            raise RewardError(f"{where}: must return a list of {len(completions)} numbers (one per completion), "
                              f"got {type(values).__name__}" + (f" of {len(values)}" if isinstance(values, (list, tuple))
                                                                else ""))
        try:
            numbers = [float(value) for value in values]
        except (TypeError, ValueError):
            raise RewardError(f"{where}: returned a value that is not a number: {values!r}") from None
        if not all(math.isfinite(value) for value in numbers):
            raise RewardError(f"{where}: returned a value that is not finite: {numbers!r}")
        return numbers
    return score


def reward_key(spec: RewardSpec, taken: set[str]) -> str:
    """The log name of an entry: the built-in name or the user function's name, numbered when repeated."""
    base = spec.name.rpartition(":")[2] if spec.is_user_function() else spec.name
    key, count = base, 1
    while key in taken:
        count += 1
        key = f"{base}_{count}"
    taken.add(key)
    return key


def build_rewards(specs: list[RewardSpec], encode: Encode) -> list[Reward]:
    """The reward functions of reward_funcs, in order."""
    rewards: list[Reward] = []
    taken: set[str] = set()
    for index, spec in enumerate(specs):
        where = f"reward_funcs[{index}] ({spec.name})"
        if spec.name == "accuracy":
            function, needs = accuracy_reward(spec), True
        elif spec.name == "format":
            function, needs = format_reward(spec), False
        elif spec.name == "length":
            function, needs = length_reward(spec, encode), spec.target is None
        else:
            function, needs = load_user_function(where, spec.name), False
        rewards.append(Reward(reward_key(spec, taken), spec.weight, function, needs))
    return rewards


def score_all(rewards: list[Reward], completions: list[str], prompts: list[str],
              references: list[str | None]) -> tuple[list[float], dict[str, list[float]]]:
    """(the weighted sum per completion, each reward's own scores by its key)."""
    each = {reward.key: reward.score(completions, prompts, references) for reward in rewards}
    total = [sum(reward.weight * each[reward.key][i] for reward in rewards) for i in range(len(completions))]
    return total, each
