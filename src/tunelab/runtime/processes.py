"""How tunelab starts one of its own commands as a child process: the argument list (never a shell string), one
builder for the sweep's trials and the web UI's jobs."""

from __future__ import annotations

import sys

# `python -u -m tunelab`: unbuffered, so that a parent reading the output sees progress while it happens
PYTHON_FLAGS = ("-u", "-m", "tunelab")


def tunelab_argv(*words: str) -> list[str]:
    """`tunelab WORDS...` run by this Python."""
    return [sys.executable, *PYTHON_FLAGS, *words]
