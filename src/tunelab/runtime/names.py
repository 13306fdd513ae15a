"""Comma-separated config values (datasets, modules, adapter folders, trackers)."""

from __future__ import annotations


def split_names(value: str | None) -> list[str]:
    """'a, b' -> ['a', 'b'] (empty parts dropped)."""
    return [name.strip() for name in (value or "").split(",") if name.strip()]
