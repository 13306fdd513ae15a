"""Comma-separated config values (datasets, modules, adapter folders, trackers, probabilities)."""

from __future__ import annotations


def split_names(value: str | None) -> list[str]:
    """'a, b' -> ['a', 'b'] (empty parts dropped)."""
    return [name.strip() for name in (value or "").split(",") if name.strip()]


def parse_probs(text: str | None) -> list[float] | None:
    """'0.7, 0.3' -> [0.7, 0.3]."""
    if text is None:
        return None
    return [float(part) for part in str(text).split(",") if part.strip()]
