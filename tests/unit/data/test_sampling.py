"""num_samples / max_samples select the same rows as LLaMA-Factory 0.9.5 for the same seed.

The expected indexes were recorded by running LLaMA-Factory's own loader (_load_single_dataset after
transformers.set_seed(42)) on datasets of 10 rows ('a', num_samples 4) and 7 rows ('b', num_samples 12):
  dataset=a,b              -> a [8, 1, 5, 0]; b [4, 1, 0, 3, 5, 6, 2, 2, 5, 4, 1, 3]
  dataset=b,a max_samples=3 -> b [0, 1, 5];    a [0, 5, 9]
  dataset=a_all,a (a_all without num_samples) -> a_all [0..9]; a [8, 1, 5, 0]
"""

from __future__ import annotations

import pytest

from tunelab.data.errors import DataError
from tunelab.data.sampling import Selection, sampling_rng, select_rows

A = [f"a{i}" for i in range(10)]
B = [f"b{i}" for i in range(7)]


def picked(rows: list[str]) -> list[int]:
    return [int(row[1:]) for row in rows]


def test_down_then_up_sampling_equal_llamafactory_for_seed_42() -> None:
    rng = sampling_rng(42)  # one generator for the whole run, as LLaMA-Factory's global numpy state
    a, a_info = select_rows(A, 4, None, 42, rng=rng)
    b, b_info = select_rows(B, 12, None, 42, rng=rng)
    assert picked(a) == [8, 1, 5, 0]
    assert picked(b) == [4, 1, 0, 3, 5, 6, 2, 2, 5, 4, 1, 3]
    assert a_info == Selection(rows_in=10, num_samples=4, down_sampled=6, rows_out=4, indexes=(8, 1, 5, 0))
    assert (b_info.up_sampled, b_info.down_sampled, b_info.rows_out) == (5, 0, 12)
    assert sorted(set(picked(b)[:7])) == list(range(7))  # every row once before any repeat


def test_max_samples_keeps_the_first_rows_after_num_samples() -> None:
    rng = sampling_rng(42)
    b, b_info = select_rows(B, 12, 3, 42, rng=rng)
    a, _ = select_rows(A, 4, 3, 42, rng=rng)
    assert picked(b) == [0, 1, 5] and picked(a) == [0, 5, 9]
    assert b_info.cut_by_max_samples == 9 and b_info.rows_out == 3


def test_a_dataset_without_num_samples_draws_nothing() -> None:
    rng = sampling_rng(42)
    everything, info = select_rows(A, None, None, 42, rng=rng)
    assert everything == A and info.note() is None and info.indexes == tuple(range(10))
    assert picked(select_rows(A, 4, None, 42, rng=rng)[0]) == [8, 1, 5, 0]


def test_without_a_shared_generator_the_seed_starts_a_fresh_one() -> None:
    assert picked(select_rows(A, 4, None, 42)[0]) == [8, 1, 5, 0]
    assert picked(select_rows(B, 12, 3, 42)[0]) == [0, 1, 5]


def test_max_samples_alone_and_larger_than_the_data() -> None:
    assert select_rows(A, None, 3, 0)[0] == A[:3]
    rows, info = select_rows(A, None, 50, 0)
    assert rows == A and info.cut_by_max_samples == 0


def test_notes_say_what_sampling_did() -> None:
    assert select_rows(A, 4, None, 42)[1].note() == "num_samples=4 drew 4 of 10 rows at random"
    assert select_rows(B, 12, 10, 42)[1].note() == ("num_samples=12 repeated 5 random rows to reach 12 from 7; "
                                                    "max_samples kept the first 10, leaving out 2")


def test_num_samples_of_an_empty_dataset_is_an_error() -> None:
    with pytest.raises(DataError) as excinfo:
        select_rows([], 3, None, 42, dataset="empty")
    assert str(excinfo.value) == ("dataset 'empty', field num_samples: num_samples is 3 but the dataset has no rows to "
                                  "draw from; check the data file, or remove num_samples")
