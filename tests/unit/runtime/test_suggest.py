"""Did-you-mean suggestions."""

from __future__ import annotations

from tunelab.runtime.suggest import suggest


def test_close_match() -> None:
    assert suggest("learning_rat", ["learning_rate", "lora_rank"]) == "; did you mean learning_rate?"


def test_no_close_match() -> None:
    assert suggest("zzz", ["learning_rate", "lora_rank"]) == ""
    assert suggest("anything", []) == ""
