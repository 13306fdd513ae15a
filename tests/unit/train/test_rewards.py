"""grpo's reward functions: each built-in reward against hand-computed scores, the weighted sum, user functions."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunelab.config.rewards import RewardSpec
from tunelab.train.rewards import RewardError, build_rewards, closeness, score_all


def one(spec: RewardSpec, completions: list[str], references: list[str | None] | None = None) -> list[float]:
    reward, = build_rewards([spec], lambda text: text.split())
    return reward.score(completions, [""] * len(completions), references or [None] * len(completions))


def test_accuracy_compares_normalised_answers_with_the_reference() -> None:
    scores = one(RewardSpec(name="accuracy"), ["Positive.", "negative", "I think positive", "", "NEUTRAL"],
                 ["positive", "positive", "positive", "positive", None])
    assert scores == [1.0, 0.0, 0.0, 0.0, 0.0]


def test_accuracy_applies_the_extractor_to_answer_and_reference() -> None:
    spec = RewardSpec(name="accuracy", extractor={"name": "number"})
    scores = one(spec, ["so the total is 1,200", "about 12", "no idea"], ["1200", "The answer: 13", "7"])
    assert scores == [1.0, 0.0, 0.0]


def test_format_needs_the_whole_answer_to_match() -> None:
    spec = RewardSpec(name="format", pattern="(yes|no)", flags="i")
    assert one(spec, ["Yes", " no \n", "yes!", "maybe yes"]) == [1.0, 1.0, 0.0, 0.0]


def test_length_is_one_within_the_tolerance_then_falls_linearly() -> None:
    spec = RewardSpec(name="length", target=10, tolerance=2, rule="chars")
    # deviations 0, 2, 4 (-> (10-4)/(10-2)), 10 (100% of the target), 15
    assert one(spec, ["x" * 10, "x" * 12, "x" * 6, "x" * 20, "x" * 25]) == [1.0, 1.0, 0.75, 0.0, 0.0]
    assert closeness(3, 2, 5) == 1.0 and closeness(9, 2, 5) == 0.0  # tolerance past the target


def test_length_defaults_to_the_reference_length_under_the_rule() -> None:
    words = RewardSpec(name="length", rule="words")
    assert one(words, ["one two three four", "one two"], ["a b c d", "a b c d"]) == [1.0, 0.5]
    tokens = RewardSpec(name="length", rule="tokens", target=4)  # the test's encode splits on spaces
    assert one(tokens, ["a b c", "a b c d e f"]) == [0.75, 0.5]


def test_the_sum_is_weighted_and_each_reward_is_kept() -> None:
    rewards = build_rewards([RewardSpec(name="accuracy", weight=2.0),
                             RewardSpec(name="format", pattern="[a-z]+", weight=-0.5),
                             RewardSpec(name="format", pattern="yes")], str.split)
    total, each = score_all(rewards, ["yes", "No!"], ["", ""], ["yes", "no"])
    assert each == {"accuracy": [1.0, 1.0], "format": [1.0, 0.0], "format_2": [1.0, 0.0]}
    assert total == [2.0 - 0.5 + 1.0, 2.0]
    assert [r.needs_reference for r in rewards] == [True, False, False]


def write(folder: Path, text: str) -> str:
    path = folder / "my_rewards.py"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_a_user_function_is_loaded_from_its_file_and_called_with_three_lists(tmp_path: Path) -> None:
    path = write(tmp_path, "def short(completions, prompts, references):\n"
                           "    return [1.0 if len(c) < 5 and r else 0.0 for c, r in zip(completions, references)]\n")
    reward, = build_rewards([RewardSpec(name=f"{path}:short", weight=3.0)], str.split)
    assert reward.key == "short" and reward.weight == 3.0
    assert reward.score(["ok", "much too long", "ok"], ["p"] * 3, ["r", "r", None]) == [1.0, 0.0, 0.0]


@pytest.mark.parametrize(("body", "name", "message"), [
    ("def f(c, p, r):\n    return [1.0] * len(c)\n", "missing.py:f", "file missing.py not found"),
    ("raise ImportError('no numpy here')\n", "{path}:f", "importing"),
    ("def g(c, p, r):\n    return []\n", "{path}:f", "has no function 'f'"),
])
def test_loading_errors_name_the_entry(tmp_path: Path, body: str, name: str, message: str) -> None:
    path = write(tmp_path, body)
    with pytest.raises(RewardError) as excinfo:
        build_rewards([RewardSpec(name="format", pattern="x"), RewardSpec(name=name.format(path=path))], str.split)
    assert str(excinfo.value).startswith("reward_funcs[1] (") and message in str(excinfo.value)


@pytest.mark.parametrize(("returns", "message"), [
    ("[1.0]", "must return a list of 2 numbers"),
    ("1.0", "must return a list of 2 numbers"),
    ("['a', 'b']", "not a number"),
    ("[float('nan'), 1.0]", "not finite"),
    ("1 / 0", "raised ZeroDivisionError"),
])
def test_bad_results_of_a_user_function_name_the_entry(tmp_path: Path, returns: str, message: str) -> None:
    path = write(tmp_path, f"def f(completions, prompts, references):\n    return {returns}\n")
    reward, = build_rewards([RewardSpec(name=f"{path}:f")], str.split)
    with pytest.raises(RewardError) as excinfo:
        reward.score(["a", "b"], ["", ""], [None, None])
    assert f"reward_funcs[0] ({path}:f)" in str(excinfo.value) and message in str(excinfo.value)
