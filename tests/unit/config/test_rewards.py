"""reward_funcs: the forms a config may write, and every bad entry reported with its place."""

from __future__ import annotations

import pytest

from tunelab.config.errors import ConfigError
from tunelab.config.load import build
from tunelab.config.rewards import parse_rewards

MINIMAL = {"model_name_or_path": "tiny", "dataset": "demo", "output_dir": "out", "stage": "grpo"}


def test_a_comma_string_is_a_list_of_names() -> None:
    rewards, problems = parse_rewards("accuracy, format")
    assert problems == [] and [r.name for r in rewards if r] == ["accuracy", "format"]


def test_entries_carry_their_settings_and_user_functions_are_told_apart() -> None:
    rewards, _ = parse_rewards(["length", {"name": "format", "pattern": "^(yes|no)$", "weight": 0.5},
                                "rewards.py:score"])
    assert [r.is_user_function() for r in rewards if r] == [False, False, True]
    assert rewards[1] is not None and rewards[1].weight == 0.5 and rewards[1].pattern == "^(yes|no)$"


def test_every_bad_entry_is_named_with_its_index() -> None:
    _, problems = parse_rewards([{"pattern": "x"}, {"name": "length", "target": -3}, {"name": "format", "colour": 1}])
    assert [p.key for p in problems] == ["reward_funcs[0].name", "reward_funcs[1].target", "reward_funcs[2].colour"]


def test_a_mapping_instead_of_a_list_is_refused() -> None:
    _, problems = parse_rewards(5)
    assert [p.key for p in problems] == ["reward_funcs"]


def test_the_section_reads_the_keys_in_the_flat_namespace() -> None:
    config = build({**MINIMAL, "reward_funcs": "accuracy", "num_generations": 8, "pref_beta": 0.2})
    assert config.pref.num_generations == 8 and config.pref.pref_beta == 0.2
    assert [r.name for r in config.pref.rewards()] == ["accuracy"]


def test_a_group_of_one_is_refused() -> None:
    with pytest.raises(ConfigError) as excinfo:
        build({**MINIMAL, "num_generations": 1})
    assert [p.key for p in excinfo.value.problems] == ["num_generations"]
