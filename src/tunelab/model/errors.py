"""ModelError: a model, adapter or GGUF file that cannot be found, read or loaded; the message names it and the fix."""

from __future__ import annotations


class ModelError(Exception):
    """A model that cannot be found or loaded; the message says what to do."""
