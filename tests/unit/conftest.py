"""Unit-test settings: tiny tensors run fastest on one thread."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """The tiny models' matmuls take microseconds; with several OpenMP threads on a busy 2-core machine each one can
    wait milliseconds for the others. Restored after each test, so integration tests keep their threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
