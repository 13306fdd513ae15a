"""The position-swap arithmetic: a win needs both orders, everything else short of two losses is a tie."""

from __future__ import annotations

import pytest

from tunelab.eval.judge.pairwise import combine, rates


@pytest.mark.parametrize(("first", "second", "expected"), [
    ("A", "B", "win"),    # the model preferred when shown first and when shown second
    ("B", "A", "loss"),   # the baseline preferred both times
    ("A", "A", "tie"),    # the first position preferred both times: position bias, cancelled
    ("B", "B", "tie"),    # the second position preferred both times
    ("A", "C", "tie"), ("C", "B", "tie"), ("C", "C", "tie"), ("B", "C", "tie"), ("C", "A", "tie"),
    (None, "B", None), ("A", None, None), (None, None, None),
])
def test_combine(first: str | None, second: str | None, expected: str | None) -> None:
    assert combine(first, second) == expected


def test_rates_leave_out_unparsed_rows() -> None:
    assert rates(["win", "win", "tie", "loss", None]) == {"win": 50.0, "tie": 25.0, "loss": 25.0}
    assert rates([None]) == {"win": 0.0, "tie": 0.0, "loss": 0.0}
