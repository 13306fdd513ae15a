"""Sizes and seeded reproducibility of `tunelab data split`."""

from __future__ import annotations

import pytest

from tunelab.data.errors import DataError
from tunelab.data.tools.split import part_size, split_rows


def test_fractions_and_counts() -> None:
    assert part_size("0.1", 95, "--val") == 10 and part_size("0.001", 95, "--val") == 1
    assert part_size("100", 1000, "--val") == 100 and part_size("1", 5, "--val") == 1
    for bad in ("0", "1.0", "-3", "x"):
        with pytest.raises(DataError):
            part_size(bad, 10, "--val")


def test_same_seed_same_split_parts_keep_file_order() -> None:
    rows = [{"i": i} for i in range(50)]
    first, again, other = (split_rows(rows, 5, 5, seed) for seed in (7, 7, 8))
    assert first == again and first != other
    assert sorted(r["i"] for part in first.values() for r in part) == list(range(50))
    assert [r["i"] for r in first["train"]] == sorted(r["i"] for r in first["train"])
