"""EvalError: an evaluation that cannot run as configured; the message names the task, file or row."""

from __future__ import annotations


class EvalError(Exception):
    """Bad eval input (references, predictions file, task data); the message says where and how to fix it."""
