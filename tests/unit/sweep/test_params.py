"""Grid values and search ranges as users write them, and trial names made of what varies."""

from __future__ import annotations

import pytest

from tunelab.sweep.naming import MAX_LENGTH, trial_name
from tunelab.sweep.params import ParamError, ParamSpec, grid_values, parse_param, scalar, split_assignment


def test_values_are_typed_and_1e_4_is_a_number() -> None:
    assert grid_values("1e-4,3e-4,8e-4") == [1e-4, 3e-4, 8e-4]
    assert grid_values("3,5,10") == [3, 5, 10] and all(isinstance(v, int) for v in grid_values("3,5"))
    assert grid_values("lora,full") == ["lora", "full"]
    assert grid_values([1.0e-4, "3e-4", True]) == [1e-4, 3e-4, True]
    assert grid_values("identity, identity+alpaca") == ["identity", "identity+alpaca"]
    assert grid_values("5,5,3") == [5, 3]  # each value once
    assert scalar("5.0") == 5.0 and isinstance(scalar("5.0"), float)


def test_ranges() -> None:
    assert parse_param("log:1e-5:1e-3") == ParamSpec("log", 1e-5, 1e-3)
    assert parse_param("int:4:64").values()[:3] == [4, 5, 6] and len(parse_param("int:4:64").values()) == 61
    assert parse_param("cat:lora,full").values() == ["lora", "full"]
    assert parse_param("float:0:0.1") == ParamSpec("float", 0.0, 0.1)


@pytest.mark.parametrize(("text", "says"), [
    ("logg:1:2", "unknown range kind 'logg'"), ("log:0:1", "LOW > 0"), ("int:4", "need LOW:HIGH"),
    ("float:1:a", "must be numbers"), ("int:1.5:3", "whole numbers"), ("float:3:1", "LOW must be below HIGH"),
    ("1e-4", "unknown range kind"),
])
def test_bad_ranges_say_how_to_write_them(text: str, says: str) -> None:
    with pytest.raises(ParamError, match=says):
        parse_param(text)


def test_a_float_range_has_no_grid() -> None:
    with pytest.raises(ParamError, match="a grid needs cat or int ranges"):
        parse_param("log:1e-5:1e-3").values()


def test_assignments() -> None:
    assert split_assignment("learning_rate=1e-4,3e-4", "--grid") == ("learning_rate", "1e-4,3e-4")
    with pytest.raises(ParamError, match="--grid 'learning_rate': write KEY=VALUES"):
        split_assignment("learning_rate", "--grid")


def test_trial_names_say_what_varies() -> None:
    assert trial_name({"learning_rate": 3e-4, "num_train_epochs": 5, "finetuning_type": "lora"}) == "lr3e-4_ep5_lora"
    assert trial_name({"learning_rate": 1e-3, "lora_rank": 16}) == "lr1e-3_r16"
    assert trial_name({"learning_rate": 0.05, "num_train_epochs": 2.5}) == "lr0.05_ep2.5"
    assert trial_name({"learning_rate": 1.5e-4}) == "lr1.5e-4"
    assert trial_name({"dataset": "identity,alpaca_zh/v2"}) == "identity+alpaca-zh-v2"  # "_" separates the parts
    assert trial_name({"use_dora": True, "neftune_noise_alpha": 5}) == "use_dora-true_neftune_noise_alpha-5"
    assert trial_name({}) == "base"


def test_long_names_are_cut_and_stay_distinct() -> None:
    first = trial_name({"dataset": "a" * 80 + "1", "learning_rate": 1e-4, "lora_rank": 8})
    second = trial_name({"dataset": "a" * 80 + "2", "learning_rate": 1e-4, "lora_rank": 8})
    assert len(first) <= MAX_LENGTH and len(second) <= MAX_LENGTH and first != second
