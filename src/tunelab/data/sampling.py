"""num_samples and max_samples: which rows of a dataset are used, chosen exactly as LLaMA-Factory 0.9.5 chooses them.

LLaMA-Factory seeds numpy's global generator with the training seed (transformers.set_seed) and then, dataset by
dataset in the order given, draws `np.random.permutation(n)[:num_samples]` and, when num_samples > n, adds
`np.random.choice(n, num_samples - n)` (every row once, then random repeats). max_samples then keeps the first rows.
One `numpy.random.RandomState(seed)` shared by all datasets of a run (see `sampling_rng`) makes the same draws, so
the same seed selects the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from tunelab.data.errors import DataError

T = TypeVar("T")


@dataclass(frozen=True)
class Selection:
    """What num_samples and max_samples did to one dataset, for the run report."""

    rows_in: int
    num_samples: int | None = None
    down_sampled: int = 0  # rows left out by num_samples < rows_in
    up_sampled: int = 0  # extra (repeated) rows added by num_samples > rows_in
    cut_by_max_samples: int = 0
    rows_out: int = 0
    indexes: tuple[int, ...] = ()  # positions in the input rows, in output order

    def note(self) -> str | None:
        """One report line, or None when every row was used once."""
        parts = []
        if self.down_sampled:
            parts.append(f"num_samples={self.num_samples} drew {self.rows_out + self.cut_by_max_samples} "
                         f"of {self.rows_in} rows at random")
        if self.up_sampled:
            parts.append(f"num_samples={self.num_samples} repeated {self.up_sampled} random rows to reach "
                         f"{self.num_samples} from {self.rows_in}")
        if self.cut_by_max_samples:
            parts.append(f"max_samples kept the first {self.rows_out}, leaving out {self.cut_by_max_samples}")
        return "; ".join(parts) or None


def sampling_rng(seed: int) -> np.random.RandomState:
    """The generator LLaMA-Factory's np.random calls use after transformers.set_seed(seed); one per run."""
    return np.random.RandomState(seed)


def sample_indexes(count: int, num_samples: int, rng: np.random.RandomState) -> np.ndarray:
    """LLaMA-Factory's draw: a permutation cut to num_samples, topped up with random repeats when it is short."""
    indexes = rng.permutation(count)[:num_samples]  # every row is included before any repeats
    missing = num_samples - len(indexes)
    if missing > 0:
        indexes = np.concatenate((indexes, rng.choice(count, missing)), axis=0)
    return indexes


def select_rows(rows: list[T], num_samples: int | None, max_samples: int | None, seed: int,
                rng: np.random.RandomState | None = None, dataset: str | None = None) -> tuple[list[T], Selection]:
    """The rows num_samples then max_samples keep, and what happened; pass `rng` to continue a run's generator."""
    count = len(rows)
    indexes: Any = range(count)
    if num_samples is not None:
        if count == 0:
            raise DataError(f"num_samples is {num_samples} but the dataset has no rows to draw from", dataset=dataset,
                            field="num_samples", fix="check the data file, or remove num_samples")
        indexes = sample_indexes(count, num_samples, rng if rng is not None else sampling_rng(seed)).tolist()
    cut = 0
    if max_samples is not None and max_samples < len(indexes):
        cut, indexes = len(indexes) - max_samples, indexes[:max_samples]
    chosen = list(indexes)
    drawn = num_samples if num_samples is not None else count
    selection = Selection(rows_in=count, num_samples=num_samples, down_sampled=max(count - drawn, 0),
                          up_sampled=max(drawn - count, 0), cut_by_max_samples=cut, rows_out=len(chosen),
                          indexes=tuple(chosen))
    return [rows[i] for i in chosen], selection
