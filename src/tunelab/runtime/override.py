"""How a `key=value` typed by a user becomes a value (config overrides, the chat REPL's /set)."""

from __future__ import annotations

from typing import Any

import yaml


def override_value(raw: str) -> Any:
    """A YAML scalar (1e-4, true, null) where the text is one; otherwise the text exactly as typed."""
    if not raw.strip():
        return None
    if "#" in raw:
        return raw  # YAML would drop everything after ' #' as a comment
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw
    return raw if isinstance(value, (dict, list)) else value
