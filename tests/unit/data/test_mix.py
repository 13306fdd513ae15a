"""Mixing and splitting in LLaMA-Factory 0.9.5's order (golden cases recorded by tools/lf_mix_golden.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tunelab.data import mix
from tunelab.data.errors import DataError

GOLDEN = json.loads((Path(__file__).parents[2] / "fixtures" / "mix_split_golden.json").read_text())


@pytest.mark.parametrize("case", GOLDEN, ids=lambda c: f"{c['mix_strategy']}-{c['sizes']}-{c['seed']}-{c['val_size']}")
def test_merge_and_split_match_llamafactory(case: dict[str, Any]) -> None:
    parts = [[[d, i] for i in range(n)] for d, n in enumerate(case["sizes"])]
    merged, taken = mix.merge(parts, case["mix_strategy"], case["probs"], case["seed"])
    train, evaluation = merged, []
    if case["val_size"]:
        train, evaluation = mix.split(merged, case["val_size"], case["seed"])
    assert train == case["train"]
    assert evaluation == case["validation"]
    assert sum(taken) == len(merged)


def test_interleave_once_takes_every_row_exactly_once() -> None:
    parts = [[("a", i) for i in range(5)], [("b", i) for i in range(3)]]
    merged, taken = mix.merge(parts, "interleave_once", [0.5, 0.5], seed=1)
    assert sorted(merged) == sorted(parts[0] + parts[1]) and taken == [5, 3]


@pytest.mark.parametrize("strategy", ["interleave_under", "interleave_over", "interleave_once"])
def test_interleaving_an_empty_dataset_is_an_error(strategy: str) -> None:
    with pytest.raises(DataError, match=f"{strategy} draws from every dataset, and dataset #2 has no rows"):
        mix.merge([[1, 2], []], strategy, None, seed=0)
