"""Mixing several datasets and splitting off evaluation rows, in LLaMA-Factory 0.9.5's order.

LLaMA-Factory merges the converted datasets with `datasets.concatenate_datasets` or `interleave_datasets`
(mix_strategy, interleave_probs, the run's seed), then splits the merged rows with `train_test_split(val_size,
seed)` before tokenizing. tunelab runs the same `datasets` functions on a small index table (dataset, row) and
applies the order to its records, so the rows, their order and the split are LLaMA-Factory's
(tests/fixtures/mix_split_golden.json, recorded by tools/lf_mix_golden.py).
"""

from __future__ import annotations

import math
from itertools import chain
from typing import Any, TypeVar

from tunelab.data.errors import DataError

T = TypeVar("T")

STOPPING = {"interleave_under": "first_exhausted", "interleave_over": "all_exhausted",
            "interleave_once": "all_exhausted_without_replacement"}


def index_table(sizes: list[int]) -> list[Any]:
    """One datasets.Dataset of (d, i) per dataset."""
    from datasets import Dataset

    return [Dataset.from_dict({"d": [d] * n, "i": list(range(n))}) for d, n in enumerate(sizes)]


def interleave_order(sizes: list[int], strategy: str, probs: list[float] | None, seed: int) -> list[tuple[int, int]]:
    """(dataset, row) pairs in the order `datasets.interleave_datasets` takes them."""
    from datasets import interleave_datasets

    merged = interleave_datasets(index_table(sizes), probabilities=probs, seed=seed, stopping_strategy=STOPPING[strategy])
    return list(zip(merged["d"], merged["i"]))


def merge(parts: list[list[T]], strategy: str, probs: list[float] | None, seed: int) -> tuple[list[T], list[int]]:
    """The records of several datasets merged, and how many rows were taken of each (repeats counted)."""
    if len(parts) == 1 or strategy == "concat":
        return list(chain.from_iterable(parts)), [len(part) for part in parts]
    empty = [i for i, part in enumerate(parts) if not part]
    if empty:  # `datasets` would stop at once (under) or fail with an IndexError (over, once)
        raise DataError(f"{strategy} draws from every dataset, and dataset #{empty[0] + 1} has no rows (see the "
                        "data report for skipped rows)", fix="remove the empty dataset or use mix_strategy: concat")
    order = interleave_order([len(part) for part in parts], strategy, probs, seed)
    taken = [0] * len(parts)
    for d, _ in order:
        taken[d] += 1
    return [parts[d][i] for d, i in order], taken


def eval_count(val_size: float, total: int) -> int:
    """How many rows val_size holds out of total (train_test_split's rounding)."""
    return int(val_size) if val_size >= 1 else math.ceil(val_size * total)


def split(records: list[T], val_size: float, seed: int) -> tuple[list[T], list[T]]:
    """Train and eval records: `train_test_split(test_size=val_size, seed=seed)` of the merged rows."""
    from datasets import Dataset

    if eval_count(val_size, len(records)) >= len(records):
        raise DataError(f"val_size {val_size} leaves no training rows out of {len(records)}",
                        fix="lower val_size or add data")
    size = int(val_size) if val_size >= 1 else val_size
    parts = Dataset.from_dict({"i": list(range(len(records)))}).train_test_split(test_size=size, seed=seed)
    return [records[i] for i in parts["train"]["i"]], [records[i] for i in parts["test"]["i"]]
