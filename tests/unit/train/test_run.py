"""Run orchestration pieces that need no training: what the backward pass recomputes."""

from __future__ import annotations

from typing import Any

import pytest

from tunelab.config.load import build
from tunelab.train.run import recompute_mode


def config(**flat: Any) -> Any:
    return build({"model_name_or_path": "tiny", "dataset": "demo", "output_dir": "out", **flat})


@pytest.mark.parametrize(("flat", "parameters", "expected"), [
    ({}, 135_000_000, "none"),
    ({}, 1_000_000_000, "full"),
    ({"gradient_checkpointing": True}, 1000, "full"),
    ({"gradient_checkpointing": "cheap"}, 7_000_000_000, "cheap"),
    ({"gradient_checkpointing": False}, 7_000_000_000, "none"),
    ({"disable_gradient_checkpointing": True}, 7_000_000_000, "none"),
])
def test_recompute_mode(flat: dict[str, Any], parameters: int, expected: str) -> None:
    assert recompute_mode(config(**flat), parameters) == expected
