"""Speed-ups applied to a loaded model before training (each one keeps the loss the same); returns notes."""

from __future__ import annotations

from typing import Any

from tunelab.train.precision import Precision


def apply(model: Any, precision: Precision) -> list[str]:
    """Apply the measured speed-ups that fit this model and precision; one note per change made."""
    return []
