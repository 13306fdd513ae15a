"""Run orchestration pieces that need no training: the gradient-checkpointing rule."""

from __future__ import annotations

from typing import Any

import pytest

from tunelab.config.load import build
from tunelab.train.run import use_gradient_checkpointing


def config(**flat: Any) -> Any:
    return build({"model_name_or_path": "tiny", "dataset": "demo", "output_dir": "out", **flat})


@pytest.mark.parametrize(("flat", "parameters", "expected"), [
    ({}, 135_000_000, False),
    ({}, 1_000_000_000, True),
    ({"gradient_checkpointing": True}, 1000, True),
    ({"gradient_checkpointing": False}, 7_000_000_000, False),
    ({"disable_gradient_checkpointing": True}, 7_000_000_000, False),
])
def test_use_gradient_checkpointing(flat: dict[str, Any], parameters: int, expected: bool) -> None:
    assert use_gradient_checkpointing(config(**flat), parameters) is expected
