"""Comma-separated config values: names and probabilities."""

from __future__ import annotations

import pytest

from tunelab.runtime.names import parse_probs, split_names


def test_split_names_drops_empty_parts() -> None:
    assert split_names(" a, b,,c ") == ["a", "b", "c"]
    assert split_names(None) == []


def test_parse_probs() -> None:
    assert parse_probs(" 0.7, 0.3 ") == [0.7, 0.3]
    assert parse_probs(None) is None
    with pytest.raises(ValueError):
        parse_probs("a,b")
